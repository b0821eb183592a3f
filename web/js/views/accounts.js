// The Accounts page: the system administrator creates, disables and resets
// accounts; the security administrator sets clearance levels.

import { api, query } from '../api.js';
import { announce, confirmDialog, debounce, dialogForm, errorState, field, h, openDialog, pager, replace } from '../dom.js';
import { t } from '../i18n.js';
import { hasSystemRole } from '../session.js';
import { memberPicker } from './orgdialogs.js';

const CLEARANCES = ['public', 'internal', 'confidential', 'secret'];
const PAGE_SIZE = 50;
const PASSWORD_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';

/**
 * Generates a 15-character password (letters, digits and a hyphen, so it
 * meets the server's policy) from the browser's secure random source.
 */
function randomPassword() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const body = [...bytes].map((byte) => PASSWORD_ALPHABET[byte % PASSWORD_ALPHABET.length]).join('');
  return `Dw-${body}`;
}

function passwordInput(name) {
  const input = h('input', { name, type: 'text', autocomplete: 'off', spellcheck: 'false', value: randomPassword(), class: 'mono' });
  const generate = h('button', { type: 'button', class: 'button button-small', onclick: () => { input.value = randomPassword(); input.focus(); } }, t('accounts.generate'));
  return { input, generate };
}

async function rootOrgIds() {
  const orgs = await api.get('/api/orgs');
  const ids = new Set(orgs.map((org) => org.id));
  return orgs.filter((org) => org.parent_id === null || !ids.has(org.parent_id)).map((org) => org.id);
}

async function createAccountDialog() {
  const roots = await rootOrgIds().catch(() => []);
  const password = passwordInput('password');
  return openDialog(t('accounts.create'), (close) =>
    dialogForm(
      close,
      [
        field(t('accounts.username'), h('input', { name: 'username', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', required: true })),
        field(t('accounts.displayName'), h('input', { name: 'display_name', required: true })),
        h('div', { class: 'field-row' }, field(t('accounts.initialPassword'), password.input, t('accounts.initialHint')), password.generate),
        roots.length > 0 ? memberPicker(roots, t('accounts.member'), t('accounts.memberPick'), { withoutAccount: true }) : null,
      ],
      t('common.create'),
      async (form) => {
        const values = Object.fromEntries(new FormData(form));
        for (const name of ['username', 'display_name', 'password']) {
          if (!String(values[name] || '').trim()) throw { field: name, message: t('common.required') };
        }
        const created = await api.post('/api/accounts', {
          username: values.username.trim(),
          display_name: values.display_name.trim(),
          password: values.password,
          member_id: values.member_id ? Number(values.member_id) : null,
        });
        announce(t('accounts.created', { name: created.username }));
        return created;
      },
    ),
    { wide: true },
  );
}

function resetPasswordDialog(account) {
  const password = passwordInput('new_password');
  return openDialog(t('accounts.resetTitle', { name: account.username }), (close) =>
    dialogForm(
      close,
      [h('div', { class: 'field-row' }, field(t('accounts.newPassword'), password.input, t('accounts.initialHint')), password.generate)],
      t('accounts.resetPassword'),
      async (form) => {
        const newPassword = new FormData(form).get('new_password');
        if (!newPassword) throw { field: 'new_password', message: t('common.required') };
        await api.post(`/api/accounts/${account.id}/reset-password`, { new_password: newPassword });
        announce(t('accounts.reset', { name: account.username }));
        return true;
      },
    ),
  );
}

/** Renders the linked member's name and organization, or a dash. */
function memberCell(account) {
  if (!account.member_id) return '—';
  return [
    h('span', {}, account.member_name || t('accounts.memberLink', { id: account.member_id })),
    account.org_name ? h('span', { class: 'muted cell-note' }, account.org_name) : null,
  ];
}

export function mountAccounts(outlet) {
  const isSystemAdmin = hasSystemRole('system_admin');
  const isSecurityAdmin = hasSystemRole('security_admin');
  let page = null;
  let offset = 0;
  /** Counts list requests, so a slow response to an older filter is dropped. */
  let loadTicket = 0;
  const filterInput = h('input', { type: 'search', placeholder: t('accounts.filter'), 'aria-label': t('accounts.filter'), class: 'input-search' });
  const statusSelect = h(
    'select',
    { 'aria-label': t('accounts.statusFilter') },
    h('option', { value: '' }, t('accounts.all')),
    h('option', { value: 'active' }, t('accounts.active')),
    h('option', { value: 'disabled' }, t('accounts.disabledState')),
  );
  const body = h('div', { class: 'card-body table-wrap' }, h('p', { class: 'muted' }, t('common.loading')));
  const createButton = isSystemAdmin
    ? h('button', {
      type: 'button',
      class: 'button button-primary',
      onclick: async () => {
        const created = await createAccountDialog();
        if (!created) return;
        // New accounts sort last, so show the new one by its username.
        filterInput.value = created.username;
        offset = 0;
        await load();
      },
    }, `+ ${t('accounts.create')}`)
    : null;

  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      h('header', { class: 'page-header' }, h('h1', {}, t('accounts.title')), createButton),
      h(
        'section',
        { class: 'card' },
        h('header', { class: 'card-header' }, h('div', { class: 'filters' }, filterInput, statusSelect)),
        body,
      ),
    ),
  );

  async function toggleDisabled(account) {
    if (!account.disabled) {
      const confirmed = await confirmDialog(t('accounts.disable'), t('accounts.disableConfirm', { name: account.username }), t('accounts.disable'), true);
      if (!confirmed) return;
    }
    try {
      await api.patch(`/api/accounts/${account.id}`, { disabled: !account.disabled });
      announce(t(account.disabled ? 'accounts.enabled' : 'accounts.disabled', { name: account.username }));
      await load();
    } catch (error) {
      announce(error.message, 'error');
    }
  }

  function clearanceControl(account) {
    const select = h(
      'select',
      { 'aria-label': `${t('accounts.clearance')} ${account.username}` },
      CLEARANCES.map((level) => h('option', { value: level, selected: level === account.clearance }, t(`clearance.${level}`))),
    );
    select.addEventListener('change', async () => {
      select.disabled = true;
      try {
        await api.put(`/api/accounts/${account.id}/clearance`, { clearance: select.value });
        account.clearance = select.value;
        announce(t('accounts.clearanceSaved', { name: account.username, level: t(`clearance.${select.value}`) }));
      } catch (error) {
        select.value = account.clearance;
        announce(error.message, 'error');
      } finally {
        select.disabled = false;
      }
    });
    return select;
  }

  function draw() {
    const pageControls = page.total > page.limit ? pager(page, (next) => { offset = next; load(); }) : null;
    if (page.items.length === 0) {
      replace(body, h('p', { class: 'empty-state' }, t('accounts.empty')), pageControls);
      return;
    }
    replace(
      body,
      h(
        'table',
        { class: 'table', 'data-testid': 'accounts' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, t('accounts.username')),
            h('th', { scope: 'col' }, t('accounts.displayName')),
            h('th', { scope: 'col', class: 'hide-narrow' }, t('accounts.systemRole')),
            h('th', { scope: 'col', class: 'hide-narrow' }, t('accounts.member')),
            h('th', { scope: 'col' }, t('accounts.clearance')),
            h('th', { scope: 'col' }, t('accounts.status')),
            isSystemAdmin ? h('th', { scope: 'col' }, t('common.actions')) : null,
          ),
        ),
        h(
          'tbody',
          {},
          page.items.map((account) =>
            h(
              'tr',
              { class: account.disabled ? 'row-disabled' : null },
              h('td', { class: 'mono' }, account.username),
              h('td', {}, account.display_name),
              h('td', { class: 'hide-narrow' }, account.system_role ? t(`sysrole.${account.system_role}`) : '—'),
              h('td', { class: 'hide-narrow' }, memberCell(account)),
              h('td', {}, isSecurityAdmin ? clearanceControl(account) : t(`clearance.${account.clearance}`)),
              h(
                'td',
                {},
                h('span', { class: account.disabled ? 'status-tag status-off' : 'status-tag status-on' }, t(account.disabled ? 'accounts.disabledState' : 'accounts.active')),
                account.must_change_password ? h('span', { class: 'muted-tag', title: t('accounts.mustChangeHint') }, t('accounts.mustChange')) : null,
              ),
              isSystemAdmin
                ? h(
                  'td',
                  { class: 'row-actions' },
                  account.system_role
                    ? h('span', { class: 'muted' }, t('accounts.builtIn'))
                    : h('button', { type: 'button', class: 'button button-small button-link', onclick: () => toggleDisabled(account) }, t(account.disabled ? 'accounts.enable' : 'accounts.disable')),
                  h('button', { type: 'button', class: 'button button-small button-link', onclick: () => resetPasswordDialog(account) }, t('accounts.resetPassword')),
                )
                : null,
            ),
          ),
        ),
      ),
      pageControls,
    );
  }

  async function load() {
    const status = statusSelect.value;
    const params = {
      q: filterInput.value.trim(),
      disabled: status === '' ? null : status === 'disabled',
      limit: PAGE_SIZE,
      offset,
    };
    loadTicket += 1;
    const ticket = loadTicket;
    let next;
    try {
      next = await api.get(`/api/accounts${query(params)}`);
    } catch (error) {
      if (ticket === loadTicket) replace(body, errorState(error, load));
      return;
    }
    if (ticket !== loadTicket) return;
    page = next;
    draw();
  }

  filterInput.addEventListener('input', debounce(() => {
    offset = 0;
    load();
  }, 250));
  statusSelect.addEventListener('change', () => {
    offset = 0;
    load();
  });
  load();
  return {};
}
