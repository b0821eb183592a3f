// The selected organization: header with actions, officers, member list.

import { api, query } from '../api.js';
import { debounce, errorState, h, pager, replace } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { canAssignRoles, hasSystemRole, session } from '../session.js';
import {
  assignRoleDialog,
  childKinds,
  createOrgDialog,
  dissolveOrg,
  moveOrgDialog,
  removeRole,
  renameOrgDialog,
} from './orgdialogs.js';
import { ancestorIds } from './orgtree.js';

const PAGE_SIZE = 20;

function actionButtons(org, index, reloadTree) {
  const parent = org.parent_id !== null ? index.byId.get(org.parent_id) : null;
  const buttons = [];
  if (org.can_write && childKinds(org).length > 0) {
    buttons.push(
      h('button', {
        type: 'button',
        class: 'button button-primary',
        onclick: async () => {
          const created = await createOrgDialog(org);
          if (created) await reloadTree(created.id);
        },
      }, `+ ${t('org.newChild')}`),
    );
  }
  if (org.can_write) {
    buttons.push(
      h('button', {
        type: 'button',
        class: 'button',
        onclick: async () => {
          if (await renameOrgDialog(org)) await reloadTree(org.id);
        },
      }, t('org.rename')),
    );
  }
  const mayTakeOut = parent ? parent.can_write : hasSystemRole('system_admin');
  if (org.can_write && mayTakeOut && org.parent_id !== null) {
    buttons.push(
      h('button', {
        type: 'button',
        class: 'button',
        onclick: async () => {
          if (await moveOrgDialog(org, index)) await reloadTree(org.id);
        },
      }, t('org.move')),
    );
  }
  if (mayTakeOut) {
    buttons.push(
      h('button', {
        type: 'button',
        class: 'button button-danger-outline',
        onclick: async () => {
          if (await dissolveOrg(org)) await reloadTree(org.parent_id);
        },
      }, t('org.dissolve')),
    );
  }
  return buttons;
}

function breadcrumb(org, index) {
  const chain = ancestorIds(index, org.id).map((id) => index.byId.get(id));
  return h(
    'nav',
    { class: 'breadcrumb', 'aria-label': t('org.path') },
    h(
      'ol',
      {},
      chain.map((item) =>
        h(
          'li',
          {},
          item.id === org.id
            ? h('span', { 'aria-current': 'page' }, item.name)
            : h('a', { href: `/org/${item.id}`, 'data-link': true }, item.name),
        ),
      ),
    ),
  );
}

/** Renders the officers card, reloading it after each change. */
function officersCard(org) {
  const mayAssign = canAssignRoles(org);
  const list = h('div', { class: 'card-body' }, h('p', { class: 'muted' }, t('common.loading')));
  const assignButton = mayAssign
    ? h('button', {
      type: 'button',
      class: 'button button-small',
      onclick: async () => {
        const holders = await assignRoleDialog(org);
        if (holders) draw(holders);
      },
    }, `+ ${t('roles.assign')}`)
    : null;

  function draw(holders) {
    if (holders.length === 0) {
      replace(list, h('p', { class: 'muted' }, t('roles.empty')));
      return;
    }
    replace(
      list,
      h(
        'ul',
        { class: 'officer-list', 'data-testid': 'officers' },
        holders.map((holder) =>
          h(
            'li',
            { class: 'officer' },
            h('span', { class: `role-tag role-${holder.role}` }, t(`role.${holder.role}`)),
            h('a', { href: `/org/${org.id}/member/${holder.member_id}`, 'data-link': true, class: 'officer-name' }, holder.name),
            mayAssign && (hasSystemRole('security_admin') || holder.member_id !== session.account.member_id)
              ? h('button', {
                type: 'button',
                class: 'button button-small button-link',
                'aria-label': `${t('roles.remove')} ${holder.name} ${t(`role.${holder.role}`)}`,
                onclick: async () => {
                  if (await removeRole(org, holder)) await load();
                },
              }, t('roles.remove'))
              : null,
          ),
        ),
      ),
    );
  }

  async function load() {
    try {
      draw(await api.get(`/api/orgs/${org.id}/roles`));
    } catch (error) {
      replace(list, errorState(error, load));
    }
  }

  load();
  return h(
    'section',
    { class: 'card', 'aria-labelledby': `officers-${org.id}` },
    h('header', { class: 'card-header' }, h('h2', { id: `officers-${org.id}` }, t('roles.title')), assignButton),
    list,
  );
}

/** Renders the member list with name search, subtree toggle and paging. */
function membersCard(org, hasChildren) {
  // An organization without direct members (a committee, usually) lists its
  // whole subtree at first, so the list is not empty.
  const state = { q: '', subtree: org.member_count === 0 && hasChildren, offset: 0 };
  const search = h('input', { type: 'search', placeholder: t('members.search'), 'aria-label': t('members.search'), class: 'input-search' });
  const subtree = h('input', { type: 'checkbox', id: `subtree-${org.id}`, checked: state.subtree });
  const body = h('div', { class: 'card-body table-wrap' });
  const status = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  let sequence = 0;

  async function load() {
    sequence += 1;
    const mine = sequence;
    body.setAttribute('aria-busy', 'true');
    let page;
    try {
      page = await api.get(
        `/api/orgs/${org.id}/members${query({ subtree: state.subtree, q: state.q, limit: PAGE_SIZE, offset: state.offset })}`,
      );
    } catch (error) {
      if (mine === sequence) replace(body, errorState(error, load));
      return;
    } finally {
      body.removeAttribute('aria-busy');
    }
    if (mine !== sequence) return;
    draw(page);
  }

  function draw(page) {
    const showOrg = state.subtree;
    if (page.items.length === 0) {
      replace(body, h('p', { class: 'empty-state' }, t('members.empty')));
    } else {
      replace(
        body,
        h(
          'table',
          { class: 'table', 'data-testid': 'members' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, t('members.name')),
              h('th', { scope: 'col' }, t('members.gender')),
              h('th', { scope: 'col' }, t('members.status')),
              showOrg ? h('th', { scope: 'col' }, t('members.org')) : null,
              h('th', { scope: 'col', class: 'hide-narrow' }, t('members.joinedOn')),
              h('th', { scope: 'col', class: 'hide-narrow' }, t('members.phone')),
            ),
          ),
          h(
            'tbody',
            {},
            page.items.map((member) =>
              h(
                'tr',
                {},
                h('td', {}, h('a', { href: `/org/${org.id}/member/${member.id}`, 'data-link': true }, member.name)),
                h('td', {}, t(`gender.${member.gender}`)),
                h('td', {}, h('span', { class: `status-tag status-${member.status}` }, t(`status.${member.status}`))),
                showOrg ? h('td', {}, member.org_name) : null,
                h('td', { class: 'hide-narrow' }, formatDate(member.joined_on)),
                h('td', { class: 'hide-narrow' }, member.phone),
              ),
            ),
          ),
        ),
      );
    }
    body.append(pager(page, (offset) => {
      state.offset = offset;
      load();
    }));
    status.textContent = page.total === 0 ? t('members.empty') : t('common.pageInfo', {
      from: page.offset + 1,
      to: page.offset + page.items.length,
      total: page.total,
    });
  }

  search.addEventListener('input', debounce(() => {
    state.q = search.value.trim();
    state.offset = 0;
    load();
  }, 250));
  subtree.addEventListener('change', () => {
    state.subtree = subtree.checked;
    state.offset = 0;
    load();
  });
  load();
  return h(
    'section',
    { class: 'card', 'aria-labelledby': `members-${org.id}` },
    h(
      'header',
      { class: 'card-header' },
      h('h2', { id: `members-${org.id}` }, t('members.title')),
      h(
        'div',
        { class: 'filters' },
        search,
        h('label', { class: 'checkbox', for: subtree.id }, subtree, t('members.subtree')),
      ),
    ),
    body,
    status,
  );
}

/** Draws an organization into `container`. */
export function renderOrgDetail(container, { org, index, reloadTree }) {
  const children = index.children.get(org.id) || [];
  replace(
    container,
    h(
      'header',
      { class: 'detail-header' },
      breadcrumb(org, index),
      h(
        'div',
        { class: 'detail-title' },
        h('h1', { tabindex: '-1' }, org.name),
        h('span', { class: `kind-tag kind-${org.kind}` }, t(`kind.${org.kind}`)),
        org.can_write ? null : h('span', { class: 'muted-tag' }, t('org.readOnly')),
      ),
      h(
        'dl',
        { class: 'stats' },
        h('div', {}, h('dt', {}, t('org.memberCount')), h('dd', {}, t('org.count', { count: org.member_count }))),
        h('div', {}, h('dt', {}, t('org.childCount')), h('dd', {}, String(children.length))),
      ),
      h('div', { class: 'toolbar' }, actionButtons(org, index, reloadTree)),
    ),
    officersCard(org),
    membersCard(org, children.length > 0),
  );
  return {};
}
