// The sender's pages: the list of sent notices and one notice's receipt
// progress, which follows the `notice:ID` hub topic.
//
// Routes: /notices/sent and /notices/sent/{id}.

import { api, query } from '../api.js';
import { errorState, h, pager, replace } from '../dom.js';
import { formatDateMinutes, t } from '../i18n.js';
import { noticesHeader, noticeTags } from './notices.js';

export { mountProgress } from './progress.js';

const PAGE_SIZE = 20;

function countCell(count, total) {
  return h('td', { class: 'nowrap' }, h('span', { class: 'count-strong' }, String(count)), h('span', { class: 'muted' }, ` / ${total}`));
}

export function mountSent(outlet) {
  let offset = 0;
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

  async function load() {
    try {
      draw(await api.get(`/api/notices/sent${query({ limit: PAGE_SIZE, offset })}`));
    } catch (error) {
      replace(body, errorState(error, load));
    }
  }

  load();
  return {};
}
