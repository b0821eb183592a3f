// The Organization page: tree on the left, the selected organization in the
// middle, and a member's record in a side pane.
//
// Routes: /org, /org/{orgId}, /org/{orgId}/member/{memberId}, and
// /org/import, which draws the spreadsheet import beside the tree.

import { api } from '../api.js';
import { debounce, errorState, h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { hasSystemRole } from '../session.js';
import { createOrgDialog } from './orgdialogs.js';
import { renderOrgDetail } from './orgdetail.js';
import { renderMemberPane } from './member.js';
import { renderImport } from './orgimport.js';
import { createTree, indexOrgs } from './orgtree.js';

export function mountOrg(outlet, context) {
  const { navigate } = context;
  let index = null;
  let selectedId = null;
  let memberId = null;
  let filter = '';
  let detailHandle = null;
  let importHandle = null;
  const isSystemAdmin = hasSystemRole('system_admin');

  const tree = createTree({ onSelect: (id) => navigate(`/org/${id}`) });
  const filterInput = h('input', {
    type: 'search',
    class: 'tree-filter',
    placeholder: t('org.filter'),
    'aria-label': t('org.filter'),
    oninput: debounce(() => {
      filter = filterInput.value;
      if (index) tree.render(index, selectedId, filter);
    }, 150),
  });
  const rootButton = isSystemAdmin
    ? h('button', { type: 'button', class: 'button button-small', onclick: createRoot }, `+ ${t('org.newRoot')}`)
    : null;
  const importLink = isSystemAdmin
    ? h('a', { href: '/org/import', class: 'button button-small', 'data-link': true }, t('org.import'))
    : null;
  const treeBody = h('div', { class: 'tree-body' }, h('p', { class: 'muted' }, t('common.loading')));
  const treePanel = h(
    'details',
    { class: 'tree-panel', open: true },
    h('summary', { class: 'tree-summary' }, t('org.showTree')),
    h('div', { class: 'tree-tools' }, filterInput, isSystemAdmin ? h('div', { class: 'tree-actions' }, rootButton, importLink) : null),
    treeBody,
  );
  const detail = h('section', { class: 'org-detail', 'aria-live': 'off' });
  const pane = h('aside', { class: 'member-pane', hidden: true });
  const page = h('div', { class: 'org-page' }, treePanel, detail, pane);
  replace(outlet, page);

  // On phones the tree folds away once an organization is chosen.
  const narrow = window.matchMedia('(max-width: 760px)');

  async function loadOrgs() {
    try {
      const orgs = await api.get('/api/orgs');
      index = indexOrgs(orgs);
    } catch (error) {
      replace(treeBody, errorState(error, loadOrgs));
      return false;
    }
    if (index.roots.length === 0) {
      replace(treeBody, h('p', { class: 'empty-state' }, t('org.noOrgs')));
      if (!importHandle) replace(detail, isSystemAdmin ? emptyTreeHint() : null);
      return false;
    }
    replace(treeBody, tree.element);
    return true;
  }

  function emptyTreeHint() {
    return h(
      'div',
      { class: 'empty-state' },
      h('p', {}, t('org.emptyAdmin')),
      h('a', { href: '/org/import', class: 'button button-primary', 'data-link': true }, t('org.import')),
    );
  }

  function closeMemberPane() {
    memberId = null;
    pane.hidden = true;
    page.classList.remove('with-pane');
    replace(pane);
  }

  function closeImport() {
    if (importHandle) importHandle.close();
    importHandle = null;
  }

  /** Draws the import in place of the organization, with no tree selection. */
  function showImport() {
    if (importHandle) return;
    selectedId = null;
    detailHandle = null;
    closeMemberPane();
    if (index.roots.length > 0) tree.render(index, null, filter);
    if (!isSystemAdmin) {
      replace(detail, h('p', { class: 'empty-state' }, t('import.adminOnly')));
      return;
    }
    importHandle = renderImport(detail, { onImported: refreshAfterImport });
    if (narrow.matches) treePanel.open = false;
  }

  /** Reloads the tree after an import and opens it at the new organizations, which it returns. */
  async function refreshAfterImport() {
    const before = new Set(index ? index.byId.keys() : []);
    if (!(await loadOrgs())) return [];
    const created = [...index.byId.values()].filter((org) => !before.has(org.id));
    // The tree finds ancestors in the index it last drew, so it draws the
    // new index before it can reveal the new organizations.
    tree.render(index, null, filter);
    for (const org of created) tree.reveal(org.id);
    tree.render(index, null, filter);
    return created;
  }

  function applyRoute(next) {
    if (next.section === 'import') {
      showImport();
      return;
    }
    closeImport();
    if (index.roots.length === 0) {
      replace(detail, isSystemAdmin ? emptyTreeHint() : null);
      return;
    }
    const { params } = next;
    const orgParam = params[0] ? Number(params[0]) : null;
    const memberParam = params[1] ? Number(params[1]) : null;
    if (orgParam === null || !index.byId.has(orgParam)) {
      navigate(`/org/${index.roots[0].id}`, { replaceState: true });
      return;
    }
    const orgChanged = orgParam !== selectedId;
    selectedId = orgParam;
    tree.render(index, selectedId, filter);
    if (orgChanged || !detailHandle) {
      detailHandle = renderOrgDetail(detail, {
        org: index.byId.get(selectedId),
        index,
        navigate,
        reloadTree: reload,
      });
      if (narrow.matches && orgChanged && params[0]) treePanel.open = false;
    }
    if (memberParam !== memberId) {
      memberId = memberParam;
      if (memberId === null) {
        closeMemberPane();
      } else {
        pane.hidden = false;
        page.classList.add('with-pane');
        renderMemberPane(pane, {
          memberId,
          onClose: () => navigate(`/org/${selectedId}`),
        });
      }
    }
  }

  /** Reloads the tree after a change and goes to `nextId` (or stays). */
  async function reload(nextId = selectedId) {
    if (!(await loadOrgs()) || !mounted) return;
    detailHandle = null;
    const target = index.byId.has(nextId) ? nextId : index.roots[0].id;
    tree.reveal(target);
    selectedId = null;
    navigate(`/org/${target}`);
  }

  async function createRoot() {
    const created = await createOrgDialog(null);
    if (created) await reload(created.id);
  }

  let lastContext = context;
  /** False once the user has left the page, so a late load cannot pull them back. */
  let mounted = true;
  loadOrgs().then(() => {
    if (index && mounted) applyRoute(lastContext);
  });

  return {
    update(next) {
      lastContext = next;
      if (index) applyRoute(next);
    },
    unmount() {
      mounted = false;
      closeImport();
    },
  };
}
