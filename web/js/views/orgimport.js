// The spreadsheet import (system administrator): organizations and members
// from the roster an organization department already keeps, as XLSX or CSV.
// Choosing a file runs a dry run whose report lists every rejected row; the
// import button then sends the same file again without `dry_run`.
//
// Route: /org/import, drawn by the Organization page beside the tree.

import { query, uploadBody } from '../api.js';
import { announce, h, replace } from '../dom.js';
import { t } from '../i18n.js';

/** Largest spreadsheet the server accepts, in bytes (20 MiB). */
const MAX_BYTES = 20 * 1024 * 1024;
/** Most rejected rows drawn in the page; the CSV download has all of them. */
const MAX_SHOWN_REJECTIONS = 500;
/** Most new organizations linked in the result. */
const MAX_SHOWN_ORGS = 20;

/**
 * The columns in template order: the header the server looks for, the field
 * name it reports in rejections, and whether a value is required. The
 * headers stay Chinese in both languages because the spreadsheet uses them.
 */
const COLUMNS = [
  { header: '所在组织', field: 'org_path', required: true },
  { header: '姓名', field: 'name', required: true },
  { header: '性别', field: 'gender', required: true },
  { header: '民族', field: 'ethnicity', required: true },
  { header: '出生日期', field: 'birth_date', required: true },
  { header: '学历', field: 'education', required: true },
  { header: '入党日期', field: 'joined_on', required: false },
  { header: '党员状态', field: 'status', required: true },
  { header: '联系电话', field: 'phone', required: true },
  { header: '身份证号', field: 'id_number', required: true },
];

const HEADER_OF_FIELD = new Map(COLUMNS.map((column) => [column.field, column.header]));

/** Returns the spreadsheet header of a rejected field, or a dash for row-wide failures. */
function columnName(field) {
  if (!field) return '—';
  return HEADER_OF_FIELD.get(field) || field;
}

/** Returns the server's `format` for a file name, or null when unsupported. */
function formatOf(fileName) {
  const match = fileName.toLowerCase().match(/\.(xlsx|csv)$/);
  return match ? match[1] : null;
}

function csvCell(value) {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * Saves rows as a UTF-8 CSV file with a byte order mark, which Excel needs
 * to read the Chinese text as UTF-8.
 */
function downloadCsv(fileName, rows) {
  const text = `\uFEFF${rows.map((row) => row.map(csvCell).join(',')).join('\r\n')}\r\n`;
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const link = h('a', { href: url, download: fileName, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

function downloadTemplate() {
  downloadCsv(t('import.templateFile'), [COLUMNS.map((column) => column.header)]);
}

function stat(label, value, testId) {
  return h('div', {}, h('dt', {}, label), h('dd', { 'data-testid': testId }, String(value)));
}

function columnHelp() {
  return h(
    'details',
    { class: 'import-help' },
    h('summary', {}, t('import.columnsTitle')),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'table table-dense' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, t('import.column')),
            h('th', { scope: 'col' }, t('import.requiredColumn')),
            h('th', { scope: 'col' }, t('import.columnFormat')),
          ),
        ),
        h(
          'tbody',
          {},
          COLUMNS.map((column) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, column.header),
              h('td', { class: 'nowrap' }, t(column.required ? 'common.yes' : 'common.no')),
              h('td', {}, t(`import.format.${column.field}`)),
            ),
          ),
        ),
      ),
    ),
  );
}

function rejectedTable(rejected) {
  const shown = rejected.slice(0, MAX_SHOWN_REJECTIONS);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'table table-dense', 'data-testid': 'rejected' },
      h('caption', { class: 'visually-hidden' }, t('import.rejectedTitle')),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, t('import.row')),
          h('th', { scope: 'col' }, t('import.column')),
          h('th', { scope: 'col' }, t('import.reason')),
        ),
      ),
      h(
        'tbody',
        {},
        shown.map((entry) =>
          h(
            'tr',
            { dataset: { row: String(entry.row) } },
            h('th', { scope: 'row', class: 'nowrap' }, String(entry.row)),
            h('td', { class: 'nowrap' }, columnName(entry.field)),
            h('td', {}, entry.message),
          ),
        ),
      ),
    ),
    rejected.length > shown.length ? h('p', { class: 'hint' }, t('import.rejectedTruncated', { shown: shown.length, total: rejected.length })) : null,
  );
}

function downloadRejected(fileName, rejected) {
  const base = fileName.replace(/\.[^.]+$/, '');
  const rows = [[t('import.row'), t('import.column'), t('import.reason')]];
  for (const entry of rejected) rows.push([entry.row, columnName(entry.field), entry.message]);
  downloadCsv(t('import.rejectedFile', { name: base }), rows);
}

/**
 * Draws the import into `container`. `onImported()` runs after a real
 * import and resolves with the organizations that are new in the tree.
 * Returns `{ close }`, which cancels a dry run still uploading.
 */
export function renderImport(container, { onImported }) {
  let file = null;
  let upload = null;
  let uploadIsDryRun = false;
  let closed = false;

  const picker = h('input', { type: 'file', accept: '.xlsx,.csv', hidden: true, onchange: () => choose(picker.files[0]) });
  const chooseButton = h('button', { type: 'button', class: 'button button-primary', onclick: () => picker.click() }, t('import.choose'));
  const fileError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const activity = h('div', { class: 'import-activity', hidden: true });
  const report = h('div', { class: 'import-report' });
  const heading = h('h1', { tabindex: '-1' }, t('import.title'));
  const help = columnHelp();

  replace(
    container,
    h(
      'div',
      { class: 'import-page' },
      h('header', { class: 'detail-header' }, heading, h('p', { class: 'muted' }, t('import.intro'))),
      h(
        'section',
        { class: 'card' },
        h('header', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('import.fileTitle'))),
        h(
          'div',
          { class: 'card-body' },
          h(
            'div',
            { class: 'toolbar' },
            chooseButton,
            h('button', { type: 'button', class: 'button', onclick: downloadTemplate }, t('import.template')),
            picker,
          ),
          h('p', { class: 'hint' }, t('import.fileHint')),
          h('p', { class: 'hint' }, t('import.excelHint')),
          fileError,
          activity,
          help,
        ),
      ),
      report,
    ),
  );
  heading.focus({ preventScroll: true });

  function showFileError(message) {
    fileError.textContent = message;
    fileError.hidden = false;
  }

  function setBusy(busy) {
    chooseButton.disabled = busy;
  }

  /**
   * Sends the chosen file; resolves with the report, or with null after a
   * failure that is already shown.
   */
  async function send(dryRun) {
    const format = formatOf(file.name);
    const progress = h('progress', { max: '100', value: '0', 'aria-label': t('import.uploading', { name: file.name }) });
    const status = h('span', { class: 'muted', role: 'status' }, t('import.uploadPercent', { percent: 0 }));
    const working = t(dryRun ? 'import.checking' : 'import.importing');
    const cancel = dryRun
      ? h('button', { type: 'button', class: 'button button-small', onclick: () => upload && upload.abort() }, t('common.cancel'))
      : null;
    replace(activity, h('span', { class: 'import-file-name' }, file.name), progress, status, cancel);
    activity.hidden = false;
    setBusy(true);
    const path = `/api/import/members${query({ format, dry_run: dryRun })}`;
    uploadIsDryRun = dryRun;
    upload = uploadBody(path, file, (sent, total) => {
      if (sent < total) {
        const percent = Math.floor((sent / total) * 100);
        progress.value = percent;
        status.textContent = t('import.uploadPercent', { percent });
        return;
      }
      // The server reads every row before it answers.
      progress.removeAttribute('value');
      status.textContent = working;
      if (cancel) cancel.hidden = true;
    });
    try {
      return await upload.promise;
    } catch (error) {
      if (!closed && error.code !== 'aborted') showFileError(error.message);
      return null;
    } finally {
      upload = null;
      if (!closed) {
        activity.hidden = true;
        replace(activity);
        setBusy(false);
      }
    }
  }

  async function choose(chosen) {
    picker.value = '';
    if (!chosen) return;
    fileError.hidden = true;
    replace(report);
    if (!formatOf(chosen.name)) {
      showFileError(t('import.badType', { name: chosen.name }));
      return;
    }
    if (chosen.size > MAX_BYTES) {
      showFileError(t('import.tooLarge', { name: chosen.name }));
      return;
    }
    file = chosen;
    const result = await send(true);
    if (closed || !result) return;
    drawDryRun(result);
  }

  async function runImport() {
    replace(report);
    const result = await send(false);
    if (closed || !result) return;
    let created = [];
    try {
      created = await onImported();
    } catch (error) {
      announce(error.message, 'error');
    }
    if (closed) return;
    drawResult(result, created);
  }

  function reportCard(titleKey, stats, body) {
    // The report takes the place the column help would push down.
    help.open = false;
    const title = h('h2', { class: 'card-title', id: 'import-report-title', tabindex: '-1' }, t(titleKey, { name: file.name }));
    replace(
      report,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'import-report-title', 'data-testid': 'import-report' },
        h('header', { class: 'card-header' }, title),
        h('div', { class: 'card-body' }, h('dl', { class: 'stats progress-stats' }, stats), body),
      ),
    );
    title.focus();
  }

  function rejectedSection(result, hintKey) {
    if (result.rejected.length === 0) return null;
    return h(
      'section',
      { class: 'import-rejected' },
      h(
        'div',
        { class: 'import-rejected-header' },
        h('h3', {}, t('import.rejectedTitle')),
        h('button', { type: 'button', class: 'button button-small', onclick: () => downloadRejected(file.name, result.rejected) }, t('import.downloadRejected')),
      ),
      hintKey ? h('p', { class: 'hint' }, t(hintKey)) : null,
      rejectedTable(result.rejected),
    );
  }

  function drawDryRun(result) {
    const importButton = result.imported > 0
      ? h('button', { type: 'button', class: 'button button-primary', onclick: runImport }, t('import.run', { count: result.imported }))
      : null;
    reportCard(
      'import.dryRunTitle',
      [
        stat(t('import.rows'), result.rows, 'import-rows'),
        stat(t('import.ready'), result.imported, 'import-ready'),
        stat(t('import.newOrgs'), result.created_orgs, 'import-orgs'),
        stat(t('import.rejectedCount'), result.rejected.length, 'import-rejected-count'),
      ],
      [
        rejectedSection(result, result.imported > 0 ? 'import.rejectedHint' : null),
        result.imported === 0 ? h('p', { class: 'muted' }, t('import.nothingToImport')) : null,
        h(
          'div',
          { class: 'form-actions' },
          h('button', { type: 'button', class: 'button', onclick: () => picker.click() }, t('import.chooseAnother')),
          importButton,
        ),
      ],
    );
    announce(t('import.checked', { ready: result.imported, rejected: result.rejected.length }), 'info', { toast: false });
  }

  function drawResult(result, created) {
    const shownOrgs = created.slice(0, MAX_SHOWN_ORGS);
    reportCard(
      'import.doneTitle',
      [
        stat(t('import.rows'), result.rows, 'import-rows'),
        stat(t('import.imported'), result.imported, 'import-imported'),
        stat(t('import.createdOrgs'), result.created_orgs, 'import-orgs'),
        stat(t('import.notImported'), result.rejected.length, 'import-rejected-count'),
      ],
      [
        h('p', { class: 'verify-result verify-ok', role: 'status' }, t('import.done', { count: result.imported, orgs: result.created_orgs })),
        shownOrgs.length > 0
          ? h(
            'section',
            {},
            h('h3', {}, t('import.createdOrgsTitle')),
            h(
              'ul',
              { class: 'import-org-list', 'data-testid': 'created-orgs' },
              shownOrgs.map((org) => h('li', {}, h('a', { href: `/org/${org.id}`, 'data-link': true }, org.name))),
            ),
            created.length > shownOrgs.length ? h('p', { class: 'hint' }, t('import.moreOrgs', { count: created.length - shownOrgs.length })) : null,
          )
          : null,
        rejectedSection(result, 'import.rejectedAfterHint'),
        h(
          'div',
          { class: 'form-actions' },
          h('button', { type: 'button', class: 'button', onclick: () => picker.click() }, t('import.chooseAnother')),
        ),
      ],
    );
    announce(t('import.done', { count: result.imported, orgs: result.created_orgs }));
  }

  return {
    close() {
      closed = true;
      // Only a dry run is cancelled: the server finishes an import it has
      // received even when the page no longer waits for the answer.
      if (upload && uploadIsDryRun) upload.abort();
    },
  };
}
