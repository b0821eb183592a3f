// The sender's pages: the list of sent notices and one notice's receipt
// progress, which follows the `notice:ID` hub topic.
//
// Routes: /notices/sent and /notices/sent/{id}.

import { api, query } from '../api.js';
import { debounce, errorState, h, pager, replace } from '../dom.js';
import { hub } from '../hub.js';
import { formatDateMinutes, t } from '../i18n.js';
import { noticesHeader, noticeTags } from './notices.js';

export { mountProgress } from './progress.js';

const PAGE_SIZE = 20;

function countCell(count, total) {
  return h('td', { class: 'nowrap' }, h('span', { class: 'count-strong' }, String(count)), h('span', { class: 'muted' }, ` / ${total}`));
}

export function mountSent(outlet) {
  let offset = 0;
  let following = new Map();
  let closed = false;
  const body = h('div', { class: 'card-body table-wrap' }, h('p', { class: 'muted' }, t('common.loading')));
  replace(
    outlet,
    h('section', { class: 'page' }, noticesHeader('sent'), h('section', { class: 'card', 'aria-label': t('notices.tab.sent') }, body)),
  );

  function draw(page) {
    if (page.items.length === 0) {
      replace(body, h('p', { class: 'empty-state' }, t('notices.sentEmpty')));
      return;
    }
    replace(
      body,
      h(
        'table',
        { class: 'table', 'data-testid': 'sent' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, t('notices.titleLabel')),
            h('th', { scope: 'col', class: 'hide-narrow' }, t('notices.sentAt')),
            h('th', { scope: 'col' }, t('notices.readCount')),
            h('th', { scope: 'col' }, t('notices.confirmCount')),
          ),
        ),
        h(
          'tbody',
          {},
          page.items.map((item) =>
            h(
              'tr',
              { class: item.status === 'withdrawn' ? 'row-disabled' : null },
              h('td', {}, h('a', { href: `/notices/sent/${item.id}`, 'data-link': true }, item.title), ' ', noticeTags({ ...item, priority: null })),
              h('td', { class: 'hide-narrow nowrap' }, formatDateMinutes(item.created_at)),
              countCell(item.read, item.recipients),
              item.require_confirm ? countCell(item.confirmed, item.recipients) : h('td', { class: 'muted' }, '—'),
            ),
          ),
        ),
      ),
      pager(page, (next) => {
        offset = next;
        load();
      }),
    );
  }

  const reloadSoon = debounce(() => load(), 300);

  /**
   * Follows the receipt topics of the listed active notices; any event
   * reloads the list, whose counts come from the server. A new subscription
   * starts at the item's `seq`, the topic position its counts include, so
   * an event between loading the list and subscribing still arrives.
   */
  function follow(items) {
    const next = new Map();
    for (const item of items) {
      if (item.status !== 'active') continue;
      const topic = `notice:${item.id}`;
      const listener = { onEvent: reloadSoon, onReset: reloadSoon };
      next.set(topic, following.get(topic) || hub.subscribe(topic, listener, { since: item.seq }));
    }
    for (const [topic, stop] of following) {
      if (!next.has(topic)) stop();
    }
    following = next;
  }

  async function load() {
    let page;
    try {
      page = await api.get(`/api/notices/sent${query({ limit: PAGE_SIZE, offset })}`);
    } catch (error) {
      if (!closed) replace(body, errorState(error, load));
      return;
    }
    if (closed) return;
    // A live reload keeps keyboard focus on the same row's link.
    const focused = body.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
    draw(page);
    if (focused) {
      const link = body.querySelector(`a[href="${CSS.escape(focused)}"]`);
      if (link) link.focus();
    }
    follow(page.items);
  }

  load();
  return {
    unmount() {
      closed = true;
      for (const stop of following.values()) stop();
      following.clear();
    },
  };
}
