// Meetings: the caller's meetings (upcoming first, then past) grouped by
// day, the scheduling and editing form, the archive, one meeting's page
// and its room. The server decides who
// may schedule: the button shows for those who may manage an organization
// (`can_write` on GET /api/orgs), as for composing a notice.
//
// Routes: /meetings, /meetings/new, /meetings/archive, /meetings/ID,
// /meetings/ID/edit, /meetings/ID/room.

import { api, query } from '../api.js';
import { errorState, h, replace } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { renderMeetingArchive } from './meetingarchive.js';
import { renderMeetingForm } from './meetingform.js';
import { renderMeetingDetail } from './meetingdetail.js';
import { renderMeetingRoom } from './meetingroom.js';

/** The list's page size: the largest the server allows. */
const LIST_LIMIT = 100;

/** Returns the organizations the caller may schedule meetings for. */
export async function schedulableOrgs() {
  try {
    return (await api.get('/api/orgs')).filter((org) => org.can_write);
  } catch {
    return [];
  }
}

/** Formats a time of day as HH:MM. */
export function clock(ms) {
  const date = new Date(ms);
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

/** Builds the status tag of a meeting's state. */
export function meetingStatusTag(status) {
  return h('span', { class: `status-tag meeting-status meeting-status-${status}`, 'data-testid': 'meeting-status' }, t(`meet.status.${status}`));
}

/** Builds a titled card of the meeting pages. */
export function meetingCard(title, ...children) {
  return h(
    'section',
    { class: 'card', 'aria-label': title },
    h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, title)),
    h('div', { class: 'card-body' }, ...children),
  );
}

/** Describes where the meeting takes place: the room, online, or both. */
export function placeText(meeting) {
  const parts = [];
  if (meeting.place) parts.push(meeting.place);
  if (meeting.online) parts.push(t('meet.online'));
  return parts.join(' · ') || t('meet.noPlace');
}

export function mountMeetings(outlet, context) {
  let instance = null;

  function show(next) {
    if (instance && instance.close) instance.close();
    const [section, id, part] = next.params;
    if (section === 'new') instance = renderMeetingForm(outlet, next);
    else if (section === 'archive') instance = renderMeetingArchive(outlet);
    else if (id && part === 'room') instance = renderMeetingRoom(outlet, Number(id), next);
    else if (id && part === 'edit') instance = renderMeetingForm(outlet, next, Number(id));
    else if (id) instance = renderMeetingDetail(outlet, Number(id), next);
    else instance = renderList(outlet);
  }

  show(context);
  return {
    update: show,
    unmount() {
      if (instance && instance.close) instance.close();
    },
  };
}

function renderList(outlet) {
  let closed = false;
  const scheduleLink = h('a', { href: '/meetings/new', class: 'button button-primary', 'data-link': true, hidden: true }, `+ ${t('meet.schedule')}`);
  const body = h('div', { class: 'meeting-list' }, h('p', { class: 'muted' }, t('common.loading')));
  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      h(
        'header',
        { class: 'page-header' },
        h('h1', {}, t('meet.title')),
        h('div', { class: 'page-header-spacer' }),
        h('a', { href: '/meetings/archive', class: 'button', 'data-link': true }, t('archive.title')),
        scheduleLink,
      ),
      body,
    ),
  );
  schedulableOrgs().then((orgs) => {
    scheduleLink.hidden = orgs.length === 0;
  });

  function row(meeting) {
    return h(
      'li',
      { class: 'meeting-row', 'data-testid': 'meeting-row' },
      h('div', { class: 'meeting-time' }, `${clock(meeting.starts_at)}–${clock(meeting.ends_at)}`),
      h(
        'div',
        { class: 'meeting-main' },
        h('a', { href: `/meetings/${meeting.id}`, 'data-link': true, class: 'meeting-title' }, meeting.title),
        h(
          'div',
          { class: 'hint' },
          [meeting.kind_name, meeting.org_name, placeText(meeting), t('meet.hostIs', { name: meeting.host_name })].join(' · '),
        ),
      ),
      meetingStatusTag(meeting.status),
    );
  }

  function groups(title, meetings) {
    if (meetings.length === 0) return null;
    const days = [];
    for (const meeting of meetings) {
      const day = formatDate(meeting.starts_at);
      const last = days[days.length - 1];
      if (last && last.day === day) last.items.push(meeting);
      else days.push({ day, items: [meeting] });
    }
    return h(
      'section',
      { class: 'card', 'aria-label': title },
      h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, title)),
      h(
        'div',
        { class: 'card-body' },
        days.map((group) => [h('h3', { class: 'meeting-day' }, group.day), h('ul', { class: 'meeting-rows' }, group.items.map(row))]),
      ),
    );
  }

  async function load() {
    let page;
    try {
      page = await api.get(`/api/meetings${query({ limit: LIST_LIMIT })}`);
    } catch (error) {
      if (!closed) replace(body, errorState(error, load));
      return;
    }
    if (closed) return;
    const open = (m) => m.status === 'scheduled' || m.status === 'live';
    const upcoming = page.items.filter(open).sort((a, b) => a.starts_at - b.starts_at);
    const past = page.items.filter((m) => !open(m)).sort((a, b) => b.starts_at - a.starts_at);
    if (upcoming.length === 0 && past.length === 0) {
      replace(body, h('p', { class: 'empty-state' }, t('meet.empty')));
      return;
    }
    replace(body, groups(t('meet.upcoming'), upcoming), groups(t('meet.past'), past));
  }

  load();
  return {
    close() {
      closed = true;
    },
  };
}
