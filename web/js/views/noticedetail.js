// One received notice: title, sender, body, attachments and the caller's
// receipt. Opening it records the read receipt, and a notice that requires
// confirmation (回执) offers a short reply.

import { api } from '../api.js';
import { announce, errorState, h, replace } from '../dom.js';
import { formatDateMinutes, t } from '../i18n.js';
import { noticeTags } from './notices.js';

const REPLY_MAX_CHARS = 500;

/** Formats a byte count as B, KB or MB with one decimal. */
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function attachmentList(notice) {
  if (notice.attachments.length === 0) return null;
  return h(
    'section',
    { class: 'notice-attachments' },
    h('h3', {}, t('notices.attachments', { count: notice.attachments.length })),
    h(
      'ul',
      {},
      notice.attachments.map((file) =>
        h(
          'li',
          {},
          h('a', { href: `/api/notices/${notice.id}/attachments/${file.position}`, download: file.name }, file.name),
          h('span', { class: 'muted' }, formatSize(file.size)),
        ),
      ),
    ),
  );
}

/**
 * Draws notice `id` into `container`; returns `{ reload, close }`.
 * `onRead` runs after this view recorded the read receipt, `onBack` when the
 * phone layout's back button is pressed.
 */
export function renderNoticeDetail(container, id, { onBack, onRead }) {
  let closed = false;
  let notice = null;
  replace(container, h('p', { class: 'muted pane-body' }, t('common.loading')));

  function receiptBox() {
    const receipt = notice.receipt;
    if (!receipt || !notice.require_confirm) return null;
    if (receipt.confirmed_at) {
      return h(
        'section',
        { class: 'receipt-box receipt-done', 'data-testid': 'receipt' },
        h('p', {}, h('strong', {}, t('notices.confirmed')), ' ', h('span', { class: 'muted' }, formatDateMinutes(receipt.confirmed_at))),
        receipt.reply ? h('p', { class: 'receipt-reply' }, receipt.reply) : null,
      );
    }
    if (notice.status !== 'active') return null;
    const reply = h('textarea', { id: `reply-${notice.id}`, name: 'reply', rows: '2', maxlength: String(REPLY_MAX_CHARS), placeholder: t('notices.replyPlaceholder') });
    const error = h('p', { class: 'field-error', hidden: true, id: `reply-${notice.id}-error` });
    const submit = h('button', { type: 'submit', class: 'button button-primary' }, t('notices.confirm'));
    const form = h(
      'form',
      { class: 'receipt-box', 'data-testid': 'receipt' },
      h('label', { for: reply.id }, t('notices.replyLabel')),
      reply,
      error,
      h('div', { class: 'receipt-actions' }, h('span', { class: 'hint' }, t('notices.replyHint', { max: REPLY_MAX_CHARS })), submit),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      reply.removeAttribute('aria-invalid');
      try {
        notice.receipt = await api.post(`/api/notices/${notice.id}/confirm`, { reply: reply.value.trim() });
        announce(t('notices.confirmedDone'));
        draw();
        if (onRead) onRead();
      } catch (failure) {
        error.textContent = failure.message;
        error.hidden = false;
        reply.setAttribute('aria-invalid', 'true');
        reply.setAttribute('aria-describedby', error.id);
        reply.focus();
        submit.disabled = false;
      }
    });
    return form;
  }

  function draw() {
    const withdrawn = notice.status === 'withdrawn';
    const body = h('div', { class: 'notice-body' });
    if (withdrawn && !notice.is_sender) {
      body.append(h('p', { class: 'withdrawn-note', role: 'note' }, t('notices.withdrawnBody')));
    } else {
      // The server sanitizes the body when the notice is sent.
      body.innerHTML = notice.body_html;
    }
    replace(
      container,
      h(
        'article',
        { class: withdrawn ? 'card notice-article is-withdrawn' : 'card notice-article', 'data-testid': 'notice-detail' },
        h(
          'header',
          { class: 'notice-article-header' },
          h('button', { type: 'button', class: 'button button-small back-button', onclick: onBack }, `‹ ${t('notices.back')}`),
          h('h2', { tabindex: '-1' }, notice.title),
          h('p', { class: 'notice-meta' }, noticeTags(notice), h('span', { class: 'muted' }, `${notice.sender_name} · ${formatDateMinutes(notice.created_at)}`)),
        ),
        body,
        withdrawn && !notice.is_sender ? null : attachmentList(notice),
        receiptBox(),
      ),
    );
  }

  async function markRead() {
    const receipt = notice.receipt;
    if (!receipt || receipt.read_at || notice.status !== 'active') return;
    try {
      notice.receipt = await api.post(`/api/notices/${id}/read`);
    } catch (error) {
      announce(error.message, 'error');
      return;
    }
    if (onRead) onRead();
  }

  async function load() {
    try {
      notice = await api.get(`/api/notices/${id}`);
    } catch (error) {
      if (!closed) replace(container, errorState(error, load));
      return;
    }
    if (closed) return;
    const focusTitle = !container.querySelector('article');
    draw();
    if (focusTitle) container.querySelector('h2').focus({ preventScroll: true });
    await markRead();
  }

  load();
  return {
    reload: load,
    close() {
      closed = true;
    },
  };
}
