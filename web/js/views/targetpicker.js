// Recipient picker of the composer: a tree of the organizations the caller
// manages, each with a checkbox that covers its whole subtree, and a member
// search for single recipients.

import { api, query } from '../api.js';
import { debounce, h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { indexOrgs } from './orgtree.js';

/** Tree levels drawn open at first; deeper levels open on demand. */
const OPEN_LEVELS = 2;
const SEARCH_LIMIT = 10;

/** Returns whether `org` or anything below it may be targeted. */
function hasWritable(index, org, memo) {
  if (memo.has(org.id)) return memo.get(org.id);
  const result = org.can_write || (index.children.get(org.id) || []).some((child) => hasWritable(index, child, memo));
  memo.set(org.id, result);
  return result;
}

/**
 * Creates the picker. Returns `{ element, value, nameOf }`: `value()` is the
 * `targets` object of `POST /api/notices`, and `nameOf(list, position)` the
 * name behind `targets.org_ids[position]` or `targets.member_ids[position]`.
 * With `members: false` the picker offers organizations only.
 */
export function createTargetPicker({ members: withMembers = true } = {}) {
  let index = null;
  const checkedOrgs = new Set();
  const expanded = new Set();
  const members = new Map();

  const treeBody = h('div', { class: 'target-tree' }, h('p', { class: 'muted' }, t('common.loading')));
  const summary = h('p', { class: 'hint', 'aria-live': 'polite' });
  const chips = h('ul', { class: 'chips', 'aria-label': t('notices.chosenMembers') });
  const search = h('input', { type: 'search', id: 'target-member-search', placeholder: t('notices.memberSearch'), autocomplete: 'off' });
  const results = h('ul', { class: 'search-results', 'aria-label': t('notices.memberResults') });
  const element = h(
    'div',
    { class: 'field' },
    h('span', { class: 'field-label', id: 'targets-label' }, t('notices.targets')),
    h(
      'div',
      { name: 'targets', tabindex: '-1', role: 'group', 'aria-labelledby': 'targets-label', class: withMembers ? 'target-picker' : 'target-picker target-picker-orgs' },
      h('div', { class: 'target-column' }, h('p', { class: 'target-heading' }, t('notices.targetOrgs')), treeBody),
      withMembers
        ? h(
          'div',
          { class: 'target-column' },
          h('label', { class: 'target-heading', for: search.id }, t('notices.targetMembers')),
          search,
          results,
          chips,
        )
        : null,
    ),
    summary,
  );

  function isCovered(org) {
    let parentId = org.parent_id;
    while (parentId !== null && index.byId.has(parentId)) {
      if (checkedOrgs.has(parentId)) return true;
      parentId = index.byId.get(parentId).parent_id;
    }
    return false;
  }

  function orgNode(org, level, memo) {
    const kids = (index.children.get(org.id) || []).filter((child) => hasWritable(index, child, memo));
    const open = expanded.has(org.id);
    const covered = isCovered(org);
    const checkbox = h('input', {
      type: 'checkbox',
      value: String(org.id),
      checked: checkedOrgs.has(org.id) || covered,
      disabled: !org.can_write || covered,
      'aria-describedby': covered ? 'target-covered-hint' : null,
      onchange: (event) => {
        if (event.target.checked) checkedOrgs.add(org.id);
        else checkedOrgs.delete(org.id);
        draw(org.id);
      },
    });
    const toggle = kids.length > 0
      ? h('button', {
        type: 'button',
        class: 'tree-toggle-button',
        'aria-expanded': String(open),
        'aria-label': `${t(open ? 'org.collapse' : 'org.expand')} ${org.name}`,
        onclick: () => {
          if (open) expanded.delete(org.id);
          else expanded.add(org.id);
          draw(null, org.id);
        },
      }, open ? '▾' : '▸')
      : h('span', { class: 'tree-toggle-button tree-leaf', 'aria-hidden': 'true' });
    return h(
      'li',
      { dataset: { id: String(org.id) } },
      h(
        'div',
        { class: 'target-row', style: `padding-left: ${(level - 1) * 18}px` },
        toggle,
        h(
          'label',
          { class: org.can_write ? 'checkbox' : 'checkbox target-context' },
          checkbox,
          h('span', {}, org.name),
          h('span', { class: 'kind-tag' }, t(`kind.${org.kind}`)),
        ),
      ),
      open && kids.length > 0 ? h('ul', {}, kids.map((child) => orgNode(child, level + 1, memo))) : null,
    );
  }

  /** Redraws the tree, keeping focus on the control of `focusId` or `toggleId`. */
  function draw(focusId = null, toggleId = null) {
    const memo = new Map();
    const roots = index.roots.filter((org) => hasWritable(index, org, memo));
    if (roots.length === 0) {
      replace(treeBody, h('p', { class: 'muted' }, t('notices.noTargetOrgs')));
    } else {
      replace(
        treeBody,
        h('ul', { class: 'target-list', 'data-testid': 'target-tree' }, roots.map((org) => orgNode(org, 1, memo))),
        h('p', { class: 'hint', id: 'target-covered-hint' }, t('notices.coveredHint')),
      );
    }
    if (focusId !== null) {
      const node = treeBody.querySelector(`li[data-id="${focusId}"] input`);
      if (node) node.focus();
    }
    if (toggleId !== null) {
      const node = treeBody.querySelector(`li[data-id="${toggleId}"] .tree-toggle-button`);
      if (node) node.focus();
    }
    drawSummary();
  }

  function drawSummary() {
    const orgCount = value().org_ids.length;
    summary.textContent = withMembers
      ? t('notices.targetSummary', { orgs: orgCount, members: members.size })
      : t('notices.targetOrgSummary', { orgs: orgCount });
  }

  function drawChips() {
    replace(
      chips,
      [...members.values()].map((member) =>
        h(
          'li',
          { class: 'chip' },
          h('span', {}, member.name),
          h('span', { class: 'muted' }, member.org_name),
          h('button', {
            type: 'button',
            class: 'icon-button icon-button-small',
            'aria-label': t('notices.removeMember', { name: member.name }),
            onclick: () => {
              members.delete(member.id);
              drawChips();
              search.focus();
            },
          }, '×'),
        ),
      ),
    );
    drawSummary();
  }

  let searchSequence = 0;
  async function runSearch() {
    searchSequence += 1;
    const mine = searchSequence;
    const text = search.value.trim();
    if (!text || !index) {
      replace(results);
      return;
    }
    const pages = await Promise.all(
      index.roots.map((org) => api.get(`/api/orgs/${org.id}/members${query({ subtree: true, q: text, limit: SEARCH_LIMIT })}`).catch(() => ({ items: [] }))),
    );
    if (mine !== searchSequence) return;
    const found = pages.flatMap((page) => page.items);
    if (found.length === 0) {
      replace(results, h('li', { class: 'muted' }, t('roles.noMatches')));
      return;
    }
    replace(
      results,
      found.map((member) =>
        h(
          'li',
          {},
          h('button', {
            type: 'button',
            class: 'search-result',
            disabled: members.has(member.id),
            onclick: () => {
              members.set(member.id, { id: member.id, name: member.name, org_name: member.org_name });
              drawChips();
              runSearch();
              search.focus();
            },
          }, h('span', { class: 'picker-name' }, member.name), h('span', { class: 'muted' }, member.org_name)),
        ),
      ),
    );
  }
  search.addEventListener('input', debounce(runSearch, 200));
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      runSearch();
    }
  });

  function value() {
    const orgIds = index ? [...checkedOrgs].filter((id) => !isCovered(index.byId.get(id))) : [];
    return { org_ids: orgIds, member_ids: [...members.keys()] };
  }

  async function load() {
    try {
      index = indexOrgs(await api.get('/api/orgs'));
    } catch (error) {
      replace(treeBody, h('p', { class: 'field-error' }, error.message));
      return;
    }
    // Open the first levels, and every level above a manageable organization.
    const memo = new Map();
    const openFrom = (org, level) => {
      const kids = (index.children.get(org.id) || []).filter((child) => hasWritable(index, child, memo));
      if (kids.length > 0 && (level < OPEN_LEVELS || !org.can_write)) expanded.add(org.id);
      for (const child of kids) openFrom(child, level + 1);
    };
    for (const root of index.roots) {
      if (hasWritable(index, root, memo)) openFrom(root, 1);
    }
    draw();
  }

  load();
  return {
    element,
    value,
    nameOf(list, position) {
      const ids = value();
      if (list === 'org_ids') {
        const org = index && index.byId.get(ids.org_ids[position]);
        return org ? org.name : '';
      }
      const member = members.get(ids.member_ids[position]);
      return member ? member.name : '';
    },
  };
}
