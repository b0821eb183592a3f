// Login, the forced password change after login, and the password dialog.

import { api } from '../api.js';
import { announce, clearFormErrors, dialogForm, field, h, openDialog, replace, showFormError } from '../dom.js';
import { t } from '../i18n.js';
import { startSession } from '../session.js';

function languageButton(onLanguage) {
  return h('button', { type: 'button', class: 'lang-switch', 'aria-label': t('lang.switchLabel'), onclick: onLanguage }, t('lang.switch'));
}

function authFrame(title, onLanguage, ...content) {
  return h(
    'div',
    { class: 'auth-page' },
    h('div', { class: 'auth-lang' }, languageButton(onLanguage)),
    h(
      'main',
      { class: 'auth-card', id: 'main', tabindex: '-1' },
      h('div', { class: 'auth-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '党'), h('span', {}, t('app.name'))),
      h('p', { class: 'auth-tagline' }, t('app.tagline')),
      h('h1', {}, title),
      content,
    ),
  );
}

/** Renders the login page; `onLoggedIn(info)` receives the login response. */
export function renderLogin(root, { onLoggedIn, onLanguage }) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'button button-primary button-block' }, t('login.submit'));
  const form = h(
    'form',
    { class: 'auth-form', novalidate: true },
    field(t('login.username'), username),
    field(t('login.password'), password),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    submit,
    h('p', { class: 'hint' }, t('login.hint')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    for (const input of [username, password]) {
      if (!input.value.trim()) {
        showFormError(form, { field: input.name, message: t('common.required') });
        return;
      }
    }
    submit.disabled = true;
    submit.textContent = t('login.submitting');
    try {
      const info = await api.post('/api/auth/login', { username: username.value.trim(), password: password.value });
      await onLoggedIn(info);
    } catch (error) {
      // Login errors name no field; show them above the button and keep
      // the username so that only the password needs retyping.
      showFormError(form, { ...error, message: error.message, field: null });
      password.value = '';
      password.focus();
      submit.disabled = false;
      submit.textContent = t('login.submit');
    }
  });
  replace(root, authFrame(t('login.title'), onLanguage, form));
  username.focus();
}

function passwordFields() {
  return [
    field(t('password.old'), h('input', { name: 'old_password', type: 'password', autocomplete: 'current-password', required: true })),
    field(t('password.new'), h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true }), t('password.policy')),
    field(t('password.confirm'), h('input', { name: 'confirm_password', type: 'password', autocomplete: 'new-password', required: true })),
  ];
}

async function submitPasswordChange(form) {
  const values = Object.fromEntries(new FormData(form));
  for (const name of ['old_password', 'new_password', 'confirm_password']) {
    if (!values[name]) throw { field: name, message: t('common.required') };
  }
  if (values.new_password !== values.confirm_password) {
    throw { field: 'confirm_password', message: t('password.mismatch') };
  }
  await api.post('/api/auth/password', { old_password: values.old_password, new_password: values.new_password });
}

/** Renders the page that must be passed before anything else after login. */
export function renderPasswordChange(root, { onChanged, onLogout, onLanguage }) {
  const submit = h('button', { type: 'submit', class: 'button button-primary button-block' }, t('password.submit'));
  const form = h(
    'form',
    { class: 'auth-form', novalidate: true },
    h('p', { class: 'hint' }, t('password.forcedHint')),
    passwordFields(),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    submit,
    h('button', { type: 'button', class: 'button button-link button-block', onclick: onLogout }, t('header.logout')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      await submitPasswordChange(form);
      // The account's flag is cleared on the server; reload it to be sure.
      const info = await api.get('/api/auth/me');
      await startSession(info);
      onChanged();
    } catch (error) {
      showFormError(form, error);
    } finally {
      submit.disabled = false;
    }
  });
  replace(root, authFrame(t('password.forcedTitle'), onLanguage, form));
  form.querySelector('input').focus();
}

/** Opens the voluntary password change dialog from the account menu. */
export async function openPasswordDialog() {
  const done = await openDialog(t('password.title'), (close) =>
    dialogForm(close, passwordFields(), t('password.submit'), async (form) => {
      await submitPasswordChange(form);
      return true;
    }),
  );
  if (done) announce(t('password.changed'));
}
