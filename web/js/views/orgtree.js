// The organization tree: an ARIA tree with a roving tabindex.
//
// Keys follow the WAI-ARIA tree pattern: Up and Down move between visible
// nodes, Right expands or enters the first child, Left collapses or goes to
// the parent, Home and End jump, Enter and Space select.

import { h } from '../dom.js';
import { t } from '../i18n.js';

/** Indexes a flat organization list by id and by parent. */
export function indexOrgs(orgs) {
  const byId = new Map(orgs.map((org) => [org.id, org]));
  const children = new Map();
  const roots = [];
  for (const org of orgs) {
    // A member may read only part of the tree, so a parent may be missing.
    // The readable organization is then drawn as a root.
    if (org.parent_id !== null && byId.has(org.parent_id)) {
      if (!children.has(org.parent_id)) children.set(org.parent_id, []);
      children.get(org.parent_id).push(org);
    } else {
      roots.push(org);
    }
  }
  const order = (a, b) => a.sort_order - b.sort_order || a.id - b.id;
  roots.sort(order);
  for (const list of children.values()) list.sort(order);
  return { byId, children, roots };
}

/** Returns the ids from the visible root down to `id`, inclusive. */
export function ancestorIds(index, id) {
  const chain = [];
  let org = index.byId.get(id);
  while (org) {
    chain.unshift(org.id);
    org = org.parent_id !== null ? index.byId.get(org.parent_id) : undefined;
  }
  return chain;
}

/**
 * Creates the tree widget. `onSelect(id)` runs when the user selects a node.
 * Call `render(index, selectedId, filterText)` to draw it.
 */
export function createTree({ onSelect }) {
  const expanded = new Set();
  const element = h('ul', { class: 'tree', role: 'tree', 'aria-label': t('org.treeLabel') });
  let state = { index: null, selectedId: null, filter: '' };
  let focusedId = null;
  let lastSelectedId = null;

  function matchesFilter(org, filter, index) {
    if (!filter) return true;
    if (org.name.includes(filter)) return true;
    return (index.children.get(org.id) || []).some((child) => matchesFilter(child, filter, index));
  }

  function renderNode(org, level) {
    const { index, selectedId, filter } = state;
    const kids = (index.children.get(org.id) || []).filter((child) => matchesFilter(child, filter, index));
    const hasKids = kids.length > 0;
    const isOpen = hasKids && (expanded.has(org.id) || Boolean(filter));
    const item = h('li', {
      role: 'treeitem',
      'aria-level': level,
      'aria-selected': org.id === selectedId ? 'true' : 'false',
      'aria-expanded': hasKids ? String(isOpen) : null,
      tabindex: org.id === focusedId ? '0' : '-1',
      // Named by its own row only: content naming would include every child.
      'aria-labelledby': `tree-name-${org.id} tree-kind-${org.id}`,
      dataset: { id: String(org.id) },
    });
    const toggle = hasKids
      ? h('span', { class: 'tree-toggle', 'aria-hidden': 'true', dataset: { toggle: String(org.id) } }, isOpen ? '▾' : '▸')
      : h('span', { class: 'tree-toggle tree-leaf', 'aria-hidden': 'true' });
    const row = h(
      'div',
      { class: 'tree-row', style: `padding-left: ${(level - 1) * 16 + 4}px` },
      toggle,
      h('span', { class: 'tree-name', id: `tree-name-${org.id}` }, org.name),
      h('span', { class: `kind-tag kind-${org.kind}`, id: `tree-kind-${org.id}` }, t(`kind.${org.kind}`)),
    );
    item.append(row);
    if (isOpen) {
      item.append(h('ul', { role: 'group' }, kids.map((child) => renderNode(child, level + 1))));
    }
    return item;
  }

  function render(index, selectedId, filter = '') {
    state = { index, selectedId, filter: filter.trim() };
    if (selectedId !== null && selectedId !== lastSelectedId) {
      // A newly selected node opens with its ancestors, like a file browser.
      for (const id of ancestorIds(index, selectedId)) expanded.add(id);
      lastSelectedId = selectedId;
    }
    if (focusedId === null || !index.byId.has(focusedId)) focusedId = selectedId ?? (index.roots[0] && index.roots[0].id);
    const roots = index.roots.filter((org) => matchesFilter(org, state.filter, index));
    const hadFocus = element.contains(document.activeElement);
    element.replaceChildren(...roots.map((org) => renderNode(org, 1)));
    if (!element.querySelector('[tabindex="0"]')) {
      const first = element.querySelector('[role="treeitem"]');
      if (first) {
        first.tabIndex = 0;
        focusedId = Number(first.dataset.id);
      }
    }
    if (hadFocus) focusNode(focusedId);
  }

  /** Expands every node on the way to `id`. */
  function reveal(id) {
    if (!state.index) return;
    for (const ancestor of ancestorIds(state.index, id).slice(0, -1)) expanded.add(ancestor);
  }

  function visibleItems() {
    return [...element.querySelectorAll('[role="treeitem"]')];
  }

  function focusNode(id) {
    const item = element.querySelector(`[role="treeitem"][data-id="${id}"]`);
    if (!item) return;
    for (const other of element.querySelectorAll('[role="treeitem"][tabindex="0"]')) other.tabIndex = -1;
    item.tabIndex = 0;
    focusedId = id;
    item.focus();
  }

  function setExpanded(id, open) {
    if (open) expanded.add(id);
    else expanded.delete(id);
    render(state.index, state.selectedId, state.filter);
    focusNode(id);
  }

  element.addEventListener('click', (event) => {
    const item = event.target.closest('[role="treeitem"]');
    if (!item) return;
    const id = Number(item.dataset.id);
    if (event.target.closest('[data-toggle]')) {
      setExpanded(id, item.getAttribute('aria-expanded') !== 'true');
      return;
    }
    focusedId = id;
    onSelect(id);
  });

  element.addEventListener('keydown', (event) => {
    const item = event.target.closest('[role="treeitem"]');
    if (!item) return;
    const id = Number(item.dataset.id);
    const items = visibleItems();
    const position = items.indexOf(item);
    const isExpanded = item.getAttribute('aria-expanded');
    let handled = true;
    switch (event.key) {
      case 'ArrowDown':
        if (items[position + 1]) focusNode(Number(items[position + 1].dataset.id));
        break;
      case 'ArrowUp':
        if (items[position - 1]) focusNode(Number(items[position - 1].dataset.id));
        break;
      case 'ArrowRight':
        if (isExpanded === 'false') setExpanded(id, true);
        else if (isExpanded === 'true' && items[position + 1]) focusNode(Number(items[position + 1].dataset.id));
        break;
      case 'ArrowLeft': {
        if (isExpanded === 'true') {
          setExpanded(id, false);
        } else {
          const parent = item.parentElement.closest('[role="treeitem"]');
          if (parent) focusNode(Number(parent.dataset.id));
        }
        break;
      }
      case 'Home':
        if (items[0]) focusNode(Number(items[0].dataset.id));
        break;
      case 'End':
        if (items.length) focusNode(Number(items[items.length - 1].dataset.id));
        break;
      case 'Enter':
      case ' ':
        onSelect(id);
        break;
      default:
        handled = false;
    }
    if (handled) event.preventDefault();
  });

  return { element, render, reveal, focusNode };
}
