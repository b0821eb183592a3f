// The Organization page: tree on the left, the selected organization in the
// middle, and a member's record in a side pane.
//
// Routes: /org, /org/{orgId} and /org/{orgId}/member/{memberId}.

import { api } from '../api.js';
import { debounce, errorState, h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { hasSystemRole } from '../session.js';
import { createOrgDialog } from './orgdialogs.js';
import { renderOrgDetail } from './orgdetail.js';
import { renderMemberPane } from './member.js';
import { createTree, indexOrgs } from './orgtree.js';

export function mountOrg(outlet, context) {
  const { navigate } = context;
  let index = null;
  let selectedId = null;
  let memberId = null;
  let filter = '';
  let detailHandle = null;

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
  const rootButton = hasSystemRole('system_admin')
    ? h('button', { type: 'button', class: 'button button-small', onclick: createRoot }, `+ ${t('org.newRoot')}`)
    : null;
  const treeBody = h('div', { class: 'tree-body' }, h('p', { class: 'muted' }, t('common.loading')));
  const treePanel = h(
    'details',
    { class: 'tree-panel', open: true },
    h('summary', { class: 'tree-summary' }, t('org.showTree')),
    h('div', { class: 'tree-tools' }, filterInput, rootButton),
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
      replace(detail);
      return false;
    }
    replace(treeBody, tree.element);
    return true;
  }

  function applyRoute(params) {
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
        pane.hidden = true;
        page.classList.remove('with-pane');
        replace(pane);
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
    if (!(await loadOrgs())) return;
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

  let lastParams = context.params;
  loadOrgs().then((ok) => {
    if (ok) applyRoute(lastParams);
  });

  return {
    update(next) {
      lastParams = next.params;
      if (index) applyRoute(next.params);
    },
  };
}
