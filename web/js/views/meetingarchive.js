// The meeting archive (会议档案) of one organization and year: how many
// meetings of each kind it held (the 三会一课 cadence), the held meetings
// with their record exported as JSON, and, for those who manage the
// organization, the excusals from attendance (long illness, work abroad)
// that keep a member out of the quorum count.
//
// Route: /meetings/archive?org=ID&year=Y.

import { api, query } from '../api.js';
import { announce, confirmDialog, dialogForm, errorState, field, h, openDialog, replace } from '../dom.js';
import { formatDate, formatDateMinutes, t } from '../i18n.js';
import { session } from '../session.js';
import { meetingCard } from './meetings.js';

/** Years offered in the year picker, counting back from the current one. */
const YEARS_SHOWN = 6;
/** Largest member page the server returns. */
const MEMBER_LIMIT = 100;

export function renderMeetingArchive(outlet) {
  let closed = false;
  let orgs = [];
  const params = new URLSearchParams(location.search);
  const thisYear = new Date().getFullYear();
  const orgSelect = h('select', { name: 'org', onchange: () => show() });
  const yearSelect = h(
    'select',
    { name: 'year', onchange: () => show() },
    Array.from({ length: YEARS_SHOWN }, (_, index) => thisYear - index).map((year) => h('option', { value: String(year) }, t('archive.year', { year }))),
  );
  yearSelect.value = params.get('year') || String(thisYear);
  const body = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, t('common.loading')));
  const excusals = h('div');
  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      h(
        'header',
        { class: 'page-header' },
        h('a', { href: '/meetings', class: 'button button-small', 'data-link': true }, `← ${t('meet.back')}`),
        h('h1', {}, t('archive.title')),
        h('div', { class: 'page-header-spacer' }),
      ),
      h('div', { class: 'filters' }, field(t('meet.org'), orgSelect), field(t('archive.yearField'), yearSelect)),
      body,
      excusals,
    ),
  );

  function selectedOrg() {
    return orgs.find((org) => String(org.id) === orgSelect.value);
  }

  function countsCard(archive) {
    return meetingCard(
      t('archive.counts', { org: archive.org_name, year: archive.year }),
      h(
        'ul',
        { class: 'archive-counts', 'data-testid': 'archive-counts' },
        archive.counts.map((count) => h('li', {}, h('strong', {}, String(count.held)), h('span', {}, t(`meet.kind.${count.kind}`)))),
      ),
    );
  }

  function meetingsCard(archive) {
    const rows = archive.meetings.map((meeting) =>
      h(
        'li',
        { class: 'meeting-row', 'data-testid': 'archive-meeting' },
        h('div', { class: 'meeting-time' }, formatDate(meeting.starts_at)),
        h(
          'div',
          { class: 'meeting-main' },
          h('a', { href: `/meetings/${meeting.id}`, 'data-link': true, class: 'meeting-title' }, meeting.title),
          h('div', { class: 'hint' }, [t(`meet.kind.${meeting.kind}`), t('meet.hostIs', { name: meeting.host_name })].join(' · ')),
        ),
        h('a', { href: `/api/meetings/${meeting.id}/record`, class: 'button button-small', download: `meeting-${meeting.id}.json` }, t('archive.export', { title: meeting.title })),
      ),
    );
    return meetingCard(
      t('archive.held'),
      rows.length === 0 ? h('p', { class: 'empty-state' }, t('archive.empty')) : h('ul', { class: 'meeting-rows' }, rows),
    );
  }

  async function show() {
    history.replaceState(null, '', `/meetings/archive${query({ org: orgSelect.value, year: yearSelect.value })}`);
    replace(body, h('p', { class: 'muted' }, t('common.loading')));
    let archive;
    try {
      archive = await api.get(`/api/orgs/${orgSelect.value}/meeting-archive${query({ year: yearSelect.value })}`);
    } catch (error) {
      if (!closed) replace(body, errorState(error, show));
      return;
    }
    if (closed) return;
    replace(body, countsCard(archive), meetingsCard(archive));
    const org = selectedOrg();
    if (org && org.can_write) showExcusals(org);
    else replace(excusals);
  }

  // ---- excusals ----

  async function showExcusals(org) {
    let page;
    try {
      page = await api.get(`/api/orgs/${org.id}/members${query({ limit: MEMBER_LIMIT })}`);
    } catch (error) {
      if (!closed) replace(excusals, errorState(error, () => showExcusals(org)));
      return;
    }
    if (closed) return;
    const memberSelect = h(
      'select',
      { name: 'member', onchange: () => listExcusals() },
      page.items.map((member) => h('option', { value: String(member.id) }, member.name)),
    );
    const list = h('div', { 'data-testid': 'excusals' });

    async function listExcusals() {
      if (!memberSelect.value) return;
      let items;
      try {
        items = await api.get(`/api/meeting-excusals${query({ member_id: memberSelect.value })}`);
      } catch (error) {
        replace(list, errorState(error, listExcusals));
        return;
      }
      replace(list, items.length === 0 ? h('p', { class: 'muted' }, t('archive.noExcusals')) : h('ul', { class: 'leave-list' }, items.map((item) => excusalRow(item, listExcusals))));
    }

    const recordButton = h('button', { type: 'button', class: 'button', onclick: () => recordExcusal(memberSelect, listExcusals) }, t('archive.recordExcusal'));
    replace(
      excusals,
      meetingCard(t('archive.excusals'), h('p', { class: 'hint' }, t('archive.excusalHint')), h('div', { class: 'filters' }, field(t('archive.member'), memberSelect), recordButton), list),
    );
    await listExcusals();
  }

  function excusalRow(item, reload) {
    const revoke = async () => {
      if (!(await confirmDialog(t('archive.revokeTitle'), t('archive.revokeConfirm', { name: item.name, reason: item.reason }), t('archive.revoke'), true))) return;
      try {
        await api.post(`/api/meeting-excusals/${item.id}/revoke`);
        announce(t('archive.revoked'));
      } catch (error) {
        announce(error.message, 'error');
      }
      await reload();
    };
    return h(
      'li',
      { 'data-testid': 'excusal' },
      h('strong', {}, t('archive.period', { from: formatDate(item.starts_on), to: formatDate(item.ends_on) })),
      ' ',
      item.reason,
      item.revoked_at ? h('span', { class: 'tag tag-muted' }, t('archive.revokedAt', { at: formatDateMinutes(item.revoked_at) })) : null,
      h('div', { class: 'hint' }, t('archive.recordedBy', { name: item.created_by_name, at: formatDateMinutes(item.created_at) })),
      item.revoked_at ? null : h('button', { type: 'button', class: 'button button-small', onclick: revoke }, t('archive.revoke')),
    );
  }

  async function recordExcusal(memberSelect, reload) {
    const name = memberSelect.selectedOptions[0] ? memberSelect.selectedOptions[0].textContent : '';
    const today = new Date().toISOString().slice(0, 10);
    const recorded = await openDialog(t('archive.recordExcusalFor', { name }), (close) =>
      dialogForm(
        close,
        [
          field(t('archive.reason'), h('input', { name: 'reason', type: 'text', maxlength: 200 }), t('archive.reasonHint')),
          field(t('archive.startsOn'), h('input', { name: 'starts_on', type: 'date', value: today })),
          field(t('archive.endsOn'), h('input', { name: 'ends_on', type: 'date' })),
        ],
        t('archive.recordExcusal'),
        async (form) => {
          const data = new FormData(form);
          await api.post('/api/meeting-excusals', {
            member_id: Number(memberSelect.value),
            reason: String(data.get('reason') || ''),
            starts_on: String(data.get('starts_on') || ''),
            ends_on: String(data.get('ends_on') || ''),
          });
          return true;
        },
      ),
    );
    if (recorded) {
      announce(t('archive.excusalRecorded'));
      await reload();
    }
  }

  (async () => {
    try {
      orgs = await api.get('/api/orgs');
    } catch (error) {
      if (!closed) replace(body, errorState(error, null));
      return;
    }
    if (closed) return;
    if (orgs.length === 0) {
      replace(body, h('p', { class: 'empty-state' }, t('archive.noOrgs')));
      return;
    }
    const own = session.member ? session.member.org_id : null;
    const wanted = params.get('org') || String(own ?? orgs[0].id);
    replace(orgSelect, orgs.map((org) => h('option', { value: String(org.id) }, org.name)));
    orgSelect.value = orgs.some((org) => String(org.id) === wanted) ? wanted : String(orgs[0].id);
    await show();
  })();

  return {
    close() {
      closed = true;
    },
  };
}
