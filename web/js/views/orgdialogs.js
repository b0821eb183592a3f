// Dialogs that change the organization tree and its officers.

import { api, query } from '../api.js';
import { announce, confirmDialog, debounce, dialogForm, field, h, openDialog } from '../dom.js';
import { t } from '../i18n.js';
import { hasSystemRole, session } from '../session.js';
import { ancestorIds } from './orgtree.js';

/** Organization kinds allowed directly under each kind (and at the root). */
const CHILD_KINDS = {
  root: ['committee'],
  committee: ['committee', 'general_branch', 'branch', 'leading_group'],
  general_branch: ['branch'],
  branch: ['group'],
  group: [],
  leading_group: [],
};

export const ROLES = [
  'secretary',
  'deputy_secretary',
  'organization_member',
  'propaganda_member',
  'discipline_member',
  'committee_member',
];

export function childKinds(org) {
  return CHILD_KINDS[org ? org.kind : 'root'] || [];
}

function kindSelect(kinds, selected) {
  return h(
    'select',
    { name: 'kind' },
    kinds.map((kind) => h('option', { value: kind, selected: kind === selected }, t(`kind.${kind}`))),
  );
}

function requireText(value, name) {
  if (!value.trim()) throw { field: name, message: t('common.required') };
  return value.trim();
}

/** Creates an organization under `parent` (or a root for null); resolves with it. */
export function createOrgDialog(parent) {
  const kinds = childKinds(parent);
  const title = parent ? `${t('org.newChild')} · ${parent.name}` : t('org.newRoot');
  return openDialog(title, (close) =>
    dialogForm(
      close,
      [
        field(t('org.name'), h('input', { name: 'name', maxlength: '100', required: true })),
        field(t('org.kind'), kindSelect(kinds, kinds.includes('branch') ? 'branch' : kinds[0])),
        field(t('org.sortOrder'), h('input', { name: 'sort_order', type: 'number', value: '0', step: '1' })),
      ],
      t('common.create'),
      async (form) => {
        const values = Object.fromEntries(new FormData(form));
        const created = await api.post('/api/orgs', {
          parent_id: parent ? parent.id : null,
          name: requireText(values.name, 'name'),
          kind: values.kind,
          sort_order: Number(values.sort_order) || 0,
        });
        announce(t('org.created', { name: created.name }));
        return created;
      },
    ),
  );
}

/** Renames an organization or changes its sort order; resolves with it. */
export function renameOrgDialog(org) {
  return openDialog(`${t('org.rename')} · ${org.name}`, (close) =>
    dialogForm(
      close,
      [
        field(t('org.name'), h('input', { name: 'name', maxlength: '100', value: org.name, required: true })),
        field(t('org.sortOrder'), h('input', { name: 'sort_order', type: 'number', value: String(org.sort_order), step: '1' })),
      ],
      t('common.save'),
      async (form) => {
        const values = Object.fromEntries(new FormData(form));
        const updated = await api.patch(`/api/orgs/${org.id}`, {
          name: requireText(values.name, 'name'),
          sort_order: Number(values.sort_order) || 0,
        });
        announce(t('org.renamed', { name: updated.name }));
        return updated;
      },
    ),
  );
}

function indentedName(index, org) {
  const depth = ancestorIds(index, org.id).length - 1;
  return `${'　'.repeat(depth)}${t('org.option', { name: org.name, kind: t(`kind.${org.kind}`) })}`;
}

/**
 * Moves an organization under another one the caller may write, offering
 * only parents whose kind allows it and that are outside its own subtree.
 */
export function moveOrgDialog(org, index) {
  const targets = [...index.byId.values()]
    .filter((candidate) => candidate.can_write)
    .filter((candidate) => candidate.id !== org.parent_id && !candidate.path.startsWith(org.path))
    .filter((candidate) => childKinds(candidate).includes(org.kind))
    .sort((a, b) => a.path.localeCompare(b.path));
  if (targets.length === 0) {
    announce(t('org.noMoveTargets'), 'error');
    return Promise.resolve(undefined);
  }
  return openDialog(`${t('org.move')} · ${org.name}`, (close) =>
    dialogForm(
      close,
      [
        field(
          t('org.newParent'),
          h('select', { name: 'parent_id' }, targets.map((target) => h('option', { value: String(target.id) }, indentedName(index, target)))),
        ),
      ],
      t('org.move'),
      async (form) => {
        const parentId = Number(new FormData(form).get('parent_id'));
        const moved = await api.post(`/api/orgs/${org.id}/move`, { parent_id: parentId });
        announce(t('org.moved', { name: org.name, parent: index.byId.get(parentId).name }));
        return moved;
      },
    ),
  );
}

/** Asks and dissolves an empty organization; resolves true when done. */
export async function dissolveOrg(org) {
  const confirmed = await confirmDialog(t('org.dissolve'), t('org.dissolveConfirm', { name: org.name }), t('org.dissolve'), true);
  if (!confirmed) return false;
  try {
    await api.delete(`/api/orgs/${org.id}`);
  } catch (error) {
    announce(error.message, 'error');
    return false;
  }
  announce(t('org.dissolved', { name: org.name }));
  return true;
}

let pickerCounter = 0;

/**
 * Builds a member search: a text box and a radio list of matches from the
 * organization's subtree. The chosen member id is the checked radio's value.
 * With `withoutAccount`, only members who have no login account are offered.
 */
export function memberPicker(orgIds, label, placeholder, { withoutAccount = false } = {}) {
  const results = h('div', { class: 'picker-results', role: 'radiogroup', 'aria-label': label });
  pickerCounter += 1;
  const search = h('input', { type: 'search', id: `member-search-${pickerCounter}`, name: 'member_search', placeholder, autocomplete: 'off' });
  const status = h('p', { class: 'hint', 'aria-live': 'polite' });
  let sequence = 0;

  async function load() {
    sequence += 1;
    const mine = sequence;
    const q = search.value.trim();
    const pages = await Promise.all(
      orgIds.map((id) => api.get(`/api/orgs/${id}/members${query({ subtree: true, q, limit: 20, without_account: withoutAccount || null })}`).catch(() => ({ items: [] }))),
    );
    if (mine !== sequence) return;
    const seen = new Set();
    const members = pages.flatMap((page) => page.items).filter((member) => !seen.has(member.id) && seen.add(member.id));
    results.replaceChildren(
      ...members.map((member) =>
        h(
          'label',
          { class: 'picker-option' },
          h('input', { type: 'radio', name: 'member_id', value: String(member.id) }),
          h('span', { class: 'picker-name' }, member.name),
          h('span', { class: 'muted' }, member.org_name),
        ),
      ),
    );
    status.textContent = members.length === 0 ? t('roles.noMatches') : '';
  }

  search.addEventListener('input', debounce(load, 200));
  // Enter in the search box searches at once instead of submitting the form.
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      load();
    }
  });
  load();
  return h('div', { class: 'field picker' }, h('label', { for: search.id }, label), search, results, status);
}

/** Assigns an officer role in `org`; resolves with the new officer list. */
export function assignRoleDialog(org) {
  return openDialog(`${t('roles.assign')} · ${org.name}`, (close) =>
    dialogForm(
      close,
      [
        memberPicker([org.id], t('roles.member'), t('roles.pickMember')),
        field(
          t('roles.role'),
          h('select', { name: 'role' }, ROLES.map((role) => h('option', { value: role }, t(`role.${role}`)))),
        ),
      ],
      t('common.save'),
      async (form) => {
        const values = Object.fromEntries(new FormData(form));
        if (!values.member_id) throw { field: 'member_id', message: t('roles.pickHint') };
        const memberId = Number(values.member_id);
        if (!hasSystemRole('security_admin') && memberId === session.account.member_id) {
          throw { field: 'member_id', message: t('roles.self') };
        }
        const holders = await api.put(`/api/orgs/${org.id}/roles/${memberId}`, { role: values.role });
        const holder = holders.find((entry) => entry.member_id === memberId);
        announce(t('roles.assigned', { name: holder ? holder.name : memberId, role: t(`role.${values.role}`) }));
        return holders;
      },
    ),
    { wide: true },
  );
}

/** Asks and removes an officer's role; resolves true when done. */
export async function removeRole(org, holder) {
  const role = t(`role.${holder.role}`);
  const confirmed = await confirmDialog(t('roles.remove'), t('roles.removeConfirm', { name: holder.name, role }), t('roles.remove'), true);
  if (!confirmed) return false;
  try {
    await api.delete(`/api/orgs/${org.id}/roles/${holder.member_id}`);
  } catch (error) {
    announce(error.message, 'error');
    return false;
  }
  announce(t('roles.removed', { name: holder.name, role }));
  return true;
}
