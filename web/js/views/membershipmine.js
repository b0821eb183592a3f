// The caller's own party record: their dues with arrears and their timeline
// (pipeline steps, transfers, mobile registrations). It is the only part of
// the membership section a member who is no officer sees.
//
// Route: /membership/mine, and every membership route for such a member.

import { api } from '../api.js';
import { errorState, h, replace } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { session } from '../session.js';
import { membershipHeader } from './membership.js';

function yuan(fen) {
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

function card(title, testId, ...content) {
  return h(
    'section',
    { class: 'card', 'aria-label': title },
    h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, title)),
    h('div', { class: 'card-body', 'data-testid': testId }, content),
  );
}

function duesCard(dues) {
  const lines = [];
  if (!dues.profile) {
    lines.push(h('p', { class: 'muted' }, t('mem.myNoProfile')));
  } else {
    lines.push(h('p', {}, t('mem.myMonthly', { kind: t(`mem.duesKind.${dues.profile.kind}`), amount: yuan(dues.monthly_fen) })));
    lines.push(
      dues.arrears_fen > 0
        ? h('p', { class: 'form-error' }, t('mem.myArrears', { amount: yuan(dues.arrears_fen), months: dues.unpaid_months.length }))
        : h('p', {}, t('mem.myPaidUp')),
    );
  }
  return card(t('mem.myDues'), 'my-dues', lines);
}

function entryText(entry) {
  if (entry.kind === 'step') return t(`mem.step.${entry.step}`);
  return t(`mem.event.${entry.kind}`, { org: entry.org_name || '' });
}

function timelineCard(timeline) {
  const list = timeline.entries.length
    ? h(
      'ol',
      { class: 'timeline' },
      timeline.entries.map((entry) => h('li', {}, h('strong', {}, entryText(entry)), ` ${formatDate(entry.on)}`)),
    )
    : h('p', { class: 'muted' }, t('common.empty'));
  return card(t('mem.myTimeline'), 'my-timeline', h('p', { class: 'muted' }, `${timeline.org_name} · ${t(`status.${timeline.status}`)}`), list);
}

export async function renderMine(outlet) {
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, h('section', { class: 'page membership-page' }, membershipHeader('mine'), body));
  const memberId = session.account && session.account.member_id;
  if (!memberId) {
    replace(body, h('p', { class: 'empty-state' }, t('mem.noOwnRecord')));
    return;
  }
  try {
    const [dues, timeline] = await Promise.all([
      api.get(`/api/membership/dues/members/${memberId}`),
      api.get(`/api/membership/members/${memberId}/timeline`),
    ]);
    replace(body, duesCard(dues), timelineCard(timeline));
  } catch (error) {
    replace(body, errorState(error, () => renderMine(outlet)));
  }
}
