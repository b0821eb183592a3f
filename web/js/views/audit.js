// The Audit page for the security auditor: the trail, newest first, and a
// check of the whole hash chain and its signed head.

import { api, query } from '../api.js';
import { announce, errorState, h, pager, replace } from '../dom.js';
import { formatDateTime, t, tOr } from '../i18n.js';

const PAGE_SIZE = 50;
const TARGET_TYPES = ['account', 'org', 'member'];

function describeDetail(detail) {
  if (!detail || detail === '{}') return '';
  return detail;
}

export function mountAudit(outlet) {
  const state = { target: '', offset: 0 };
  const targetSelect = h(
    'select',
    { 'aria-label': t('audit.targetFilter') },
    h('option', { value: '' }, t('audit.allTargets')),
    TARGET_TYPES.map((type) => h('option', { value: type }, t(`target.${type}`))),
  );
  const result = h('div', { class: 'verify-result', role: 'status', 'aria-live': 'polite', 'data-testid': 'verify-result' });
  const verifyButton = h('button', { type: 'button', class: 'button button-primary' }, t('audit.verify'));
  const body = h('div', { class: 'card-body table-wrap' }, h('p', { class: 'muted' }, t('common.loading')));

  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      h('header', { class: 'page-header' }, h('h1', {}, t('audit.title')), verifyButton),
      result,
      h(
        'section',
        { class: 'card' },
        h('header', { class: 'card-header' }, h('div', { class: 'filters' }, targetSelect)),
        body,
      ),
    ),
  );

  verifyButton.addEventListener('click', async () => {
    verifyButton.disabled = true;
    verifyButton.textContent = t('audit.verifying');
    result.className = 'verify-result';
    result.textContent = t('audit.verifying');
    try {
      const outcome = await api.get('/api/audit/verify');
      if (outcome.intact) {
        result.className = 'verify-result verify-ok';
        result.textContent = t('audit.intact', { count: outcome.entries });
      } else {
        result.className = 'verify-result verify-bad';
        result.textContent = t('audit.broken', { fault: outcome.fault });
      }
    } catch (error) {
      result.className = 'verify-result verify-bad';
      result.textContent = error.message;
      announce(error.message, 'error');
    } finally {
      verifyButton.disabled = false;
      verifyButton.textContent = t('audit.verify');
    }
  });

  async function load() {
    let page;
    try {
      page = await api.get(`/api/audit${query({ target_type: state.target, limit: PAGE_SIZE, offset: state.offset })}`);
    } catch (error) {
      replace(body, errorState(error, load));
      return;
    }
    if (page.items.length === 0) {
      replace(body, h('p', { class: 'empty-state' }, t('audit.empty')));
      return;
    }
    replace(
      body,
      h(
        'table',
        { class: 'table table-dense', 'data-testid': 'audit' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, t('audit.seq')),
            h('th', { scope: 'col' }, t('audit.at')),
            h('th', { scope: 'col' }, t('audit.actor')),
            h('th', { scope: 'col' }, t('audit.action')),
            h('th', { scope: 'col' }, t('audit.target')),
            h('th', { scope: 'col', class: 'hide-narrow' }, t('audit.detail')),
            h('th', { scope: 'col', class: 'hide-narrow' }, t('audit.addr')),
          ),
        ),
        h(
          'tbody',
          {},
          page.items.map((entry) =>
            h(
              'tr',
              {},
              h('td', { class: 'mono' }, String(entry.seq)),
              h('td', { class: 'nowrap' }, formatDateTime(entry.at)),
              h('td', {}, entry.actor_name),
              h('td', {}, tOr(`action.${entry.action}`, entry.action)),
              h('td', { class: 'nowrap' }, `${tOr(`target.${entry.target_type}`, entry.target_type)} ${entry.target_id}`),
              h('td', { class: 'hide-narrow detail-cell mono' }, describeDetail(entry.detail)),
              h('td', { class: 'hide-narrow mono' }, entry.client_addr),
            ),
          ),
        ),
      ),
      pager(page, (offset) => {
        state.offset = offset;
        load();
      }),
    );
  }

  targetSelect.addEventListener('change', () => {
    state.target = targetSelect.value;
    state.offset = 0;
    load();
  });
  load();
  return {};
}
