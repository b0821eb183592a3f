// The Notices inbox: a filtered list on the left and the open notice on the
// right, both kept live from the caller's `user:ID` hub topic.
//
// Routes: /notices and /notices/{id}.

import { api, query } from '../api.js';
import { debounce, errorState, h, pager, replace } from '../dom.js';
import { hub } from '../hub.js';
import { formatDateMinutes, t } from '../i18n.js';
import { session } from '../session.js';
import { refreshCounts } from '../todo.js';
import { renderNoticeDetail } from './noticedetail.js';

const PAGE_SIZE = 20;

/** The cached result of canCompose, for one account. */
let composeCheck = { accountId: null, allowed: null };

/**
 * Resolves whether the caller manages any organization, which sending a
 * notice to an organization needs. Cached per account until a reload.
 */
function canCompose() {
  const accountId = session.account.id;
  if (composeCheck.accountId !== accountId || !composeCheck.allowed) {
    const check = { accountId, allowed: null };
    check.allowed = api.get('/api/orgs').then(
      (orgs) => orgs.some((org) => org.can_write),
      () => {
        check.allowed = null;
        return false;
      },
    );
    composeCheck = check;
  }
  return composeCheck.allowed;
}

/** Renders the page header shared by the inbox, sent list and composer. */
export function noticesHeader(active) {
  const tab = (name, href) =>
    h('a', { href, class: 'tab', 'data-link': true, 'aria-current': active === name ? 'page' : null }, t(`notices.tab.${name}`));
  return h(
    'header',
    { class: 'page-header' },
    h('h1', {}, t('notices.title')),
    h('nav', { class: 'tabs', 'aria-label': t('notices.tabsLabel') }, tab('inbox', '/notices'), tab('sent', '/notices/sent')),
    h('div', { class: 'page-header-spacer' }),
    composeButton(active),
  );
}

function composeButton(active) {
  if (active === 'compose') return null;
  const link = h('a', { href: '/notices/new', class: 'button button-primary', 'data-link': true, hidden: true }, `+ ${t('notices.compose')}`);
  canCompose().then((allowed) => {
    link.hidden = !allowed;
  });
  return link;
}

/** Renders the small tags after a notice title. */
export function noticeTags(notice) {
  return [
    notice.priority === 'urgent' ? h('span', { class: 'tag tag-urgent' }, t('notices.urgent')) : null,
    notice.require_confirm ? h('span', { class: 'tag' }, t('notices.needsConfirm')) : null,
    notice.status === 'withdrawn' ? h('span', { class: 'tag tag-muted' }, t('notices.withdrawn')) : null,
  ];
}

export function mountInbox(outlet, context) {
  const { navigate } = context;
  const filters = { unread: false, urgent: false, offset: 0 };
  let openId = null;
  let page = null;
  let detailHandle = null;
  /** Counts list requests, so a slow response to an older filter is dropped. */
  let loadTicket = 0;

  const allButton = h('button', { type: 'button', class: 'segment', onclick: () => setUnread(false) }, t('notices.filterAll'));
  const unreadButton = h('button', { type: 'button', class: 'segment', onclick: () => setUnread(true) }, t('notices.filterUnread'));
  const urgentBox = h('input', {
    type: 'checkbox',
    onchange: () => {
      filters.urgent = urgentBox.checked;
      filters.offset = 0;
      load();
    },
  });
  const listBody = h('div', { class: 'notice-list-body' }, h('p', { class: 'muted' }, t('common.loading')));
  const listStatus = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  const list = h(
    'section',
    { class: 'card notice-list', 'aria-label': t('notices.inboxLabel') },
    h(
      'header',
      { class: 'card-header' },
      h('div', { class: 'segments', role: 'group', 'aria-label': t('notices.filterLabel') }, allButton, unreadButton),
      h('label', { class: 'checkbox' }, urgentBox, t('notices.filterUrgent')),
    ),
    listBody,
    listStatus,
  );
  const detail = h('section', { class: 'notice-detail', 'aria-label': t('notices.detailLabel') });
  const layout = h('div', { class: 'notice-page' }, list, detail);
  replace(outlet, h('section', { class: 'page page-wide' }, noticesHeader('inbox'), layout));

  function setUnread(unread) {
    filters.unread = unread;
    filters.offset = 0;
    load();
  }

  function itemRow(item) {
    const unread = item.read_at === null && item.status === 'active';
    return h(
      'li',
      { class: unread ? 'notice-item unread' : 'notice-item' },
      h(
        'a',
        {
          href: `/notices/${item.id}`,
          'data-link': true,
          'aria-current': item.id === openId ? 'true' : null,
          dataset: { id: String(item.id) },
        },
        h(
          'span',
          { class: 'notice-item-title' },
          unread ? h('span', { class: 'unread-dot', role: 'img', 'aria-label': t('notices.unread') }) : null,
          h('span', { class: 'notice-title-text' }, item.title),
        ),
        h(
          'span',
          { class: 'notice-item-meta' },
          noticeTags(item),
          h('span', { class: 'muted' }, `${item.sender_name} · ${formatDateMinutes(item.created_at)}`),
          item.require_confirm && item.confirmed_at ? h('span', { class: 'status-tag status-on' }, t('notices.confirmed')) : null,
        ),
      ),
    );
  }

  function draw() {
    allButton.setAttribute('aria-pressed', String(!filters.unread));
    unreadButton.setAttribute('aria-pressed', String(filters.unread));
    unreadButton.textContent = page && page.unread > 0 ? t('notices.filterUnreadCount', { count: page.unread }) : t('notices.filterUnread');
    if (!page) return;
    if (page.items.length === 0) {
      replace(listBody, h('p', { class: 'empty-state' }, t(emptyMessageKey())));
    } else {
      replace(listBody, h('ul', { class: 'notice-items', 'data-testid': 'inbox' }, page.items.map(itemRow)));
    }
    if (page.total > page.limit) listBody.append(pager(page, (offset) => { filters.offset = offset; load(); }));
  }

  function emptyMessageKey() {
    if (filters.urgent) return filters.unread ? 'notices.emptyUrgentUnread' : 'notices.emptyUrgent';
    return filters.unread ? 'notices.emptyUnread' : 'notices.empty';
  }

  async function load() {
    const params = {
      unread: filters.unread || null,
      priority: filters.urgent ? 'urgent' : null,
      limit: PAGE_SIZE,
      offset: filters.offset,
    };
    loadTicket += 1;
    const ticket = loadTicket;
    let next;
    try {
      next = await api.get(`/api/notices/inbox${query(params)}`);
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
      replace(detail, h('div', { class: 'empty-state' }, t('notices.selectHint')));
      return;
    }
    detailHandle = renderNoticeDetail(detail, id, {
      onBack: () => navigate('/notices'),
      onRead: () => {
        refreshCounts();
        load();
      },
    });
  }

  const stopFollowing = hub.subscribe(`user:${session.account.id}`, {
    onEvent(event) {
      reloadSoon();
      const id = event.data && event.data.id;
      if (id === openId && detailHandle && (event.kind === 'notice.withdrawn' || event.kind === 'notice.read')) {
        detailHandle.reload();
      }
      if (event.kind === 'notice.new') listStatus.textContent = t('notices.listUpdated');
    },
    onReset: () => {
      load();
      if (detailHandle) detailHandle.reload();
    },
  });

  load();
  showDetail(context.params[0] ? Number(context.params[0]) : null);

  return {
    update(next) {
      const id = next.params[0] ? Number(next.params[0]) : null;
      if (id !== openId) showDetail(id);
    },
    unmount() {
      stopFollowing();
      if (detailHandle) detailHandle.close();
    },
  };
}
