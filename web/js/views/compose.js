// The notice composer: title, rich-text body, priority, confirmation,
// recipients (organization subtrees and single members) and attachments.
//
// Route: /notices/new.

import { api } from '../api.js';
import { announce, clearFormErrors, field, h, replace, showFormError } from '../dom.js';
import { t } from '../i18n.js';
import { noticesHeader } from './notices.js';
import { createRichText } from './richtext.js';
import { createTargetPicker } from './targetpicker.js';
import { createAttachments } from './uploads.js';

const TITLE_MAX_CHARS = 200;

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
