// One meeting's page: details, agenda, the roll with live quorum numbers,
// leave requests (请假) and their decisions, votes and their results, the
// minutes and the calendar file. Which controls show follows the `can`
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
import { clock, meetingStatusTag, placeText } from './meetings.js';
import { createRichText } from './richtext.js';

const CHOICES = ['for', 'against', 'abstain'];

export function renderMeetingDetail(outlet, id) {
  let closed = false;
  let view = null;
  let unsubscribe = null;
  let busy = false;
  /** Numbers each snapshot request, so a late response never replaces a newer one. */
  let loadTicket = 0;
  /** Minutes typed and not yet saved, kept across live redraws. */
  let minutesDraft = null;
  /** The version the recorder's draft is based on. */
  let draftVersion = 0;
  let minutesEditor = null;
  const liveRegion = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'meeting-live' });

  replace(outlet, h('section', { class: 'page' }, h('p', { class: 'muted' }, t('common.loading'))));

  const path = (suffix = '') => `/api/meetings/${id}${suffix}`;

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
        h('a', { href: path('/ics'), class: 'button', download: `meeting-${id}.ics` }, t('meet.ics')),
        h('button', { type: 'button', class: 'button', disabled: true, 'aria-describedby': `room-hint-${id}` }, t('meet.enterRoom')),
      ),
      h('p', { class: 'hint', id: `room-hint-${id}` }, t('meet.roomHint')),
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

  function card(title, ...children) {
    return h(
      'section',
      { class: 'card', 'aria-label': title },
      h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, title)),
      h('div', { class: 'card-body' }, ...children),
    );
  }

  function agendaCard() {
    if (view.agenda.length === 0) return null;
    return card(
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
    return card(
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
    return card(
      t('meet.leaveTitle'),
      button,
      view.leave_requests.length === 0 ? h('p', { class: 'muted' }, t('meet.noLeave')) : h('ul', { class: 'leave-list' }, view.leave_requests.map(leaveRow)),
    );
  }

  function resultText(vote) {
    const result = vote.result;
    if (!result) return null;
    const outcome = t(`meet.outcome.${result.outcome}`);
    if (result.kind === 'motion') {
      return t('meet.motionResult', { votes_for: result.votes_for, against: result.against, abstain: result.abstain, required: result.required, outcome });
    }
    const name = (position) => (vote.candidates.find((c) => c.position === position) || {}).name || '';
    const lines = result.candidates.map((c) => {
      let mark = '';
      if (c.elected) mark = ` ${t('meet.elected')}`;
      else if (c.tied) mark = ` ${t('meet.tied')}`;
      return `${t('meet.candidateVotes', { name: name(c.position), votes: c.votes })}${mark}`;
    });
    return `${lines.join('；')} · ${outcome}`;
  }

  /** Names an open ballot's choice: for, against or abstain on a motion, or the marked candidates. */
  function namedChoice(vote, choice) {
    if (!Array.isArray(choice)) return t(`meet.choice.${choice}`);
    if (choice.length === 0) return t('meet.blankBallot');
    return choice.map((position) => (vote.candidates.find((c) => c.position === position) || {}).name || '').join('、');
  }

  /** Builds an election ballot: at most `seats` candidates, none for a blank ballot. */
  function electionBallot(vote, cast) {
    const boxes = vote.candidates.map((candidate) =>
      h('label', { class: 'checkbox' }, h('input', { type: 'checkbox', value: String(candidate.position) }), candidate.name),
    );
    const submit = () => {
      const marked = boxes.map((label) => label.querySelector('input')).filter((box) => box.checked).map((box) => Number(box.value));
      cast({ candidates: marked });
    };
    return h(
      'fieldset',
      { class: 'row-actions election-ballot' },
      h('legend', {}, t('meet.markCandidates', { seats: vote.seats })),
      boxes,
      h('button', { type: 'button', class: 'button button-small button-primary', onclick: submit }, t('meet.castBallot')),
    );
  }

  function voteItem(vote) {
    const open = vote.status === 'open';
    const canCast = open && view.me.voting && view.me.present && !vote.i_voted;
    const cast = (ballot) => act(() => api.post(path(`/votes/${vote.id}/ballot`), ballot), t('meet.cast'));
    return h(
      'li',
      { class: 'vote', 'data-testid': 'vote' },
      h('strong', {}, vote.title),
      ' ',
      h('span', { class: 'tag' }, t(`meet.ballot.${vote.ballot}`)),
      ' ',
      h('span', { class: 'tag tag-muted' }, t(`meet.rule.${vote.pass_rule}`)),
      h('div', { class: 'hint' }, open ? t('meet.voteOpen', { voted: vote.voted }) : t('meet.voteClosed', { voted: vote.voted })),
      vote.i_voted ? h('div', { class: 'hint' }, t('meet.iVoted')) : null,
      canCast && vote.kind === 'motion'
        ? h('div', { class: 'row-actions' }, CHOICES.map((choice) => h('button', { type: 'button', class: 'button button-small', onclick: () => cast({ choice }) }, t(`meet.choice.${choice}`))))
        : null,
      canCast && vote.kind === 'election' ? electionBallot(vote, cast) : null,
      open && view.can.run_votes
        ? h('button', { type: 'button', class: 'button button-small button-danger', onclick: () => act(() => api.post(path(`/votes/${vote.id}/close`)), t('meet.voteClosedNow')) }, t('meet.closeVote'))
        : null,
      vote.result ? h('p', { class: 'vote-result', 'data-testid': 'vote-result' }, resultText(vote)) : null,
      vote.named.length > 0
        ? h('p', { class: 'hint' }, vote.named.map((entry) => `${entry.name}：${namedChoice(vote, entry.choice)}`).join('；'))
        : null,
    );
  }

  async function openVote() {
    const rules = [h('option', { value: '' }, t('meet.noAgendaItem')), view.agenda.map((item) => h('option', { value: String(item.position) }, item.title))];
    const electionFields = h(
      'div',
      { hidden: true },
      field(t('meet.seats'), h('input', { name: 'seats', type: 'number', min: 1, value: '1' })),
      h(
        'fieldset',
        { class: 'field' },
        h('legend', {}, t('meet.candidates')),
        view.participants.map((person) =>
          h('label', { class: 'checkbox' }, h('input', { type: 'checkbox', name: 'candidates', value: String(person.member_id) }), person.name),
        ),
      ),
    );
    const kindSelect = h(
      'select',
      { name: 'kind', onchange: () => { electionFields.hidden = kindSelect.value !== 'election'; } },
      h('option', { value: 'motion' }, t('meet.voteKind.motion')),
      h('option', { value: 'election' }, t('meet.voteKind.election')),
    );
    const opened = await openDialog(t('meet.openVote'), (close) =>
      dialogForm(
        close,
        [
          field(t('meet.voteKindField'), kindSelect),
          field(t('meet.voteTitle'), h('input', { name: 'title', type: 'text', maxlength: 200 })),
          field(t('meet.agendaItemField'), h('select', { name: 'agenda_position' }, rules)),
          field(
            t('meet.ballotField'),
            h('select', { name: 'ballot' }, h('option', { value: 'open' }, t('meet.ballot.open')), h('option', { value: 'secret' }, t('meet.ballot.secret'))),
          ),
          field(
            t('meet.passRule'),
            h('select', { name: 'pass_rule' }, h('option', { value: 'majority' }, t('meet.rule.majority')), h('option', { value: 'two_thirds' }, t('meet.rule.two_thirds'))),
          ),
          electionFields,
        ],
        t('meet.openVote'),
        async (form) => {
          const data = new FormData(form);
          const position = String(data.get('agenda_position') || '');
          const election = data.get('kind') === 'election';
          await api.post(path('/votes'), {
            kind: data.get('kind'),
            title: String(data.get('title') || ''),
            ballot: data.get('ballot'),
            agenda_position: position === '' ? null : Number(position),
            pass_rule: election ? null : data.get('pass_rule'),
            seats: election ? Number(data.get('seats')) : 0,
            candidates: election ? data.getAll('candidates').map((id) => ({ member_id: Number(id) })) : [],
          });
          return true;
        },
      ),
    );
    if (opened) {
      announce(t('meet.voteOpened'));
      await load();
    }
  }

  function votesCard() {
    if (!view.decides) return null;
    const anyOpen = view.votes.some((vote) => vote.status === 'open');
    const button = view.can.run_votes && !anyOpen ? h('button', { type: 'button', class: 'button', onclick: openVote }, t('meet.openVote')) : null;
    if (!button && view.votes.length === 0) return null;
    return card(
      t('meet.votes'),
      button,
      view.votes.length === 0 ? h('p', { class: 'muted' }, t('meet.noVotes')) : h('ul', { class: 'vote-list' }, view.votes.map(voteItem)),
    );
  }

  async function saveMinutes() {
    const body = minutesEditor.html();
    try {
      await api.put(path('/minutes'), { body_html: body, expected_version: draftVersion });
    } catch (error) {
      // A conflict keeps the typed text so the recorder can merge it.
      announce(error.message, 'error');
      return;
    }
    minutesDraft = null;
    announce(t('meet.minutesSaved'));
    await load();
  }

  function minutesCard() {
    const minutes = view.minutes;
    const parts = [];
    if (minutes) {
      const minutesBody = h('div', { class: 'minutes-body', 'data-testid': 'minutes' });
      // The server sanitizes the minutes when they are saved.
      minutesBody.innerHTML = minutes.body_html;
      parts.push(
        minutesBody,
        h('p', { class: 'hint' }, t('meet.minutesVersion', { version: minutes.version, name: minutes.saved_by_name, at: formatDateMinutes(minutes.saved_at) })),
        minutes.approved_at ? h('p', { class: 'status-tag' }, t('meet.minutesApprovedBy', { name: minutes.approved_by_name })) : null,
      );
    }
    if (view.can.write_minutes) {
      if (minutesDraft === null) draftVersion = minutes ? minutes.version : 0;
      minutesEditor = createRichText({ name: 'minutes', label: t('meet.minutesEdit'), initialHtml: minutesDraft ?? (minutes ? minutes.body_html : '') });
      minutesEditor.element.addEventListener('input', () => {
        minutesDraft = minutesEditor.html();
      });
      if (minutes && minutesDraft !== null && minutes.version !== draftVersion) {
        parts.push(h('p', { class: 'form-error', role: 'alert' }, t('meet.minutesChanged', { version: minutes.version })));
      }
      parts.push(minutesEditor.element, h('button', { type: 'button', class: 'button button-primary', onclick: saveMinutes }, t('meet.saveMinutes')));
    }
    if (view.can.approve_minutes && minutes) {
      parts.push(
        h(
          'button',
          { type: 'button', class: 'button', onclick: () => act(() => api.post(path('/minutes/approve'), { version: minutes.version }), t('meet.minutesApproved')) },
          t('meet.approveMinutes'),
        ),
      );
    }
    if (parts.length === 0) return null;
    return card(t('meet.minutes'), parts);
  }

  function draw() {
    const scroll = outlet.scrollTop;
    replace(
      outlet,
      h('section', { class: 'page meeting-page' }, header(), agendaCard(), rollCard(), leaveCard(), votesCard(), minutesCard(), liveRegion),
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
    try {
      next = await api.get(path());
    } catch (error) {
      if (!closed && ticket === loadTicket) replace(outlet, h('section', { class: 'page' }, errorState(error, load)));
      return;
    }
    if (closed || ticket !== loadTicket) return;
    const first = !view;
    view = next;
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
