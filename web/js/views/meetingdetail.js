// One meeting's page: details, agenda, the roll with live quorum numbers,
// leave requests (请假) and their decisions, votes and their results, the
// minutes, the audio recordings and the calendar file. Which controls show follows the `can`
// flags of GET /api/meetings/ID; the server checks every action again.
//
// Live: the page subscribes to `meeting:ID` from the `seq` its snapshot
// includes and reloads the snapshot on each event, keeping typed text.
//
// Route: /meetings/ID.

import { api } from '../api.js';
import { announce, dialogForm, errorState, field, h, openDialog, replace } from '../dom.js';
import { formatDate, formatDateMinutes, t } from '../i18n.js';
import { hub } from '../hub.js';
import { clock, meetingCard, meetingStatusTag, placeText } from './meetings.js';
import { createMinutesPanel } from './meetingminutes.js';
import { votesPanel } from './meetingvotes.js';

export function renderMeetingDetail(outlet, id) {
  let closed = false;
  let view = null;
  let recordings = [];
  let unsubscribe = null;
  let busy = false;
  /** Numbers each snapshot request, so a late response never replaces a newer one. */
  let loadTicket = 0;
  const liveRegion = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'meeting-live' });

  replace(outlet, h('section', { class: 'page' }, h('p', { class: 'muted' }, t('common.loading'))));

  const path = (suffix = '') => `/api/meetings/${id}${suffix}`;
  const minutes = createMinutesPanel({ path, act, reload: load });

  /** Runs one action, shows its error, and reloads the page's snapshot. */
  async function act(run, done = null) {
    if (busy) return;
    busy = true;
    try {
      await run();
      if (done) announce(done);
    } catch (error) {
      announce(error.message, 'error');
    } finally {
      busy = false;
    }
    await load();
  }

  /** Asks for a reason and cancels the meeting; the server notifies the participants. */
  async function cancelMeeting() {
    const cancelled = await openDialog(t('meet.cancelMeeting'), (close) =>
      dialogForm(
        close,
        [field(t('meet.cancelReasonField'), h('textarea', { name: 'reason', rows: 3, maxlength: 500 }), t('meet.cancelHint'))],
        t('meet.cancelMeeting'),
        async (form) => {
          await api.post(path('/cancel'), { reason: String(new FormData(form).get('reason') || '') });
          return true;
        },
      ),
    );
    if (cancelled) {
      announce(t('meet.liveCancelled'));
      await load();
    }
  }

  /**
   * Links to the room while the meeting is open: those who may join enter
   * directly, other readers ask the host from the lobby.
   */
  function roomLink() {
    const open = view.meeting.status === 'scheduled' || view.meeting.status === 'live';
    if (!open) return null;
    const label = view.can.join ? t('meet.enterRoom') : t('meet.askToEnterRoom');
    return h('a', { href: `/meetings/${id}/room`, class: 'button button-primary', 'data-link': true }, label);
  }

  function header() {
    const meeting = view.meeting;
    const info = (label, value) => [h('dt', {}, label), h('dd', {}, value)];
    const day = formatDate(meeting.starts_at);
    return [
      h(
        'header',
        { class: 'page-header' },
        h('a', { href: '/meetings', class: 'button button-small', 'data-link': true }, `← ${t('meet.back')}`),
        h('h1', { tabindex: '-1' }, meeting.title),
        meetingStatusTag(meeting.status),
        h('div', { class: 'page-header-spacer' }),
        view.can.edit ? h('a', { href: `/meetings/${id}/edit`, class: 'button', 'data-link': true }, t('meet.edit')) : null,
        view.can.cancel ? h('button', { type: 'button', class: 'button button-danger-outline', onclick: cancelMeeting }, t('meet.cancelMeeting')) : null,
        h('a', { href: path('/ics'), class: 'button', download: `meeting-${id}.ics` }, t('meet.ics')),
        roomLink(),
      ),
      h(
        'dl',
        { class: 'card card-body meeting-facts' },
        info(t('meet.kind'), meeting.kind_name),
        info(t('meet.time'), `${day} ${clock(meeting.starts_at)}–${clock(meeting.ends_at)}`),
        info(t('meet.place'), placeText(meeting)),
        info(t('meet.org'), meeting.org_name),
        info(t('meet.host'), meeting.host_name),
        info(t('meet.recorder'), meeting.recorder_name),
        meeting.cancel_reason ? info(t('meet.cancelReason'), meeting.cancel_reason) : null,
      ),
    ];
  }

  function quorumBox() {
    const q = view.quorum;
    return h(
      'p',
      { class: q.quorate ? 'quorum quorum-yes' : 'quorum', 'data-testid': 'quorum' },
      t('meet.quorum', { required: q.required, present: q.present }),
      ' ',
      h('strong', {}, q.quorate ? t('meet.quorate') : t('meet.notQuorate')),
    );
  }

  function agendaCard() {
    if (view.agenda.length === 0) return null;
    return meetingCard(
      t('meet.agenda'),
      h(
        'ol',
        { class: 'agenda' },
        view.agenda.map((item) => h('li', {}, item.title, item.description ? h('div', { class: 'hint' }, item.description) : null)),
      ),
    );
  }

  function participantRow(person) {
    const live = view.meeting.status === 'live' && view.can.manage_attendance;
    const status = person.final_status
      ? t(`meet.final.${person.final_status}`)
      : person.present
        ? t('meet.present')
        : person.leave
          ? t(`meet.leave.${person.leave}`)
          : t('meet.notPresent');
    return h(
      'tr',
      { 'data-testid': 'participant', 'data-member': String(person.member_id) },
      h('td', {}, person.name),
      h('td', {}, person.org_name),
      h('td', {}, person.voting ? t('meet.voting') : t(`meet.attendance.${person.attendance}`)),
      h('td', {}, status, person.excused ? h('span', { class: 'tag tag-muted' }, t('meet.excused')) : null),
      h(
        'td',
        {},
        live
          ? h(
            'button',
            {
              type: 'button',
              class: 'button button-small',
              onclick: () => act(() => api.put(path(`/attendance/${person.member_id}`), { present: !person.marked_present })),
            },
            person.marked_present ? t('meet.unmark', { name: person.name }) : t('meet.mark', { name: person.name }),
          )
          : null,
      ),
    );
  }

  function rollCard() {
    return meetingCard(
      t('meet.roll'),
      quorumBox(),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              [t('meet.name'), t('meet.org'), t('meet.role'), t('meet.attendanceColumn'), ''].map((text) => h('th', { scope: 'col' }, text)),
            ),
          ),
          h('tbody', {}, view.participants.map(participantRow)),
        ),
      ),
    );
  }

  async function requestLeave() {
    const reason = await openDialog(t('meet.requestLeave'), (close) =>
      dialogForm(
        close,
        [field(t('meet.leaveReason'), h('textarea', { name: 'reason', rows: 3, maxlength: 500 }))],
        t('meet.requestLeave'),
        async (form) => {
          const text = String(new FormData(form).get('reason') || '');
          await api.post(path('/leave'), { reason: text });
          return text;
        },
      ),
    );
    if (reason !== undefined) {
      announce(t('meet.leaveFiled'));
      await load();
    }
  }

  function leaveRow(request) {
    const deciding = view.can.manage_attendance && request.status === 'pending';
    const decide = (approve) =>
      act(() => api.post(path(`/leave/${request.member_id}/decision`), { approve }), t(approve ? 'meet.leaveApproved' : 'meet.leaveRejected'));
    return h(
      'li',
      { 'data-testid': 'leave-request' },
      h('strong', {}, request.name),
      ' ',
      h('span', { class: `status-tag leave-${request.status}` }, t(`meet.leave.${request.status}`)),
      request.reason ? h('div', {}, t('meet.leaveReasonIs', { reason: request.reason })) : null,
      request.decided_by_name ? h('div', { class: 'hint' }, t('meet.decidedBy', { name: request.decided_by_name, at: formatDateMinutes(request.decided_at) })) : null,
      deciding
        ? h(
          'div',
          { class: 'row-actions' },
          h('button', { type: 'button', class: 'button button-small button-primary', onclick: () => decide(true) }, t('meet.approveLeave', { name: request.name })),
          h('button', { type: 'button', class: 'button button-small', onclick: () => decide(false) }, t('meet.rejectLeave', { name: request.name })),
        )
        : null,
    );
  }

  function leaveCard() {
    const mine = view.leave_requests.find((request) => request.member_id === view.me.member_id);
    const button = view.can.request_leave && !mine
      ? h('button', { type: 'button', class: 'button', onclick: requestLeave }, t('meet.requestLeave'))
      : null;
    if (!button && view.leave_requests.length === 0) return null;
    return meetingCard(
      t('meet.leaveTitle'),
      button,
      view.leave_requests.length === 0 ? h('p', { class: 'muted' }, t('meet.noLeave')) : h('ul', { class: 'leave-list' }, view.leave_requests.map(leaveRow)),
    );
  }

  function recordingsCard() {
    if (recordings.length === 0) return null;
    return meetingCard(
      t('meet.recordings'),
      null,
      h(
        'ul',
        { class: 'leave-list', 'data-testid': 'recordings' },
        recordings.map((entry) =>
          h(
            'li',
            {},
            `${formatDateMinutes(entry.started_at)} · ${entry.started_by_name} · `,
            entry.recording
              ? h('strong', {}, t('room.recording'))
              : h('a', { href: path(`/recordings/${entry.id}`), download: `meeting-${id}-${entry.id}.ogg` }, t('meet.recordingDownload', { minutes: Math.max(1, Math.round(entry.duration_ms / 60000)) })),
          ),
        ),
      ),
    );
  }

  function draw() {
    const scroll = outlet.scrollTop;
    replace(
      outlet,
      h('section', { class: 'page meeting-page' }, header(), agendaCard(), rollCard(), leaveCard(), votesPanel({ view, path, act, reload: load }), minutes.render(view), recordingsCard(), liveRegion),
    );
    outlet.scrollTop = scroll;
  }

  function onMeetingEvent(event) {
    const data = event.data || {};
    const messages = {
      'leave.filed': () => t('meet.liveLeaveFiled', { name: data.name }),
      'leave.decided': () => t(`meet.liveLeave.${data.status}`, { name: data.name }),
      'vote.opened': () => t('meet.liveVoteOpened', { title: data.title }),
      'vote.closed': () => t('meet.liveVoteClosed', { title: data.title }),
      'minutes.saved': () => t('meet.liveMinutes', { name: data.saved_by_name }),
      'meeting.started': () => t('meet.liveStarted'),
      'meeting.ended': () => t('meet.liveEnded'),
      'meeting.cancelled': () => t('meet.liveCancelled'),
      'meeting.recording': () => t(data.recording ? 'room.recordingStarted' : 'room.recordingStopped'),
    };
    const message = messages[event.kind] ? messages[event.kind]() : null;
    if (message) {
      liveRegion.textContent = message;
      announce(message, 'info', { toast: true });
    }
    load();
  }

  async function load() {
    loadTicket += 1;
    const ticket = loadTicket;
    let next;
    let nextRecordings;
    try {
      [next, nextRecordings] = await Promise.all([api.get(path()), api.get(path('/recordings'))]);
    } catch (error) {
      if (!closed && ticket === loadTicket) replace(outlet, h('section', { class: 'page' }, errorState(error, load)));
      return;
    }
    if (closed || ticket !== loadTicket) return;
    const first = !view;
    view = next;
    recordings = nextRecordings;
    draw();
    if (first) {
      outlet.querySelector('h1').focus({ preventScroll: true });
      unsubscribe = hub.subscribe(`meeting:${id}`, { onEvent: onMeetingEvent, onReset: load }, { since: view.seq });
    }
  }

  load();
  return {
    close() {
      closed = true;
      if (unsubscribe) unsubscribe();
    },
  };
}
