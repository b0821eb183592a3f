// DOM helpers: element creation, live-region announcements, form errors,
// modal dialogs and pagination controls.

import { t } from './i18n.js';

/**
 * Creates an element. An `attrs` key starting with `on` adds an event
 * listener, `class` sets the class name and `text` the text content. A true
 * value sets a boolean attribute, and false, null or undefined skip it.
 * Children may be strings, nodes, arrays, or null (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      element.className = value;
    } else if (key === 'text') {
      element.textContent = value;
    } else if (key === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (key === 'value' && 'value' in element) {
      element.value = value;
    } else if (value === true) {
      element.setAttribute(key, '');
    } else {
      element.setAttribute(key, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces all children of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/**
 * Announces a status message in a live region and, unless `toast` is false,
 * shows it as a toast. `kind` is `info` (polite region) or `error`
 * (assertive region).
 */
export function announce(message, kind = 'info', { toast = true } = {}) {
  const region = document.getElementById(kind === 'error' ? 'live-alert' : 'live-status');
  if (region) {
    // Clearing first makes screen readers repeat an identical message.
    region.textContent = '';
    requestAnimationFrame(() => {
      region.textContent = message;
    });
  }
  const toasts = document.getElementById('toasts');
  if (!toasts || !toast) return;
  const node = h('div', { class: `toast toast-${kind}`, 'aria-hidden': 'true' }, message);
  toasts.append(node);
  setTimeout(() => node.remove(), kind === 'error' ? 8000 : 4000);
}

/** Clears the field and form errors shown by showFormError. */
export function clearFormErrors(form) {
  for (const node of form.querySelectorAll('.field-error')) node.remove();
  for (const input of form.querySelectorAll('[aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    // Restore the hint reference that showFormError extended.
    const hint = input.dataset.describedBy;
    if (hint) input.setAttribute('aria-describedby', hint);
    else input.removeAttribute('aria-describedby');
  }
  const general = form.querySelector('.form-error');
  if (general) {
    general.textContent = '';
    general.hidden = true;
  }
}

/**
 * Shows an error next to the input named by `error.field`, or in the form's
 * `.form-error` box when no such input exists, and moves focus to it.
 */
export function showFormError(form, error) {
  clearFormErrors(form);
  const input = error.field ? form.querySelector(`[name="${CSS.escape(error.field)}"]`) : null;
  if (input) {
    const id = `${input.id || input.name}-error`;
    const message = h('p', { class: 'field-error', id }, error.message);
    const container = input.closest('.field') || input.parentElement;
    container.append(message);
    const hint = input.getAttribute('aria-describedby');
    if (hint) input.dataset.describedBy = hint;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', hint ? `${id} ${hint}` : id);
    input.focus();
    // The message sits next to the field, so it needs no toast.
    announce(error.message, 'error', { toast: false });
    return;
  }
  const general = form.querySelector('.form-error');
  if (general) {
    general.textContent = error.message;
    general.hidden = false;
  } else {
    announce(error.message, 'error');
  }
}

let fieldCounter = 0;

/** Creates a labelled form field around an input, select or textarea. */
export function field(label, control, hint = null) {
  fieldCounter += 1;
  if (!control.id) control.id = `field-${fieldCounter}`;
  const hintNode = hint ? h('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintNode);
}

/**
 * Opens a modal dialog. `build(close)` returns the dialog body; the promise
 * resolves with the value passed to `close` (undefined on Escape or Cancel).
 */
export function openDialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    fieldCounter += 1;
    const titleId = `dialog-title-${fieldCounter}`;
    const dialog = h('dialog', { class: wide ? 'dialog dialog-wide' : 'dialog', 'aria-labelledby': titleId });
    let result;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    const header = h(
      'div',
      { class: 'dialog-header' },
      h('h2', { id: titleId }, title),
      h('button', { type: 'button', class: 'icon-button', 'aria-label': t('common.close'), onclick: () => close(undefined) }, '×'),
    );
    dialog.append(header, build(close));
    document.body.append(dialog);
    dialog.showModal();
    const first = dialog.querySelector('input, select, textarea, [autofocus]');
    if (first) first.focus();
  });
}

/** Asks a yes/no question in a modal dialog; resolves true on confirm. */
export function confirmDialog(title, message, confirmLabel = t('common.confirm'), danger = false) {
  return openDialog(title, (close) =>
    h(
      'div',
      { class: 'dialog-body' },
      h('p', {}, message),
      h(
        'div',
        { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'button', onclick: () => close(false) }, t('common.cancel')),
        h(
          'button',
          { type: 'button', class: danger ? 'button button-danger' : 'button button-primary', onclick: () => close(true), autofocus: true },
          confirmLabel,
        ),
      ),
    ),
  ).then((value) => value === true);
}

/**
 * Builds the standard form body of a dialog: fields, a general error box,
 * Cancel and a submit button. `submit(form)` runs on submit; it returns the
 * value to close with, or throws an ApiError that is shown in the form.
 */
export function dialogForm(close, fields, submitLabel, submit) {
  const submitButton = h('button', { type: 'submit', class: 'button button-primary' }, submitLabel);
  const form = h(
    'form',
    { class: 'dialog-body', novalidate: true },
    fields,
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h(
      'div',
      { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'button', onclick: () => close(undefined) }, t('common.cancel')),
      submitButton,
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    submitButton.disabled = true;
    try {
      const value = await submit(form);
      if (value !== undefined) close(value);
    } catch (error) {
      showFormError(form, error);
    } finally {
      submitButton.disabled = false;
    }
  });
  return form;
}

/** Renders previous/next pagination for an `{items,total,limit,offset}` page. */
export function pager(page, onOffset) {
  const from = page.total === 0 ? 0 : page.offset + 1;
  const to = page.offset + page.items.length;
  const info = page.total === 0 ? t('common.pageEmpty') : t('common.pageInfo', { from, to, total: page.total });
  return h(
    'nav',
    { class: 'pager', 'aria-label': info },
    h('span', { class: 'pager-info' }, info),
    h(
      'button',
      { type: 'button', class: 'button button-small', disabled: page.offset === 0, onclick: () => onOffset(Math.max(0, page.offset - page.limit)) },
      t('common.prev'),
    ),
    h(
      'button',
      { type: 'button', class: 'button button-small', disabled: to >= page.total, onclick: () => onOffset(page.offset + page.limit) },
      t('common.next'),
    ),
  );
}

/** Returns a function that calls `fn` after `ms` of quiet. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Renders an error state with a retry button. */
export function errorState(error, retry) {
  return h(
    'div',
    { class: 'empty-state', role: 'alert' },
    h('p', {}, error.message),
    retry ? h('button', { type: 'button', class: 'button', onclick: retry }, t('common.retry')) : null,
  );
}
