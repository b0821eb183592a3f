// Entry point: restores the session, draws the shell and routes by path.
//
// The server returns index.html for every extension-less path outside /api,
// so routes are plain History API paths such as /org/12/member/34.

import { api, setUnauthenticatedHandler } from './api.js';
import { announce, h, replace } from './dom.js';
import { applyDocumentLang, getLang, setLang, t } from './i18n.js';
import { icon } from './icons.js';
import { endSession, homePath, navigationFor, session, startSession } from './session.js';
import { renderLogin, renderPasswordChange, openPasswordDialog } from './views/auth.js';
import { mountComingSoon } from './views/soon.js';
import { mountOrg } from './views/org.js';
import { mountAccounts } from './views/accounts.js';
import { mountAudit } from './views/audit.js';
import { mountInbox } from './views/notices.js';
import { mountCompose } from './views/compose.js';
import { mountApprovals } from './views/approvals.js';
import { mountDraft } from './views/docdraft.js';
import { mountTemplates } from './views/templates.js';
import { mountRegister } from './views/register.js';
import { mountCalendar } from './views/calendar.js';
import { mountMeetings } from './views/meetings.js';
import { mountMembership } from './views/membership.js';
import { mountProgress, mountSent } from './views/sent.js';
import { mountLearning } from './views/learning.js';
import { mountCourse } from './views/course.js';
import { mountLesson } from './views/lesson.js';
import { mountLecture } from './views/lecture.js';
import { mountCertificate, mountExam } from './views/exam.js';
import { mountLearningReports } from './views/learnreports.js';
import { hub } from './hub.js';
import { startCounts, stopCounts } from './todo.js';

const root = document.getElementById('app');

/**
 * Routes: a pattern, the navigation entry it belongs to, its view, and an
 * optional section that the view draws in place of its usual content.
 */
const ROUTES = [
  { pattern: /^\/meetings(?:\/(new|archive)|\/(\d+)(?:\/(room|edit))?)?$/, nav: 'meetings', view: 'meetings' },
  { pattern: /^\/approvals\/new$/, nav: 'approvals', view: 'draft' },
  { pattern: /^\/approvals\/templates$/, nav: 'approvals', view: 'templates' },
  { pattern: /^\/approvals\/register$/, nav: 'approvals', view: 'register' },
  { pattern: /^\/approvals\/calendar$/, nav: 'approvals', view: 'calendar' },
  { pattern: /^\/approvals(?:\/(drafts|involved))?(?:\/(\d+))?$/, nav: 'approvals', view: 'approvals' },
  { pattern: /^\/notices(?:\/(\d+))?$/, nav: 'notices', view: 'inbox' },
  { pattern: /^\/notices\/sent$/, nav: 'notices', view: 'sent' },
  { pattern: /^\/notices\/sent\/(\d+)$/, nav: 'notices', view: 'progress' },
  { pattern: /^\/notices\/new$/, nav: 'notices', view: 'compose' },
  { pattern: /^\/learning$/, nav: 'learning', view: 'learning' },
  { pattern: /^\/learning\/courses\/(\d+)$/, nav: 'learning', view: 'course' },
  { pattern: /^\/learning\/lessons\/(\d+)$/, nav: 'learning', view: 'lesson' },
  { pattern: /^\/learning\/lectures\/(\d+)$/, nav: 'learning', view: 'lecture' },
  { pattern: /^\/learning\/exams\/(\d+)$/, nav: 'learning', view: 'exam' },
  { pattern: /^\/learning\/certificates\/(\d+)$/, nav: 'learning', view: 'certificate' },
  { pattern: /^\/learning\/reports$/, nav: 'learning', view: 'learningReports' },
  { pattern: /^\/membership(?:\/(people)\/(\d+)|\/(transfers|dues|stats|mine))?$/, nav: 'membership', view: 'membership' },
  { pattern: /^\/org\/import$/, nav: 'org', view: 'org', section: 'import' },
  { pattern: /^\/org(?:\/(\d+))?(?:\/member\/(\d+))?$/, nav: 'org', view: 'org' },
  { pattern: /^\/accounts$/, nav: 'accounts', view: 'accounts' },
  { pattern: /^\/audit$/, nav: 'audit', view: 'audit' },
];

const VIEWS = {
  soon: mountComingSoon,
  org: mountOrg,
  accounts: mountAccounts,
  audit: mountAudit,
  inbox: mountInbox,
  sent: mountSent,
  progress: mountProgress,
  compose: mountCompose,
  approvals: mountApprovals,
  draft: mountDraft,
  templates: mountTemplates,
  register: mountRegister,
  calendar: mountCalendar,
  meetings: mountMeetings,
  learning: mountLearning,
  course: mountCourse,
  lesson: mountLesson,
  lecture: mountLecture,
  exam: mountExam,
  certificate: mountCertificate,
  learningReports: mountLearningReports,
  membership: mountMembership,
};

let current = null;

/** Changes the path and renders it without a page reload. */
export function navigate(path, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, '', path);
  else if (location.pathname + location.search !== path) history.pushState(null, '', path);
  route();
}

function matchRoute(path) {
  for (const entry of ROUTES) {
    const match = path.match(entry.pattern);
    if (match) return { ...entry, params: match.slice(1) };
  }
  return null;
}

function route() {
  if (!session.account) {
    showLogin();
    return;
  }
  if (session.account.must_change_password) {
    showForcedPasswordChange();
    return;
  }

  let path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/' || path === '/login') {
    history.replaceState(null, '', homePath());
    path = homePath();
  }
  if (!root.querySelector('.layout')) {
    renderShell();
    startLive();
  }

  const matched = matchRoute(path);
  const allowed = matched && navigationFor().includes(matched.nav);
  highlightNav(allowed ? matched.nav : null);
  const outlet = document.getElementById('main');
  if (!allowed) {
    unmountCurrent();
    replace(
      outlet,
      h(
        'section',
        { class: 'page empty-page' },
        h('h1', {}, t('notFound.title')),
        h('a', { href: homePath(), class: 'button', 'data-link': true }, t('notFound.back')),
      ),
    );
    return;
  }

  const context = { navigate, params: matched.params, nav: matched.nav, section: matched.section || null };
  if (current && current.view === matched.view && current.instance.update) {
    current.instance.update(context);
    return;
  }
  unmountCurrent();
  const instance = VIEWS[matched.view](outlet, context) || {};
  current = { view: matched.view, instance };
  outlet.focus({ preventScroll: true });
}

function unmountCurrent() {
  if (current && current.instance.unmount) current.instance.unmount();
  current = null;
}

function highlightNav(active) {
  for (const link of document.querySelectorAll('.nav-link')) {
    if (link.dataset.nav === active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function showLogin() {
  unmountCurrent();
  if (location.pathname !== '/login') history.replaceState(null, '', '/login');
  renderLogin(root, {
    onLoggedIn: async (info) => {
      await startSession(info);
      const target = sessionStorage.getItem('dangwu-return-to');
      sessionStorage.removeItem('dangwu-return-to');
      navigate(target && target !== '/login' ? target : homePath(), { replaceState: true });
    },
    onLanguage: toggleLanguage,
  });
}

function showForcedPasswordChange() {
  unmountCurrent();
  renderPasswordChange(root, {
    onChanged: () => {
      session.account.must_change_password = false;
      announce(t('password.changed'));
      navigate(homePath(), { replaceState: true });
    },
    onLogout: logout,
    onLanguage: toggleLanguage,
  });
}

function toggleLanguage() {
  setLang(getLang() === 'en' ? 'zh' : 'en');
  document.title = t('app.name');
  unmountCurrent();
  root.replaceChildren();
  route();
  const switcher = document.querySelector('.lang-switch');
  if (switcher) switcher.focus();
}

async function logout() {
  try {
    await api.post('/api/auth/logout');
  } catch {
    // The session may already be gone; the client forgets it either way.
  }
  stopLive();
  endSession();
  unmountCurrent();
  root.replaceChildren();
  showLogin();
  announce(t('header.loggedOut'));
}

/** Avatar letters: the given name (last two characters) of a person, or the
 * first character of a built-in administrator's title. */
function avatarText(account) {
  return account.system_role ? account.display_name.slice(0, 1) : account.display_name.slice(-2);
}

function renderShell() {
  const account = session.account;
  const navItems = navigationFor().map((name) =>
    h(
      'li',
      {},
      h(
        'a',
        { href: `/${name}`, class: 'nav-link', 'data-link': true, dataset: { nav: name } },
        icon(name),
        h('span', {}, t(`nav.${name}`)),
      ),
    ),
  );
  const menu = h(
    'div',
    { class: 'menu', id: 'account-menu', role: 'menu', hidden: true },
    h('button', { type: 'button', role: 'menuitem', onclick: () => { closeMenu(); openPasswordDialog(); } }, t('header.changePassword')),
    h('button', { type: 'button', role: 'menuitem', onclick: logout }, t('header.logout')),
  );
  const menuButton = h(
    'button',
    {
      type: 'button',
      class: 'account-button',
      'aria-haspopup': 'menu',
      'aria-expanded': 'false',
      'aria-controls': 'account-menu',
      'aria-label': `${t('header.account')}: ${account.display_name}`,
      onclick: () => (menu.hidden ? openMenu() : closeMenu()),
    },
    h('span', { class: 'avatar', 'aria-hidden': 'true' }, avatarText(account)),
    h('span', { class: 'account-name' }, account.display_name),
  );
  function openMenu() {
    menu.hidden = false;
    menuButton.setAttribute('aria-expanded', 'true');
    menu.querySelector('button').focus();
  }
  function closeMenu() {
    menu.hidden = true;
    menuButton.setAttribute('aria-expanded', 'false');
  }
  menu.addEventListener('keydown', (event) => {
    const items = [...menu.querySelectorAll('button')];
    const index = items.indexOf(document.activeElement);
    if (event.key === 'Escape') {
      closeMenu();
      menuButton.focus();
    } else if (event.key === 'ArrowDown') {
      event.preventDefault();
      items[(index + 1) % items.length].focus();
    } else if (event.key === 'ArrowUp') {
      event.preventDefault();
      items[(index - 1 + items.length) % items.length].focus();
    }
  });
  document.addEventListener('click', (event) => {
    if (!menu.hidden && !menu.contains(event.target) && !menuButton.contains(event.target)) closeMenu();
  });
  // The count is filled in by todo.js once the shell is in the page.
  const todoCount = 0;
  replace(
    root,
    h('a', { href: '#main', class: 'skip-link', onclick: skipToContent }, t('nav.skip')),
    h(
      'header',
      { class: 'topbar' },
      h('a', { href: homePath(), class: 'brand', 'data-link': true }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '党'), h('span', { class: 'brand-name' }, t('app.name'))),
      h('div', { class: 'topbar-spacer' }),
      h('span', { class: 'live-state', id: 'live-state', role: 'status', hidden: true }, t('header.reconnecting')),
      h(
        'a',
        { href: '/approvals', class: 'todo', 'data-link': true, 'aria-label': t('header.todoLabel', { count: todoCount }) },
        h('span', {}, t('header.todo')),
        h('span', { class: 'badge', 'data-testid': 'todo-count' }, String(todoCount)),
      ),
      h('button', { type: 'button', class: 'lang-switch', 'aria-label': t('lang.switchLabel'), onclick: toggleLanguage }, t('lang.switch')),
      h('div', { class: 'account' }, menuButton, menu),
    ),
    h(
      'div',
      { class: 'layout' },
      h('nav', { class: 'sidenav', 'aria-label': t('nav.label') }, h('ul', {}, navItems)),
      h('main', { id: 'main', class: 'main', tabindex: '-1' }),
    ),
  );
}

/** Returns to login after the server ended the session (401 or hub close 1008). */
function sessionEnded() {
  if (!session.account) return;
  stopLive();
  endSession();
  sessionStorage.setItem('dangwu-return-to', location.pathname);
  unmountCurrent();
  root.replaceChildren();
  showLogin();
  announce(t('error.sessionExpired'), 'error');
}

let stopStatus = null;

/**
 * Opens the hub connection, starts the live counts for the shell and shows
 * a notice in the header while a dropped connection is being restored.
 */
function startLive() {
  hub.start({ onSessionEnded: sessionEnded });
  startCounts();
  if (stopStatus) stopStatus();
  let wasConnected = hub.connected;
  stopStatus = hub.onStatus((connected) => {
    const indicator = document.getElementById('live-state');
    if (indicator) indicator.hidden = connected || !wasConnected;
    wasConnected = wasConnected || connected;
  });
}

function stopLive() {
  if (stopStatus) stopStatus();
  stopStatus = null;
  stopCounts();
  hub.stop();
}

function skipToContent(event) {
  // Focus the content directly: a hash change would run the router again.
  event.preventDefault();
  document.getElementById('main').focus();
}

function interceptLinks(event) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest('a[data-link]');
  if (!link) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

async function boot() {
  applyDocumentLang();
  document.title = t('app.name');
  document.addEventListener('click', interceptLinks);
  window.addEventListener('popstate', route);
  setUnauthenticatedHandler(sessionEnded);
  try {
    const info = await api.get('/api/auth/me');
    await startSession(info);
  } catch {
    if (location.pathname !== '/login') sessionStorage.setItem('dangwu-return-to', location.pathname);
  }
  route();
}

boot();
