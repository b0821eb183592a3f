// The sender's live view of one notice: totals, per-organization read and
// confirmed counts, who has not read, replies, and the remind and withdraw
// actions. Counts change from `notice:ID` hub events without a reload.
//
// Route: /notices/sent/{id}.

import { api } from '../api.js';
import { announce, confirmDialog, errorState, h, replace } from '../dom.js';
import { hub } from '../hub.js';
import { formatDateMinutes, t } from '../i18n.js';
import { noticesHeader, noticeTags } from './notices.js';

function percent(part, whole) {
  return whole === 0 ? 0 : Math.round((part / whole) * 100);
}

function bar(part, whole, label) {
  return h('div', { class: 'bar', role: 'img', 'aria-label': label }, h('span', { style: `width: ${percent(part, whole)}%` }));
}

export function mountProgress(outlet, context) {
  const id = Number(context.params[0]);
  let notice = null;
  let progress = null;
  /** The `notice:ID` sequence number included in `progress`. */
  let snapshotSeq = 0;
  let stopFollowing = null;
  let closed = false;
  /**
   * Replies by member id: the snapshot's, then those of later
   * `receipt.confirmed` events.
   */
  const replies = new Map();

  const titleNode = h('h2', { tabindex: '-1' });
  const metaNode = h('p', { class: 'notice-meta' });
  const stats = h('dl', { class: 'stats progress-stats', 'data-testid': 'progress-stats' });
  const byOrg = h('div', { class: 'table-wrap' });
  const unreadList = h('div', {});
  const replyList = h('div', {});
  const actionMessage = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const liveStatus = h('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  const remindButton = h('button', { type: 'button', class: 'button', onclick: remind }, t('notices.remind'));
  const withdrawButton = h('button', { type: 'button', class: 'button button-danger-outline', onclick: withdraw }, t('notices.withdraw'));
  const content = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));

  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      noticesHeader('sent'),
      content,
      liveStatus,
    ),
  );

  function drawLayout() {
    replace(
      content,
      h('a', { href: '/notices/sent', class: 'back-link', 'data-link': true }, `‹ ${t('notices.backToSent')}`),
      h(
        'section',
        { class: 'card' },
        h(
          'header',
          { class: 'card-header progress-header' },
          h('div', {}, titleNode, metaNode),
          h('div', { class: 'toolbar' }, remindButton, withdrawButton),
        ),
        h('div', { class: 'card-body' }, actionMessage, stats),
      ),
      h('section', { class: 'card' }, h('header', { class: 'card-header' }, h('h3', { class: 'card-title' }, t('notices.byOrg'))), h('div', { class: 'card-body' }, byOrg)),
      h(
        'div',
        { class: 'progress-columns' },
        h('section', { class: 'card' }, h('header', { class: 'card-header' }, h('h3', { class: 'card-title' }, t('notices.unreadList'))), h('div', { class: 'card-body' }, unreadList)),
        h('section', { class: 'card' }, h('header', { class: 'card-header' }, h('h3', { class: 'card-title' }, t('notices.replies'))), h('div', { class: 'card-body' }, replyList)),
      ),
    );
  }

  function stat(label, value, testId, extra = null) {
    return h('div', {}, h('dt', {}, label), h('dd', { 'data-testid': testId }, String(value)), extra);
  }

  function draw() {
    const withdrawn = notice.status === 'withdrawn';
    titleNode.textContent = notice.title;
    replace(metaNode, noticeTags(notice), h('span', { class: 'muted' }, t('notices.sentOn', { time: formatDateMinutes(notice.created_at) })));
    remindButton.disabled = withdrawn || progress.unread.length === 0;
    withdrawButton.disabled = withdrawn;
    replace(
      stats,
      stat(t('notices.recipients'), progress.total, 'total'),
      stat(t('notices.read'), progress.read, 'read-count', bar(progress.read, progress.total, t('notices.readPercent', { percent: percent(progress.read, progress.total) }))),
      notice.require_confirm
        ? stat(t('notices.confirmedCount'), progress.confirmed, 'confirmed-count', bar(progress.confirmed, progress.total, t('notices.confirmedPercent', { percent: percent(progress.confirmed, progress.total) })))
        : null,
      stat(t('notices.unreadCount'), progress.total - progress.read, 'unread-count'),
    );
    replace(
      byOrg,
      h(
        'table',
        { class: 'table table-dense', 'data-testid': 'by-org' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, t('members.org')),
            h('th', { scope: 'col' }, t('notices.recipients')),
            h('th', { scope: 'col' }, t('notices.read')),
            notice.require_confirm ? h('th', { scope: 'col' }, t('notices.confirmedCount')) : null,
          ),
        ),
        h(
          'tbody',
          {},
          progress.by_org.map((org) =>
            h(
              'tr',
              { dataset: { org: String(org.org_id) } },
              h('th', { scope: 'row' }, org.org_name),
              h('td', {}, String(org.total)),
              h('td', { class: 'read' }, `${org.read}`, h('span', { class: 'muted' }, ` (${percent(org.read, org.total)}%)`)),
              notice.require_confirm ? h('td', { class: 'confirmed' }, String(org.confirmed)) : null,
            ),
          ),
        ),
      ),
    );
    replace(
      unreadList,
      progress.unread.length === 0
        ? h('p', { class: 'muted' }, t('notices.allRead'))
        : h(
          'ul',
          { class: 'name-list', 'data-testid': 'unread-list' },
          progress.unread.map((person) => h('li', { class: 'name-chip', title: person.org_name }, person.name)),
        ),
    );
    const replyItems = [...replies.values()].sort((a, b) => b.confirmed_at - a.confirmed_at);
    replace(
      replyList,
      replyItems.length === 0
        ? h('p', { class: 'muted' }, t(notice.require_confirm ? 'notices.noReplies' : 'notices.noConfirmAsked'))
        : h(
          'ul',
          { class: 'reply-list', 'data-testid': 'replies' },
          replyItems.map((entry) =>
            h(
              'li',
              {},
              h('p', { class: 'reply-head' }, h('strong', {}, entry.name), h('span', { class: 'muted' }, `${entry.org_name} · ${formatDateMinutes(entry.confirmed_at)}`)),
              entry.reply ? h('p', { class: 'receipt-reply' }, entry.reply) : h('p', { class: 'muted' }, t('notices.noReplyText')),
            ),
          ),
        ),
    );
  }

  function orgOf(orgId) {
    return progress.by_org.find((org) => org.org_id === orgId) || null;
  }

  /** Removes a member from the unread list; returns whether it was there. */
  function takeUnread(memberId) {
    const position = progress.unread.findIndex((person) => person.member_id === memberId);
    if (position < 0) return false;
    progress.unread.splice(position, 1);
    return true;
  }

  function countRead(data) {
    if (!takeUnread(data.member_id)) return false;
    progress.read += 1;
    const org = orgOf(data.org_id);
    if (org) org.read += 1;
    return true;
  }

  function rememberReply(data) {
    replies.set(data.member_id, {
      name: data.name,
      org_name: data.org_name,
      reply: data.reply,
      confirmed_at: data.confirmed_at,
    });
  }

  function onEvent(event) {
    const data = event.data || {};
    // Events up to the snapshot are already in its counts and replies.
    if (!progress || event.seq <= snapshotSeq) return;
    if (event.kind === 'receipt.read') {
      if (countRead(data)) liveStatus.textContent = t('notices.liveRead', { name: data.name, read: progress.read, total: progress.total });
    } else if (event.kind === 'receipt.confirmed') {
      if (!replies.has(data.member_id)) {
        progress.confirmed += 1;
        const org = orgOf(data.org_id);
        if (org) org.confirmed += 1;
      }
      countRead(data);
      rememberReply(data);
      liveStatus.textContent = t('notices.liveConfirmed', { name: data.name, reply: data.reply || t('notices.noReplyText') });
    } else if (event.kind === 'notice.withdrawn') {
      notice.status = 'withdrawn';
      liveStatus.textContent = t('notices.withdrawnLive');
    }
    draw();
  }

  async function loadProgress() {
    const next = await api.get(`/api/notices/${id}/progress`);
    progress = next;
    snapshotSeq = next.seq;
    replies.clear();
    for (const entry of next.replies) rememberReply(entry);
  }

  async function load() {
    try {
      notice = await api.get(`/api/notices/${id}`);
      await loadProgress();
    } catch (error) {
      if (!closed) replace(content, errorState(error, load));
      return;
    }
    if (closed) return;
    drawLayout();
    draw();
    titleNode.focus({ preventScroll: true });
    if (!stopFollowing) {
      stopFollowing = hub.subscribe(
        `notice:${id}`,
        {
          onEvent,
          onReset: async () => {
            try {
              await loadProgress();
            } catch (error) {
              announce(error.message, 'error');
              return;
            }
            if (!closed) draw();
          },
        },
        { since: snapshotSeq },
      );
    }
  }

  function showActionError(message) {
    actionMessage.textContent = message;
    actionMessage.hidden = false;
  }

  async function remind() {
    actionMessage.hidden = true;
    remindButton.disabled = true;
    try {
      const result = await api.post(`/api/notices/${id}/remind`);
      announce(t('notices.remindDone', { count: result.reminded }));
    } catch (error) {
      showActionError(error.message);
    } finally {
      remindButton.disabled = notice.status === 'withdrawn' || progress.unread.length === 0;
    }
  }

  async function withdraw() {
    actionMessage.hidden = true;
    const confirmed = await confirmDialog(t('notices.withdraw'), t('notices.withdrawConfirm', { title: notice.title }), t('notices.withdraw'), true);
    if (!confirmed) return;
    try {
      await api.post(`/api/notices/${id}/withdraw`);
    } catch (error) {
      showActionError(error.message);
      return;
    }
    notice.status = 'withdrawn';
    announce(t('notices.withdrawDone'));
    draw();
  }

  load();
  return {
    unmount() {
      closed = true;
      if (stopFollowing) stopFollowing();
    },
  };
}
