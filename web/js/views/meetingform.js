// The scheduling form (安排会议): organization, kind, title, times, place,
// agenda, host, recorder and invitees. The same form edits a scheduled
// meeting, whose organization stays fixed. The server checks everything
// and names the offending field. Its errors appear next to that field, and
// nothing typed is lost.
//
// Routes: /meetings/new, /meetings/ID/edit.

import { api, query } from '../api.js';
import { clearFormErrors, errorState, field, h, replace, showFormError } from '../dom.js';
import { t } from '../i18n.js';
import { session } from '../session.js';
import { schedulableOrgs } from './meetings.js';

const KINDS = ['general_meeting', 'branch_committee', 'party_committee', 'group_meeting', 'party_lecture', 'life_meeting', 'other'];
/** Largest member page the server returns: the host and recorder choices. */
const MEMBER_LIMIT = 100;
/** Maximum results of the member directory search, which allows 1 to 20. */
const SEARCH_LIMIT = 20;
const HOUR_MS = 3600 * 1000;

/** Formats epoch milliseconds for a `datetime-local` input. */
function localInput(ms) {
  const date = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Maps a server field such as `agenda[1].description` to the input showing it. */
function inputField(name) {
  if (!name) return name;
  if (name.startsWith('invitees')) return 'invitee_search';
  const agenda = name.match(/^agenda\[(\d+)\]/);
  if (agenda) return `agenda_${agenda[1]}`;
  return name;
}

/**
 * Renders the form. With `meetingId` it loads that meeting and saves the
 * edit with PUT; without it, it schedules a new meeting.
 */
export function renderMeetingForm(outlet, { navigate }, meetingId = null) {
  let closed = false;
  /** Invitees chosen so far: `{ member_id, name, org_name, attendance }`. */
  const invitees = [];
  const agendaList = h('ol', { class: 'agenda-edit' });
  const inviteeList = h('ul', { class: 'invitee-list', 'data-testid': 'invitees' });
  const searchResults = h('div', { class: 'search-results' });
  const orgSelect = h('select', { name: 'org_id' });
  const hostSelect = h('select', { name: 'host_member' });
  const recorderSelect = h('select', { name: 'recorder_member' });
  const search = h('input', { name: 'invitee_search', type: 'search', autocomplete: 'off', placeholder: t('meet.inviteeSearch') });
  const start = Date.now() + 24 * HOUR_MS;
  const startRounded = start - (start % HOUR_MS);
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, meetingId ? t('meet.saveEdit') : t('meet.scheduleSubmit'));
  const cancelHref = meetingId ? `/meetings/${meetingId}` : '/meetings';

  const form = h(
    'form',
    { class: 'card card-body meeting-form', novalidate: true },
    field(t('meet.org'), orgSelect),
    field(t('meet.kind'), h('select', { name: 'kind' }, KINDS.map((kind) => h('option', { value: kind }, t(`meet.kind.${kind}`))))),
    field(t('meet.titleField'), h('input', { name: 'title', type: 'text', maxlength: 200, required: true })),
    h(
      'div',
      { class: 'form-row' },
      field(t('meet.startsAt'), h('input', { name: 'starts_at', type: 'datetime-local', value: localInput(startRounded) })),
      field(t('meet.endsAt'), h('input', { name: 'ends_at', type: 'datetime-local', value: localInput(startRounded + 2 * HOUR_MS) })),
    ),
    field(t('meet.place'), h('input', { name: 'place', type: 'text', maxlength: 200 })),
    h('label', { class: 'checkbox' }, h('input', { type: 'checkbox', name: 'online' }), t('meet.onlineField')),
    h(
      'fieldset',
      { class: 'field' },
      h('legend', {}, t('meet.agenda')),
      agendaList,
      h('button', { type: 'button', class: 'button button-small', onclick: () => addAgendaItem() }, `+ ${t('meet.addAgenda')}`),
    ),
    h('div', { class: 'form-row' }, field(t('meet.host'), hostSelect), field(t('meet.recorder'), recorderSelect)),
    h('fieldset', { class: 'field' }, h('legend', {}, t('meet.invitees')), inviteeList, field(t('meet.inviteeAdd'), search, t('meet.inviteeHint')), searchResults),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' }, h('a', { href: cancelHref, class: 'button', 'data-link': true }, t('common.cancel')), submit),
  );
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  replace(
    outlet,
    h('section', { class: 'page' }, h('header', { class: 'page-header' }, h('h1', {}, meetingId ? t('meet.editTitle') : t('meet.schedule'))), body),
  );

  function addAgendaItem(item = null) {
    const index = agendaList.children.length;
    const title = h('input', { name: `agenda_${index}`, type: 'text', maxlength: 200, 'aria-label': t('meet.agendaItem', { n: index + 1 }), value: item ? item.title : null });
    const rule = h(
      'select',
      { 'aria-label': t('meet.passRuleOf', { n: index + 1 }), class: 'agenda-rule' },
      h('option', { value: 'majority' }, t('meet.rule.majority')),
      h('option', { value: 'two_thirds' }, t('meet.rule.two_thirds')),
    );
    if (item) rule.value = item.pass_rule;
    agendaList.append(h('li', { class: 'field' }, title, rule));
    if (!item) title.focus();
  }

  function drawInvitees() {
    replace(
      inviteeList,
      invitees.map((person, index) =>
        h(
          'li',
          {},
          `${person.name}（${person.org_name}）`,
          h(
            'select',
            { 'aria-label': t('meet.attendanceOf', { name: person.name }), onchange: (event) => { person.attendance = event.target.value; } },
            ['required', 'optional'].map((value) => h('option', { value, selected: person.attendance === value }, t(`meet.attendance.${value}`))),
          ),
          h('button', { type: 'button', class: 'button button-small', onclick: () => { invitees.splice(index, 1); drawInvitees(); } }, t('meet.remove')),
        ),
      ),
    );
  }

  async function runSearch() {
    const text = search.value.trim();
    if (!text) {
      replace(searchResults);
      return;
    }
    let found;
    try {
      found = await api.get(`/api/members/search${query({ q: text, limit: SEARCH_LIMIT })}`);
    } catch (error) {
      replace(searchResults, h('p', { class: 'field-error' }, error.message));
      return;
    }
    if (closed || text !== search.value.trim()) return;
    const items = Array.isArray(found) ? found : found.items || [];
    replace(
      searchResults,
      items.length === 0
        ? h('p', { class: 'muted' }, t('meet.noMatch'))
        : h(
          'ul',
          { class: 'search-list' },
          items.map((member) =>
            h(
              'li',
              {},
              h(
                'button',
                {
                  type: 'button',
                  class: 'button button-small',
                  disabled: invitees.some((p) => p.member_id === member.id),
                  onclick: () => {
                    invitees.push({ member_id: member.id, name: member.name, org_name: member.org_name, attendance: 'required' });
                    drawInvitees();
                    search.value = '';
                    replace(searchResults);
                    search.focus();
                  },
                },
                `${t('meet.invite')} ${member.name}（${member.org_name}）`,
              ),
            ),
          ),
        ),
    );
  }

  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 200);
  });
  // Enter in the search box searches instead of submitting the form.
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      runSearch();
    }
  });

  async function loadMembers(chosen = null) {
    let page;
    try {
      page = await api.get(`/api/orgs/${orgSelect.value}/members${query({ limit: MEMBER_LIMIT })}`);
    } catch (error) {
      showFormError(form, error);
      return;
    }
    if (closed) return;
    const me = session.account.member_id;
    const options = (selected) =>
      page.items.map((member) => h('option', { value: String(member.id), selected: member.id === selected }, member.name));
    const second = page.items.find((member) => member.id !== me);
    if (chosen) {
      replace(hostSelect, options(chosen.host));
      replace(recorderSelect, options(chosen.recorder));
      return;
    }
    replace(hostSelect, options(page.items.some((m) => m.id === me) ? me : page.items[0] && page.items[0].id));
    replace(recorderSelect, options(second ? second.id : null));
  }

  function readInput() {
    const data = new FormData(form);
    const time = (name) => {
      const value = String(data.get(name) || '');
      return value ? new Date(value).getTime() : 0;
    };
    const agenda = [...agendaList.children]
      .map((item) => ({ title: item.querySelector('input').value, pass_rule: item.querySelector('select').value }))
      .filter((item) => item.title.trim() !== '');
    return {
      org_id: Number(orgSelect.value),
      kind: data.get('kind'),
      title: String(data.get('title') || ''),
      starts_at: time('starts_at'),
      ends_at: time('ends_at'),
      place: String(data.get('place') || ''),
      online: data.get('online') === 'on',
      agenda,
      host_member: Number(data.get('host_member')),
      recorder_member: Number(data.get('recorder_member')),
      invitees: invitees.map((person) => ({ member_id: person.member_id, attendance: person.attendance })),
    };
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      const saved = meetingId ? await api.put(`/api/meetings/${meetingId}`, readInput()) : await api.post('/api/meetings', readInput());
      if (!closed) navigate(`/meetings/${saved.meeting.id}`);
    } catch (error) {
      if (!closed) showFormError(form, { message: error.message, field: inputField(error.field) });
    } finally {
      submit.disabled = false;
    }
  });
  orgSelect.addEventListener('change', () => loadMembers());

  /** Fills the form from GET /api/meetings/ID for an edit. */
  async function loadMeeting() {
    let view;
    try {
      view = await api.get(`/api/meetings/${meetingId}`);
    } catch (error) {
      if (!closed) replace(body, errorState(error, loadMeeting));
      return;
    }
    if (closed) return;
    const meeting = view.meeting;
    replace(orgSelect, h('option', { value: String(meeting.org_id) }, meeting.org_name));
    orgSelect.disabled = true;
    const value = (name, text) => {
      form.querySelector(`[name="${name}"]`).value = text;
    };
    value('kind', meeting.kind);
    value('title', meeting.title);
    value('starts_at', localInput(meeting.starts_at));
    value('ends_at', localInput(meeting.ends_at));
    value('place', meeting.place);
    form.querySelector('[name="online"]').checked = meeting.online;
    for (const item of view.agenda) addAgendaItem(item);
    if (view.agenda.length === 0) addAgendaItem();
    for (const person of view.participants.filter((p) => p.source === 'invited')) {
      invitees.push({ member_id: person.member_id, name: person.name, org_name: person.org_name, attendance: person.attendance });
    }
    drawInvitees();
    replace(body, form);
    form.querySelector('[name="title"]').focus();
    await loadMembers({ host: meeting.host_member, recorder: meeting.recorder_member });
  }

  if (meetingId) {
    loadMeeting();
    return {
      close() {
        closed = true;
      },
    };
  }

  (async () => {
    const orgs = await schedulableOrgs();
    if (closed) return;
    if (orgs.length === 0) {
      replace(body, errorState({ message: t('meet.cannotSchedule') }, null));
      return;
    }
    const own = session.member ? session.member.org_id : null;
    replace(orgSelect, orgs.map((org) => h('option', { value: String(org.id), selected: org.id === own }, org.name)));
    replace(body, form);
    addAgendaItem();
    form.querySelector('[name="title"]').focus();
    await loadMembers();
  })();

  return {
    close() {
      closed = true;
    },
  };
}
