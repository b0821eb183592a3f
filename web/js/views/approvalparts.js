// Pieces shared by the approval pages: the page header with its tabs, tags
// for a document's security level and urgency, readable template steps,
// member names, and the text difference between two body versions.

import { api, query } from '../api.js';
import { h } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { session } from '../session.js';

/** Document types (文种) the server accepts. */
export const DOC_TYPES = ['请示', '报告', '通知', '通报', '函', '纪要', '意见', '决定', '批复', '方案'];
export const SECURITY_LEVELS = ['public', 'internal', 'confidential'];
export const URGENCIES = ['normal', 'urgent', 'very_urgent'];

/** Checks whether the caller has an officer role anywhere, which the number register requires. */
function isOfficer() {
  return Boolean(session.member && session.member.roles && session.member.roles.length > 0);
}

/** Renders the page header shared by the lists, the drafting page and templates. */
export function approvalsHeader(active) {
  const tab = (name, href) =>
    h('a', { href, class: 'tab', 'data-link': true, 'aria-current': active === name ? 'page' : null }, t(`approvals.tab.${name}`));
  return h(
    'header',
    { class: 'page-header' },
    h('h1', {}, t('approvals.title')),
    h(
      'nav',
      { class: 'tabs', 'aria-label': t('approvals.tabsLabel') },
      tab('todo', '/approvals'),
      tab('drafts', '/approvals/drafts'),
      tab('involved', '/approvals/involved'),
      tab('templates', '/approvals/templates'),
      isOfficer() ? tab('register', '/approvals/register') : null,
      tab('calendar', '/approvals/calendar'),
    ),
    h('div', { class: 'page-header-spacer' }),
    active === 'new' ? null : h('a', { href: '/approvals/new', class: 'button button-primary', 'data-link': true }, `+ ${t('approvals.new')}`),
  );
}

/** Renders the type, security level and urgency tags of a document. */
export function documentTags(document) {
  return [
    h('span', { class: 'tag' }, document.doc_type),
    document.security_level === 'public' ? null : h('span', { class: `tag tag-security-${document.security_level}` }, t(`security.${document.security_level}`)),
    document.urgency === 'normal' ? null : h('span', { class: 'tag tag-urgent' }, t(`urgency.${document.urgency}`)),
  ];
}

/** Renders a document's status as a small coloured label. */
/**
 * Shows an open task's deadline as its last working day, marked once the
 * deadline has passed. `dueAt` is the end of that day (Unix ms).
 */
export function dueTag(dueAt) {
  if (!dueAt) return null;
  const overdue = Date.now() >= dueAt;
  return h(
    'span',
    { class: overdue ? 'due-tag due-overdue' : 'due-tag', 'data-testid': 'due-tag' },
    t(overdue ? 'doc.overdue' : 'doc.dueBy', { date: formatDate(dueAt - 1) }),
  );
}

export function statusTag(status) {
  return h('span', { class: `status-tag doc-status doc-status-${status}` }, t(`docStatus.${status}`));
}

/**
 * Member names by id. The document view names everyone it mentions in
 * `members`, and the drafting and template pages load an organization's
 * members and officers to name template assignees.
 */
export function createNameBook() {
  const names = new Map();
  const loadedOrgs = new Map();
  return {
    add(id, name) {
      if (id && name) names.set(Number(id), name);
    },
    /** Adds a `{ "<member id>": name }` map such as a document view's `members`. */
    addAll(map) {
      for (const [id, name] of Object.entries(map || {})) this.add(id, name);
    },
    /** Loads the members and officers of an organization once. */
    loadOrg(orgId) {
      if (!loadedOrgs.has(orgId)) {
        loadedOrgs.set(
          orgId,
          Promise.all([
            api.get(`/api/orgs/${orgId}/members${query({ limit: 200 })}`).then(
              (page) => page.items.forEach((member) => names.set(member.id, member.name)),
              () => {},
            ),
            api.get(`/api/orgs/${orgId}/roles`).then(
              (roles) => roles.forEach((role) => names.set(role.member_id, role.name)),
              () => {},
            ),
          ]),
        );
      }
      return loadedOrgs.get(orgId);
    },
    name(id) {
      return names.get(Number(id)) || `#${id}`;
    },
    list(ids) {
      return ids.map((id) => this.name(id)).join('、');
    },
  };
}

/** Describes a template assignee: named members or a role in the tree. */
export function describeAssignee(assignee, book) {
  if (assignee.members) return t('assignee.members', { names: book ? book.list(assignee.members) : assignee.members.join('、') });
  const { role, org } = assignee.role;
  let orgText;
  if (org === 'issuing') orgText = t('assignee.orgIssuing');
  else if (org === 'parent') orgText = t('assignee.orgParent');
  else orgText = t('assignee.orgAncestor', { levels: org.ancestor.levels });
  return t('assignee.role', { org: orgText, role: t(`role.${role}`) });
}

/** Describes a step kind such as all-of countersign or a ratio. */
export function describeKind(kind) {
  if (kind.type === 'ratio') return t('stepKind.ratio', { at_least: kind.at_least, of: kind.of });
  return t(`stepKind.${kind.type}`);
}

/** Renders a template's steps as an ordered list, one line of detail each. */
export function templateSteps(definition, book = null) {
  return h(
    'ol',
    { class: 'route-steps' },
    definition.steps.map((step) => {
      const details = [describeKind(step.kind), ...step.assignees.map((assignee) => describeAssignee(assignee, book))];
      if (step.deadline_working_days) details.push(t('step.deadline', { days: step.deadline_working_days }));
      if (step.condition) details.push(t('step.condition', { condition: JSON.stringify(step.condition) }));
      if (step.cc_on_start && step.cc_on_start.length) details.push(t('step.ccStart', { count: step.cc_on_start.length }));
      if (step.cc_on_finish && step.cc_on_finish.length) details.push(t('step.ccFinish', { count: step.cc_on_finish.length }));
      return h('li', { class: 'route-step' }, h('strong', {}, step.name), h('span', { class: 'muted' }, details.join(' · ')));
    }),
  );
}

/** Extracts the text of a body, one line per block element. */
export function bodyText(html) {
  const container = document.createElement('div');
  container.innerHTML = html;
  for (const block of container.querySelectorAll('p, li, div, br, h1, h2, h3, h4, tr')) {
    block.append('\n');
  }
  return container.textContent.replace(/\n{2,}/g, '\n').trim();
}

/** Longest input, in characters, for the character-level comparison. */
const DIFF_CHAR_LIMIT = 3000;

/**
 * Compares two texts and returns `[{ kind: 'same'|'removed'|'added', text }]`.
 * Texts up to DIFF_CHAR_LIMIT characters are compared by character, which
 * suits Chinese text without spaces; longer ones by line, to bound the
 * quadratic table.
 */
export function diffTexts(before, after) {
  const byChar = before.length <= DIFF_CHAR_LIMIT && after.length <= DIFF_CHAR_LIMIT;
  const a = byChar ? [...before] : before.split('\n').map((line) => `${line}\n`);
  const b = byChar ? [...after] : after.split('\n').map((line) => `${line}\n`);
  // lengths[i][j] is the longest common subsequence of a[i..] and b[j..].
  const lengths = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i -= 1) {
    for (let j = b.length - 1; j >= 0; j -= 1) {
      lengths[i][j] = a[i] === b[j] ? lengths[i + 1][j + 1] + 1 : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
    }
  }
  const parts = [];
  const push = (kind, text) => {
    const last = parts[parts.length - 1];
    if (last && last.kind === kind) last.text += text;
    else parts.push({ kind, text });
  };
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      push('same', a[i]);
      i += 1;
      j += 1;
    } else if (lengths[i + 1][j] >= lengths[i][j + 1]) {
      push('removed', a[i]);
      i += 1;
    } else {
      push('added', b[j]);
      j += 1;
    }
  }
  while (i < a.length) push('removed', a[i++]);
  while (j < b.length) push('added', b[j++]);
  return parts;
}

/** Renders a difference as inline text with <del> and <ins> marks. */
export function renderDiff(parts) {
  return h(
    'div',
    { class: 'diff-view' },
    parts.map((part) => {
      if (part.kind === 'removed') return h('del', {}, part.text);
      if (part.kind === 'added') return h('ins', {}, part.text);
      return part.text;
    }),
  );
}
