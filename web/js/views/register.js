// The document number register (发文登记簿) of one organization and year,
// for its officers: every number in order, void numbers marked with their
// reason. The server keeps void numbers, so the sequence has no gaps.
//
// Route: /approvals/register.

import { api, query } from '../api.js';
import { errorState, field, h, replace } from '../dom.js';
import { formatDateMinutes, t } from '../i18n.js';
import { approvalsHeader } from './approvalparts.js';

/** Years offered before the current one. */
const PAST_YEARS = 9;

export function mountRegister(outlet) {
  let closed = false;
  let loadTicket = 0;
  const thisYear = new Date().getFullYear();
  const orgSelect = h('select', { name: 'org' });
  const yearSelect = h(
    'select',
    { name: 'year' },
    Array.from({ length: PAST_YEARS + 1 }, (_, back) => h('option', { value: String(thisYear - back) }, String(thisYear - back))),
  );
  const body = h('div', { class: 'card-body' }, h('p', { class: 'muted' }, t('common.loading')));
  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      approvalsHeader('register'),
      h('div', { class: 'toolbar register-filters' }, field(t('register.org'), orgSelect), field(t('register.year'), yearSelect)),
      h('section', { class: 'card', 'aria-label': t('register.label') }, body),
    ),
  );

  function entryRow(entry) {
    const isVoid = entry.status === 'void';
    return h(
      'tr',
      { class: isVoid ? 'register-row-void' : null },
      h('td', { class: 'register-number' }, entry.number),
      h(
        'td',
        {},
        entry.title
          ? h('a', { href: `/approvals/involved/${entry.document_id}`, 'data-link': true }, entry.title)
          : h('span', { class: 'muted' }, t('register.hiddenTitle')),
        isVoid && entry.void_reason ? h('div', { class: 'hint' }, t('register.voidReason', { reason: entry.void_reason })) : null,
      ),
      h('td', {}, h('span', { class: `status-tag doc-status ${isVoid ? 'doc-status-voided' : 'doc-status-approved'}` }, t(`register.${entry.status}`))),
      h('td', {}, formatDateMinutes(entry.assigned_at)),
    );
  }

  async function load() {
    loadTicket += 1;
    const ticket = loadTicket;
    let entries;
    try {
      entries = await api.get(`/api/approvals/register${query({ org_id: orgSelect.value, year: yearSelect.value })}`);
    } catch (error) {
      if (!closed && ticket === loadTicket) replace(body, errorState(error, load));
      return;
    }
    if (closed || ticket !== loadTicket) return;
    if (entries.length === 0) {
      replace(body, h('p', { class: 'empty-state' }, t('register.empty')));
      return;
    }
    replace(
      body,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table register-table', 'data-testid': 'register' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, t('register.number')),
              h('th', { scope: 'col' }, t('register.titleColumn')),
              h('th', { scope: 'col' }, t('register.status')),
              h('th', { scope: 'col' }, t('register.assignedAt')),
            ),
          ),
          h('tbody', {}, entries.map(entryRow)),
        ),
      ),
    );
  }

  orgSelect.addEventListener('change', load);
  yearSelect.addEventListener('change', load);

  (async () => {
    let orgs;
    try {
      orgs = (await api.get('/api/orgs')).filter((org) => org.can_write);
    } catch (error) {
      if (!closed) replace(body, errorState(error, null));
      return;
    }
    if (closed) return;
    if (orgs.length === 0) {
      replace(body, h('p', { class: 'empty-state' }, t('register.noOrgs')));
      return;
    }
    replace(orgSelect, orgs.map((org) => h('option', { value: String(org.id) }, org.name)));
    await load();
  })();

  return {
    unmount() {
      closed = true;
    },
  };
}
