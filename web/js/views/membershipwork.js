// The transfer inbox and outbox, the dues page and the statistics page of
// the membership section. Money is entered in yuan and sent as integer fen.

import { api, query } from '../api.js';
import { announce, clearFormErrors, errorState, field, h, replace, showFormError } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { chosenOrg, localizeDates, managedOrgs, membershipHeader, orgPicker } from './membership.js';
import { temporarySection } from './membershiptemporary.js';

/** Parses a yuan amount such as `12.5` into fen without floating point. */
function toFen(text) {
  const match = String(text).trim().match(/^(\d+)(?:\.(\d{1,2}))?$/);
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] || '').padEnd(2, '0'));
}

function yuan(fen) {
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

function thisMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}`;
}

/** Draws a tab: header, organization picker, then `draw(body)` for the chosen organization. */
async function renderTab(outlet, name, draw) {
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const content = h('div');
  replace(outlet, h('section', { class: 'page membership-page' }, membershipHeader(name), body));
  try {
    const orgs = await managedOrgs();
    if (!orgs.length) {
      replace(body, h('p', { class: 'empty-state' }, t('mem.noOrgs')));
      return;
    }
    const redraw = () => draw(content).catch((error) => replace(content, errorState(error, redraw)));
    replace(body, orgPicker(orgs, redraw), content);
    redraw();
  } catch (error) {
    replace(body, errorState(error, () => renderTab(outlet, name, draw)));
  }
}

function submitter(form, send) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    try {
      await send(Object.fromEntries(new FormData(form).entries()));
    } catch (error) {
      error.message = localizeDates(error.message);
      showFormError(form, error);
    }
  });
  return form;
}

async function memberOptions(orgId) {
  const page = await api.get(`/api/orgs/${orgId}/members${query({ limit: 200 })}`);
  return page.items.map((member) => h('option', { value: String(member.id) }, member.name));
}

export function renderTransfers(outlet) {
  renderTab(outlet, 'transfers', async (content) => {
    const [inbox, outbox, allOrgs, members, mobile, branches] = await Promise.all([
      api.get('/api/membership/transfers?box=inbox'),
      api.get('/api/membership/transfers?box=outbox'),
      api.get('/api/membership/transfers/destinations'),
      memberOptions(chosenOrg()),
      api.get('/api/membership/mobile'),
      api.get('/api/membership/temporary-branches'),
    ]);
    const redraw = () => renderTransfers(outlet);
    const row = (transfer, actions) =>
      h(
        'tr',
        {},
        h('td', {}, transfer.letter_no),
        h('td', {}, transfer.member_name),
        h('td', {}, `${transfer.from_org_name} → ${transfer.to_org_name}`),
        h('td', {}, formatDate(transfer.valid_until)),
        h('td', {}, transfer.dues_paid_until),
        h('td', {}, h('span', { class: 'status-tag' }, t(`mem.transfer.${transfer.status}`))),
        h('td', {}, actions ? actions(transfer) : null),
      );
    const decide = (transfer) => {
      if (transfer.status !== 'pending') return transfer.receipt_on ? t('mem.receiptOn', { date: formatDate(transfer.receipt_on) }) : null;
      const accept = h('button', { type: 'button', class: 'button button-small' }, t('mem.accept'));
      accept.addEventListener('click', async () => {
        try {
          await api.post(`/api/membership/transfers/${transfer.id}/accept`);
          announce(t('mem.accepted', { name: transfer.member_name }));
          redraw();
        } catch (error) {
          announce(localizeDates(error.message), 'error');
        }
      });
      return accept;
    };
    const table = (label, items, actions) =>
      h(
        'section',
        { class: 'card', 'aria-label': label },
        h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, label)),
        items.length
          ? h(
            'table',
            { class: 'table' },
            h('thead', {}, h('tr', {}, ['letterNo', 'member', 'route', 'validUntil', 'duesPaid', 'status', 'action'].map((key) => h('th', {}, t(`mem.col.${key}`))))),
            h('tbody', {}, items.map((item) => row(item, actions))),
          )
          : h('p', { class: 'card-body muted' }, t('common.empty')),
      );
    const destination = h(
      'select',
      { name: 'to_org_id' },
      allOrgs.filter((org) => org.id !== chosenOrg()).map((org) => h('option', { value: String(org.id) }, org.name)),
      h('option', { value: '' }, t('mem.outside')),
    );
    const letterLink = (transfer) =>
      transfer.to_org_id === null && transfer.status === 'pending'
        ? h('a', { href: `/api/membership/transfers/${transfer.id}/letter`, download: `${transfer.letter_no}.json` }, t('mem.exportLetter'))
        : transfer.receipt_on ? t('mem.receiptOn', { date: formatDate(transfer.receipt_on) }) : null;
    const form = submitter(
      h(
        'form',
        { class: 'card card-body form-grid', 'aria-label': t('mem.issue') },
        h('h2', { class: 'card-title' }, t('mem.issue')),
        field(t('mem.col.member'), h('select', { name: 'member_id' }, members)),
        field(t('mem.toOrg'), destination),
        field(t('mem.outsideName'), h('input', { name: 'to_org_name', type: 'text' }), t('mem.outsideHint')),
        field(t('mem.validDays'), h('input', { name: 'valid_days', type: 'number', min: '1', max: '90', value: '30' })),
        field(t('mem.col.duesPaid'), h('input', { name: 'dues_paid_until', type: 'month', value: thisMonth() })),
        field(t('mem.transferReason'), h('input', { name: 'reason', type: 'text', required: true })),
        h('p', { class: 'form-error', role: 'alert', hidden: true }),
        h('button', { type: 'submit', class: 'button button-primary' }, t('mem.issue')),
      ),
      async (data) => {
        await api.post('/api/membership/transfers', {
          member_id: Number(data.member_id),
          to_org_id: data.to_org_id ? Number(data.to_org_id) : null,
          to_org_name: data.to_org_id ? '' : data.to_org_name,
          valid_days: Number(data.valid_days),
          dues_paid_until: data.dues_paid_until,
          reason: data.reason,
        });
        announce(t('mem.issued'));
        redraw();
      },
    );
    replace(
      content,
      table(t('mem.inbox'), inbox, decide),
      table(t('mem.outbox'), outbox, letterLink),
      form,
      mobileSection(mobile, allOrgs, memberOptions(chosenOrg()), redraw),
      temporarySection(branches, mobile, redraw),
    );
  });
}

/** Renders the active mobile-member registrations and the form to add one. */
function mobileSection(registrations, allOrgs, membersPromise, redraw) {
  const list = h(
    'ul',
    { class: 'card-body', 'data-testid': 'mobile' },
    registrations.length
      ? registrations.map((item) => {
        const end = h('button', { type: 'button', class: 'button button-small' }, t('mem.endMobile'));
        end.addEventListener('click', async () => {
          try {
            await api.post(`/api/membership/mobile/${item.id}/end`);
            announce(t('mem.mobileEnded', { name: item.member_name }));
            redraw();
          } catch (error) {
            announce(error.message, 'error');
          }
        });
        return h('li', {}, t('mem.mobileLine', { name: item.member_name, home: item.home_org_name, host: item.host_org_name, date: formatDate(item.starts_on) }), ' ', end);
      })
      : h('li', { class: 'muted' }, t('common.empty')),
  );
  const memberSelect = h('select', { name: 'member_id' });
  membersPromise.then((options) => replace(memberSelect, options)).catch(() => {});
  const form = submitter(
    h(
      'form',
      { class: 'card-body form-grid', 'aria-label': t('mem.registerMobile') },
      field(t('mem.col.member'), memberSelect),
      field(t('mem.hostOrg'), h('select', { name: 'host_org_id' }, allOrgs.filter((org) => org.id !== chosenOrg()).map((org) => h('option', { value: String(org.id) }, org.name)))),
      field(t('mem.startsOn'), h('input', { name: 'starts_on', type: 'date', required: true })),
      field(t('mem.transferReason'), h('input', { name: 'reason', type: 'text', required: true })),
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      h('button', { type: 'submit', class: 'button button-primary' }, t('mem.registerMobile')),
    ),
    async (data) => {
      await api.post('/api/membership/mobile', {
        member_id: Number(data.member_id), host_org_id: Number(data.host_org_id), starts_on: data.starts_on, reason: data.reason,
      });
      announce(t('mem.mobileRegistered'));
      redraw();
    },
  );
  return h(
    'section',
    { class: 'card', 'aria-label': t('mem.mobile') },
    h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('mem.mobile'))),
    list,
    form,
  );
}

export function renderDues(outlet) {
  renderTab(outlet, 'dues', async (content) => {
    const dues = await api.get(`/api/membership/dues/orgs/${chosenOrg()}`);
    const redraw = () => renderDues(outlet);
    const rows = dues.members.map((member) =>
      h(
        'tr',
        {},
        h('td', {}, member.name),
        h('td', {}, member.profile ? t(`mem.duesKind.${member.profile.kind}`) : t('mem.noProfile')),
        h('td', {}, yuan(member.monthly_fen)),
        h('td', {}, String(member.unpaid_months.length)),
        h('td', {}, yuan(member.arrears_fen)),
      ),
    );
    const options = () => dues.members.map((member) => h('option', { value: String(member.member_id) }, member.name));
    const profile = submitter(
      h(
        'form',
        { class: 'card card-body form-grid', 'aria-label': t('mem.setProfile') },
        h('h2', { class: 'card-title' }, t('mem.setProfile')),
        field(t('mem.col.member'), h('select', { name: 'member' }, options())),
        field(t('mem.duesKindLabel'), h('select', { name: 'kind' }, ['salaried', 'retired', 'fixed'].map((kind) => h('option', { value: kind }, t(`mem.duesKind.${kind}`))))),
        field(t('mem.income'), h('input', { name: 'income', type: 'text', inputmode: 'decimal', value: '0' })),
        field(t('mem.fixed'), h('input', { name: 'fixed', type: 'text', inputmode: 'decimal', value: '0.20' })),
        field(t('mem.since'), h('input', { name: 'since_month', type: 'month', value: thisMonth() })),
        h('p', { class: 'form-error', role: 'alert', hidden: true }),
        h('button', { type: 'submit', class: 'button button-primary' }, t('common.save')),
      ),
      async (data) => {
        const income = toFen(data.income);
        const fixed = toFen(data.fixed);
        if (income === null || fixed === null) throw Object.assign(new Error(t('mem.badAmount')), { field: 'income' });
        await api.put(`/api/membership/dues/members/${data.member}`, {
          kind: data.kind, income_fen: income, fixed_fen: fixed, since_month: data.since_month,
        });
        announce(t('mem.profileSaved'));
        redraw();
      },
    );
    const payment = submitter(
      h(
        'form',
        { class: 'card card-body form-grid', 'aria-label': t('mem.recordPayment') },
        h('h2', { class: 'card-title' }, t('mem.recordPayment')),
        field(t('mem.col.member'), h('select', { name: 'member' }, options())),
        field(t('mem.month'), h('input', { name: 'month', type: 'month', value: thisMonth() })),
        field(t('mem.amount'), h('input', { name: 'amount', type: 'text', inputmode: 'decimal', required: true })),
        field(t('mem.paidOn'), h('input', { name: 'paid_on', type: 'date', required: true })),
        h('p', { class: 'form-error', role: 'alert', hidden: true }),
        h('button', { type: 'submit', class: 'button button-primary' }, t('mem.record')),
      ),
      async (data) => {
        const amount = toFen(data.amount);
        if (amount === null) throw Object.assign(new Error(t('mem.badAmount')), { field: 'amount' });
        await api.post(`/api/membership/dues/members/${data.member}/payments`, {
          month: data.month, amount_fen: amount, paid_on: data.paid_on,
        });
        announce(t('mem.paymentRecorded'));
        redraw();
      },
    );
    replace(
      content,
      h('p', {}, t('mem.arrearsTotal', { amount: yuan(dues.arrears_fen), count: dues.members_in_arrears })),
      h(
        'table',
        { class: 'table', 'data-testid': 'dues' },
        h('thead', {}, h('tr', {}, ['member', 'duesKind', 'monthly', 'unpaid', 'arrears'].map((key) => h('th', {}, t(`mem.col.${key}`))))),
        h('tbody', {}, rows),
      ),
      profile,
      payment,
    );
  });
}

export function renderStats(outlet) {
  renderTab(outlet, 'stats', async (content) => {
    const year = new Date().getFullYear();
    const orgId = chosenOrg();
    const [stats, cadence] = await Promise.all([
      api.get(`/api/membership/orgs/${orgId}/stats${query({ year })}`),
      api.get(`/api/membership/orgs/${orgId}/cadence${query({ year })}`),
    ]);
    const total = Math.max(1, ...stats.rows.filter((row) => row.table === 'total').map((row) => row.count));
    const tables = {};
    for (const row of stats.rows) (tables[row.table] ||= []).push(row);
    const chart = (rows) =>
      h(
        'table',
        { class: 'table' },
        h('tbody', {}, rows.map((row) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, t(`mem.statLabel.${row.label}`) === `mem.statLabel.${row.label}` ? row.label : t(`mem.statLabel.${row.label}`)),
            h('td', {}, String(row.count)),
            h('td', { 'aria-hidden': 'true' }, h('span', { class: 'stat-bar', style: `width: ${Math.round((row.count / total) * 100)}%` })),
          ))),
      );
    const laggards = cadence.orgs.filter((org) => org.behind);
    replace(
      content,
      h(
        'div',
        { class: 'toolbar' },
        h('a', { class: 'button', href: `/api/membership/orgs/${orgId}/stats${query({ year, format: 'csv' })}`, download: '' }, t('mem.exportCsv')),
        h('a', { class: 'button', href: `/api/membership/orgs/${orgId}/stats${query({ year, format: 'xlsx' })}`, download: '' }, t('mem.exportXlsx')),
      ),
      Object.entries(tables).map(([name, rows]) =>
        h('section', { class: 'card', 'aria-label': t(`mem.statTable.${name}`) },
          h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, t(`mem.statTable.${name}`))),
          h('div', { class: 'card-body' }, chart(rows)))),
      h(
        'section',
        { class: 'card', 'aria-label': t('mem.cadence'), 'data-testid': 'cadence' },
        h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('mem.cadence'))),
        h(
          'ul',
          { class: 'card-body' },
          laggards.length
            ? laggards.map((org) => h('li', {}, `${org.org_name}：`, org.lines.filter((line) => line.missed.length).map((line) =>
              t('mem.missed', { kind: t(`meet.kind.${line.kind}`), periods: line.missed.join('、') })).join('；')))
            : h('li', { class: 'muted' }, t('mem.noLaggards')),
        ),
      ),
    );
  });
}
