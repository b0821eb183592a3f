// A small rich-text editor: a contenteditable area with bold, list and link
// buttons. The server sanitizes whatever HTML it sends.
//
// The buttons use document.execCommand, which browsers deprecate but still
// implement, and which keeps the browser's own undo history.

import { dialogForm, field, h, openDialog } from '../dom.js';
import { t } from '../i18n.js';

let editorCounter = 0;

/** Accepts http, https and mailto links; anything else is rejected. */
function normalizeLink(text) {
  const value = text.trim();
  if (!value) return null;
  const candidate = /^[a-z][a-z0-9+.-]*:/i.test(value) ? value : `https://${value}`;
  try {
    const url = new URL(candidate);
    return ['http:', 'https:', 'mailto:'].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Creates the editor. `name` is set on the editable area so form errors for
 * that field land next to it, and `initialHtml` is its starting content,
 * which must already be sanitized. Returns `{ element, html, isEmpty }`.
 */
export function createRichText({ name, label, initialHtml = '' }) {
  editorCounter += 1;
  const labelId = `richtext-label-${editorCounter}`;
  const area = h('div', {
    class: 'richtext-area',
    contenteditable: 'true',
    role: 'textbox',
    'aria-multiline': 'true',
    'aria-labelledby': labelId,
    name,
    id: `richtext-${editorCounter}`,
  });
  area.innerHTML = initialHtml;
  let savedRange = null;

  function command(name, value = null) {
    area.focus();
    document.execCommand(name, false, value);
    updateState();
  }

  function button(labelKey, text, onclick, extra = {}) {
    return h('button', { type: 'button', class: 'tool-button', title: t(labelKey), 'aria-label': t(labelKey), onclick, ...extra }, text);
  }

  const boldButton = button('editor.bold', 'B', () => command('bold'), { 'aria-pressed': 'false', class: 'tool-button tool-bold' });
  const toolbar = h(
    'div',
    { class: 'richtext-toolbar', role: 'toolbar', 'aria-label': t('editor.toolbar'), 'aria-controls': area.id },
    boldButton,
    button('editor.bullets', `• ${t('editor.bulletsShort')}`, () => command('insertUnorderedList')),
    button('editor.numbers', `1. ${t('editor.numbersShort')}`, () => command('insertOrderedList')),
    button('editor.link', t('editor.linkShort'), addLink),
    button('editor.unlink', t('editor.unlinkShort'), () => command('unlink')),
  );

  function updateState() {
    boldButton.setAttribute('aria-pressed', String(document.queryCommandState('bold')));
  }

  async function addLink() {
    const selection = window.getSelection();
    savedRange = selection.rangeCount > 0 && area.contains(selection.anchorNode) ? selection.getRangeAt(0).cloneRange() : null;
    const href = await openDialog(t('editor.link'), (close) =>
      dialogForm(
        close,
        [field(t('editor.linkUrl'), h('input', { name: 'url', type: 'url', autocomplete: 'off', placeholder: 'https://' }))],
        t('common.confirm'),
        async (form) => {
          const url = normalizeLink(String(new FormData(form).get('url') || ''));
          if (!url) throw { field: 'url', message: t('editor.linkInvalid') };
          return url;
        },
      ),
    );
    area.focus();
    if (savedRange) {
      const restored = window.getSelection();
      restored.removeAllRanges();
      restored.addRange(savedRange);
    }
    if (!href) return;
    if (savedRange && !savedRange.collapsed) {
      document.execCommand('createLink', false, href);
    } else {
      // Nothing selected: insert the address itself as the link text.
      document.execCommand('insertHTML', false, `<a href="${href.replace(/"/g, '&quot;')}">${href.replace(/</g, '&lt;')}</a>`);
    }
  }

  area.addEventListener('keyup', updateState);
  area.addEventListener('mouseup', updateState);
  // Keep pasted content as plain text so foreign styles do not come along.
  area.addEventListener('paste', (event) => {
    event.preventDefault();
    const text = event.clipboardData.getData('text/plain');
    document.execCommand('insertText', false, text);
  });

  const element = h(
    'div',
    { class: 'field richtext' },
    h('span', { class: 'field-label', id: labelId }, label),
    toolbar,
    area,
  );

  return {
    element,
    html: () => area.innerHTML.trim(),
    isEmpty: () => area.textContent.trim() === '',
  };
}
