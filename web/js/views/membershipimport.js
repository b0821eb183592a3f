// Bulk import of pipeline people (入党申请人, 积极分子, 发展对象) into the
// organization chosen on the board, from an XLSX or CSV sheet. The server
// checks every row with the time rules of the step form. It imports the
// file only when every row passes, and otherwise the report lists each
// rejected row with its row number, column and reason.

import { query, uploadBody } from '../api.js';
import { announce, h, replace } from '../dom.js';
import { localizeDates } from './membership.js';
import { t } from '../i18n.js';

/** Largest spreadsheet the server accepts, in bytes (20 MiB). */
const MAX_BYTES = 20 * 1024 * 1024;

function formatOf(fileName) {
  const match = fileName.toLowerCase().match(/\.(xlsx|csv)$/);
  return match ? match[1] : null;
}

function rejectedTable(rejected) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'table table-dense', 'data-testid': 'import-rejected' },
      h('caption', { class: 'visually-hidden' }, t('mem.importRejectedCaption')),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, t('mem.importRow')),
          h('th', { scope: 'col' }, t('mem.importColumn')),
          h('th', { scope: 'col' }, t('mem.importReason')),
        ),
      ),
      h(
        'tbody',
        {},
        rejected.map((entry) =>
          h(
            'tr',
            { dataset: { row: String(entry.row) } },
            h('th', { scope: 'row', class: 'nowrap' }, String(entry.row)),
            h('td', { class: 'nowrap' }, entry.column || '—'),
            h('td', {}, localizeDates(entry.message)),
          ),
        ),
      ),
    ),
  );
}

/**
 * Returns the import card for organization `orgId`. `onImported()` runs
 * after a file is stored.
 */
export function peopleImportCard(orgId, onImported) {
  const picker = h('input', { type: 'file', accept: '.xlsx,.csv', hidden: true });
  const choose = h('button', { type: 'button', class: 'button button-primary' }, t('mem.importChoose'));
  const template = (format) =>
    h(
      'a',
      { class: 'button', href: `/api/membership/import-template${query({ format })}`, download: `membership-import-template.${format}` },
      t(`mem.importTemplate.${format}`),
    );
  const status = h('p', { class: 'hint', role: 'status' });
  const report = h('div', { 'data-testid': 'import-report' });
  choose.addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => {
    const file = picker.files[0];
    picker.value = '';
    if (file) send(file);
  });

  async function send(file) {
    replace(report);
    const format = formatOf(file.name);
    if (!format) {
      status.textContent = t('mem.importUnsupported');
      return;
    }
    if (file.size > MAX_BYTES) {
      status.textContent = t('mem.importTooLarge');
      return;
    }
    choose.disabled = true;
    status.textContent = t('mem.importUploading', { name: file.name });
    try {
      const path = `/api/membership/orgs/${orgId}/import${query({ format })}`;
      const result = await uploadBody(path, file, (sent, total) => {
        status.textContent = t('mem.importProgress', { percent: Math.round((sent / total) * 100) });
      }).promise;
      if (result.rejected.length) {
        status.textContent = '';
        replace(
          report,
          h('p', { class: 'form-error', role: 'alert' }, t('mem.importRejected', { count: result.rejected.length, rows: result.rows })),
          rejectedTable(result.rejected),
        );
      } else {
        const message = t('mem.importDone', { count: result.imported });
        status.textContent = message;
        announce(message);
        onImported();
      }
    } catch (error) {
      status.textContent = '';
      replace(report, h('p', { class: 'form-error', role: 'alert' }, localizeDates(error.message)));
    } finally {
      choose.disabled = false;
    }
  }

  return h(
    'section',
    { class: 'card', 'aria-label': t('mem.importTitle') },
    h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('mem.importTitle'))),
    h(
      'div',
      { class: 'card-body' },
      h('p', { class: 'muted' }, t('mem.importIntro')),
      h('div', { class: 'toolbar' }, choose, template('xlsx'), template('csv'), picker),
      status,
      report,
    ),
  );
}
