// The header's to-do count and the badges on the Notices (unread) and
// Approvals (pending tasks) navigation entries, kept live from the caller's
// `user:ID` hub topic. New notices, reminders, withdrawals and approval
// tasks are also announced here, on every page.

import { api } from './api.js';
import { announce } from './dom.js';
import { hub } from './hub.js';
import { t } from './i18n.js';
import { session } from './session.js';

const counts = { notices: 0, approvals: 0, membership: 0, total: 0 };
let unsubscribe = null;
let loading = null;

/** Draws the counts into the header and navigation badges. */
function draw() {
  const todo = document.querySelector('[data-testid="todo-count"]');
  if (todo) {
    todo.textContent = String(counts.total);
    todo.classList.toggle('badge-active', counts.total > 0);
    todo.closest('a').setAttribute('aria-label', t('header.todoLabel', { count: counts.total }));
  }
  drawNavBadge('notices', counts.notices, 'notices-unread', 'notices.navUnread');
  drawNavBadge('approvals', counts.approvals, 'approvals-pending', 'approvals.navPending');
  drawNavBadge('membership', counts.membership, 'membership-due', 'mem.navDue');
}

/** Draws or removes the count badge on one navigation entry. */
function drawNavBadge(name, count, testId, labelKey) {
  const nav = document.querySelector(`.nav-link[data-nav="${name}"]`);
  if (!nav) return;
  let badge = nav.querySelector('.nav-badge');
  if (count === 0) {
    if (badge) badge.remove();
    nav.removeAttribute('aria-label');
    return;
  }
  if (!badge) {
    badge = document.createElement('span');
    badge.className = 'nav-badge';
    badge.dataset.testid = testId;
    badge.setAttribute('aria-hidden', 'true');
    nav.append(badge);
  }
  badge.textContent = count > 99 ? '99+' : String(count);
  nav.setAttribute('aria-label', t(labelKey, { count }));
}

/** Reloads the counts from the server; concurrent calls share one request. */
export function refreshCounts() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const todo = await api.get('/api/todo');
      counts.notices = todo.notices_unread;
      counts.approvals = todo.approvals_pending || 0;
      counts.membership = todo.membership_due || 0;
      counts.total = todo.total;
    } catch {
      // The badges keep their last values until the next event or page load.
    } finally {
      loading = null;
    }
    draw();
  })();
  return loading;
}

function onEvent(event) {
  const data = event.data || {};
  if (event.kind === 'notice.new') {
    const key = data.priority === 'urgent' ? 'notices.arrivedUrgent' : 'notices.arrived';
    announce(t(key, { title: data.title, sender: data.sender_name }));
  } else if (event.kind === 'notice.remind') {
    announce(t('notices.reminded', { title: data.title }));
  } else if (event.kind === 'notice.withdrawn') {
    announce(t('notices.withdrawnLive'));
  } else if (event.kind === 'todo.added') {
    announce(t('approvals.todoAdded', { title: data.title }));
  } else if (event.kind === 'todo.urged') {
    announce(t('approvals.todoUrged', { title: data.title }));
  } else if (event.kind === 'todo.due') {
    announce(t('approvals.todoDue', { title: data.title }));
  } else if (event.kind === 'todo.overdue') {
    announce(t('approvals.todoOverdue', { title: data.title }));
  } else if (event.kind === 'todo.escalated') {
    announce(t('approvals.todoEscalated', { title: data.title, name: data.member_name }));
  } else if (event.kind === 'todo.membership_due' || event.kind === 'todo.membership_overdue') {
    announce(t(`mem.${event.kind === 'todo.membership_due' ? 'todoDue' : 'todoOverdue'}`, { name: data.name, date: data.due_on }));
  } else if (event.kind === 'document.copied') {
    announce(t('approvals.copied', { title: data.title }));
  } else if (event.kind === 'document.drafter') {
    announce(t('approvals.drafterNotice', { title: data.title }));
  }
  refreshCounts();
}

/** Starts following the caller's topic; call once the shell is drawn. */
export function startCounts() {
  stopCounts();
  if (!session.account) return;
  unsubscribe = hub.subscribe(`user:${session.account.id}`, {
    onEvent,
    onReset: refreshCounts,
  });
  refreshCounts();
}

/** Stops following the caller's topic and clears the counts. */
export function stopCounts() {
  if (unsubscribe) unsubscribe();
  unsubscribe = null;
  counts.notices = 0;
  counts.approvals = 0;
  counts.total = 0;
}
