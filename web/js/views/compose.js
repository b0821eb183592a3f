// The notice composer: title, rich-text body, priority, confirmation,
// recipients (organization subtrees and single members) and attachments.
//
// Route: /notices/new.

import { api, uploadFile } from '../api.js';
import { announce, clearFormErrors, field, h, replace, showFormError } from '../dom.js';
import { t } from '../i18n.js';
import { noticesHeader } from './notices.js';
import { formatSize } from './noticedetail.js';
import { createRichText } from './richtext.js';
import { createTargetPicker } from './targetpicker.js';

/** Largest accepted attachment, matching the server's limit (20 MiB). */
const MAX_FILE_BYTES = 20 * 1024 * 1024;
const MAX_ATTACHMENTS = 20;
const TITLE_MAX_CHARS = 200;

/**
 * Builds the attachment list: each chosen file uploads at once with a
 * progress bar. `files()` returns the finished uploads, `pending()` the
 * count still uploading.
 */
function createAttachments() {
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
        progress.hidden = true;
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
      progress.hidden = true;
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

function requireValue(condition, fieldName, message) {
  if (!condition) throw { field: fieldName, message };
}

export function mountCompose(outlet, context) {
  const { navigate } = context;
  const title = h('input', { name: 'title', maxlength: String(TITLE_MAX_CHARS), autocomplete: 'off', required: true });
  const editor = createRichText({ name: 'body_html', label: t('notices.body') });
  const priority = h(
    'fieldset',
    { class: 'field inline-choices' },
    h('legend', {}, t('notices.priority')),
    h('label', { class: 'checkbox' }, h('input', { type: 'radio', name: 'priority', value: 'normal', checked: true }), t('notices.priorityNormal')),
    h('label', { class: 'checkbox' }, h('input', { type: 'radio', name: 'priority', value: 'urgent' }), t('notices.urgent')),
  );
  const requireConfirm = h('input', { type: 'checkbox', name: 'require_confirm' });
  const targets = createTargetPicker();
  const attachments = createAttachments();
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, t('notices.send'));
  const form = h(
    'form',
    { class: 'card card-body compose-form', novalidate: true },
    field(t('notices.titleLabel'), title),
    editor.element,
    h(
      'div',
      { class: 'compose-options' },
      priority,
      h(
        'div',
        { class: 'field' },
        h('span', { class: 'field-label' }, t('notices.confirmOption')),
        h('label', { class: 'checkbox' }, requireConfirm, t('notices.requireConfirm')),
      ),
    ),
    targets.element,
    attachments.element,
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' }, h('a', { href: '/notices/sent', class: 'button', 'data-link': true }, t('common.cancel')), submit),
  );
  replace(outlet, h('section', { class: 'page' }, noticesHeader('compose'), h('h2', { class: 'section-title' }, t('notices.compose')), form));

  /** Shows a server error next to its field, naming the target or file at fault. */
  function showError(error) {
    const match = String(error.field || '').match(/^(\w+)(?:\.(\w+))?(?:\[(\d+)\])?$/);
    if (!match) {
      showFormError(form, error);
      return;
    }
    const [, base, list, position] = match;
    let message = error.message;
    if (base === 'targets' && position !== undefined) {
      const name = targets.nameOf(list, Number(position));
      if (name) message = `${name}：${message}`;
    } else if (base === 'attachments' && position !== undefined) {
      const name = attachments.nameAt(Number(position));
      if (name) message = `${name}：${message}`;
    }
    showFormError(form, { field: base, message });
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      const titleText = title.value.trim();
      requireValue(titleText, 'title', t('common.required'));
      requireValue(!editor.isEmpty(), 'body_html', t('notices.bodyRequired'));
      const chosen = targets.value();
      requireValue(chosen.org_ids.length + chosen.member_ids.length > 0, 'targets', t('notices.targetsRequired'));
      requireValue(attachments.pending() === 0, 'attachments', t('notices.uploadsPending'));
      requireValue(attachments.failed() === 0, 'attachments', t('notices.uploadsFailed'));
      const sent = await api.post('/api/notices', {
        title: titleText,
        body_html: editor.html(),
        priority: new FormData(form).get('priority'),
        require_confirm: requireConfirm.checked,
        targets: chosen,
        attachments: attachments.files(),
      });
      announce(t('notices.sent', { title: sent.title }));
      navigate(`/notices/sent/${sent.id}`);
    } catch (error) {
      showError(error);
      submit.disabled = false;
    }
  });

  title.focus();
  return {};
}
