// The approval lists: to-do (待办), my drafts (我的起草) and involved (经办)
// on the left, the open document on the right. The list follows the
// caller's `user:ID` hub topic, so tasks appear and disappear live.
//
// Routes: /approvals[/drafts|/involved][/{id}].

import { api, query } from '../api.js';
import { debounce, errorState, h, pager, replace } from '../dom.js';
import { hub } from '../hub.js';
import { formatDateMinutes, t } from '../i18n.js';
import { session } from '../session.js';
import { refreshCounts } from '../todo.js';
import { approvalsHeader, documentTags, dueTag, statusTag } from './approvalparts.js';
import { renderDocumentDetail } from './docdetail.js';

const PAGE_SIZE = 20;
/** User-topic events that change which documents the lists contain. */
const LIST_EVENTS = new Set(['todo.added', 'todo.removed', 'todo.urged', 'document.copied', 'document.drafter', 'todo.escalated']);

function boxPath(box) {
  return box === 'todo' ? '/approvals' : `/approvals/${box}`;
}

export function mountApprovals(outlet, context) {
  const { navigate } = context;
  let box = context.params[0] || 'todo';
  let openId = null;
  let page = null;
  let offset = 0;
  let detailHandle = null;
  let loadTicket = 0;

  const listBody = h('div', { class: 'notice-list-body' }, h('p', { class: 'muted pane-body' }, t('common.loading')));
  const listStatus = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  const list = h('section', { class: 'card notice-list', 'aria-label': t('approvals.listLabel') }, listBody, listStatus);
  const detail = h('section', { class: 'notice-detail', 'aria-label': t('approvals.detailLabel') });
  const layout = h('div', { class: 'notice-page' }, list, detail);
  const pageSection = h('section', { class: 'page page-wide' });

  function drawFrame() {
    replace(pageSection, approvalsHeader(box), layout);
  }
  drawFrame();
  replace(outlet, pageSection);

  function itemRow(item) {
    return h(
      'li',
      { class: 'notice-item' },
      h(
        'a',
        {
          href: `${boxPath(box)}/${item.id}`,
          'data-link': true,
          'aria-current': item.id === openId ? 'true' : null,
          dataset: { id: String(item.id) },
        },
        h('span', { class: 'notice-item-title' }, h('span', { class: 'notice-title-text' }, item.title)),
        h(
          'span',
          { class: 'notice-item-meta' },
          documentTags(item),
          statusTag(item.status),
          dueTag(item.due_at),
          item.number ? h('span', { class: 'doc-number-small' }, item.number) : null,
        ),
        h('span', { class: 'notice-item-meta muted' }, `${item.drafter_name} · ${formatDateMinutes(item.updated_at)}`),
      ),
    );
  }

  function draw() {
    if (!page) return;
    if (page.items.length === 0) {
      replace(listBody, h('p', { class: 'empty-state' }, t(`approvals.empty.${box}`)));
    } else {
      replace(listBody, h('ul', { class: 'notice-items', 'data-testid': `approvals-${box}` }, page.items.map(itemRow)));
    }
    if (page.total > page.limit) {
      listBody.append(pager(page, (next) => {
        offset = next;
        load();
      }));
    }
  }

  async function load() {
    loadTicket += 1;
    const ticket = loadTicket;
    let next;
    try {
      next = await api.get(`/api/documents${query({ box, limit: PAGE_SIZE, offset })}`);
    } catch (error) {
      if (ticket === loadTicket) replace(listBody, errorState(error, load));
      return;
    }
    if (ticket !== loadTicket) return;
    page = next;
    draw();
  }

  const reloadSoon = debounce(load, 150);

  function showDetail(id) {
    openId = id;
    layout.classList.toggle('has-detail', id !== null);
    for (const link of listBody.querySelectorAll('a[data-id]')) {
      if (Number(link.dataset.id) === id) link.setAttribute('aria-current', 'true');
      else link.removeAttribute('aria-current');
    }
    if (detailHandle) detailHandle.close();
    detailHandle = null;
    if (id === null) {
      replace(detail, h('div', { class: 'empty-state' }, t('approvals.selectHint')));
      return;
    }
    detailHandle = renderDocumentDetail(detail, id, {
      onBack: () => navigate(boxPath(box)),
      onChanged: () => {
        refreshCounts();
        reloadSoon();
      },
    });
  }

  const stopFollowing = hub.subscribe(`user:${session.account.id}`, {
    onEvent(event) {
      if (!LIST_EVENTS.has(event.kind)) return;
      reloadSoon();
      listStatus.textContent = t('approvals.listUpdated');
      const id = event.data && event.data.document_id;
      if (id === openId && detailHandle) detailHandle.reload();
    },
    onReset: () => {
      load();
      if (detailHandle) detailHandle.reload();
    },
  });

  load();
  showDetail(context.params[1] ? Number(context.params[1]) : null);

  return {
    update(next) {
      const nextBox = next.params[0] || 'todo';
      const id = next.params[1] ? Number(next.params[1]) : null;
      if (nextBox !== box) {
        box = nextBox;
        offset = 0;
        page = null;
        drawFrame();
        replace(listBody, h('p', { class: 'muted pane-body' }, t('common.loading')));
        load();
      }
      if (id !== openId) showDetail(id);
    },
    unmount() {
      stopFollowing();
      if (detailHandle) detailHandle.close();
    },
  };
}
