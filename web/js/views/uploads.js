// The attachment list of the notice composer and the drafting page: each
// chosen file uploads at once to `POST /api/files` with a progress bar.

import { uploadFile } from '../api.js';
import { announce, h } from '../dom.js';
import { t } from '../i18n.js';
import { formatSize } from './noticedetail.js';

/** Largest accepted attachment, matching the server's limit (20 MiB). */
const MAX_FILE_BYTES = 20 * 1024 * 1024;
const MAX_ATTACHMENTS = 20;

/**
 * Builds the attachment list: each chosen file uploads at once with a
 * progress bar. `files()` returns the finished uploads, `pending()` the
 * count still uploading.
 */
export function createAttachments() {
  const entries = [];
  const list = h('ul', { class: 'upload-list' });
  const picker = h('input', { type: 'file', multiple: true, hidden: true });
  const addButton = h('button', { type: 'button', class: 'button button-small', onclick: () => picker.click() }, `+ ${t('notices.addAttachment')}`);
  const element = h(
    'div',
    { class: 'field' },
    h('span', { class: 'field-label', id: 'attachments-label' }, t('notices.attachmentsLabel')),
    h(
      'div',
      { name: 'attachments', tabindex: '-1', role: 'group', 'aria-labelledby': 'attachments-label', class: 'upload-box' },
      h('div', { class: 'upload-tools' }, addButton, h('span', { class: 'hint' }, t('notices.attachmentHint'))),
      list,
      picker,
    ),
  );

  function addFile(file) {
    const progress = h('progress', { max: '100', value: '0', 'aria-label': t('notices.uploading', { name: file.name }) });
    const status = h('span', { class: 'upload-status muted' }, t('notices.uploadWaiting'));
    const entry = { file, stored: null, failed: false, upload: null };
    const remove = h('button', {
      type: 'button',
      class: 'icon-button icon-button-small',
      'aria-label': t('notices.removeAttachment', { name: file.name }),
      onclick: () => {
        if (entry.upload) entry.upload.abort();
        entries.splice(entries.indexOf(entry), 1);
        row.remove();
        addButton.focus();
      },
    }, '×');
    const row = h('li', { class: 'upload-row' }, h('span', { class: 'upload-name' }, file.name), progress, status, remove);
    entry.row = row;
    entries.push(entry);
    list.append(row);

    if (file.size > MAX_FILE_BYTES) {
      fail(t('notices.fileTooLarge', { name: file.name }));
      return;
    }
    entry.upload = uploadFile(file, (sent, total) => {
      const percent = Math.floor((sent / total) * 100);
      progress.value = percent;
      status.textContent = `${percent}%`;
    });
    entry.upload.promise.then(
      (stored) => {
        entry.stored = stored;
        entry.upload = null;
        progress.value = 100;
        progress.classList.add('upload-progress-done');
        status.textContent = formatSize(stored.size);
        announce(t('notices.uploaded', { name: file.name }), 'info', { toast: false });
      },
      (error) => {
        entry.upload = null;
        if (error.code !== 'aborted') fail(error.message);
      },
    );

    function fail(message) {
      entry.failed = true;
      progress.classList.add('upload-progress-done');
      status.textContent = message;
      status.className = 'upload-status field-error';
      announce(message, 'error', { toast: false });
    }
  }

  picker.addEventListener('change', () => {
    for (const file of picker.files) {
      if (entries.length >= MAX_ATTACHMENTS) {
        announce(t('notices.tooManyAttachments', { max: MAX_ATTACHMENTS }), 'error');
        break;
      }
      addFile(file);
    }
    picker.value = '';
  });

  return {
    element,
    input: picker,
    files: () => entries.filter((entry) => entry.stored).map((entry) => ({ sha256: entry.stored.sha256, name: entry.stored.name })),
    pending: () => entries.filter((entry) => !entry.stored && !entry.failed).length,
    failed: () => entries.filter((entry) => entry.failed).length,
    nameAt: (index) => {
      const done = entries.filter((entry) => entry.stored);
      return done[index] ? done[index].file.name : '';
    },
  };
}
