// A member's record in the side pane, with the identity number reveal.

import { api } from '../api.js';
import { announce, errorState, h, replace } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { canRevealId } from '../session.js';

function row(label, value) {
  return h('div', { class: 'dl-row' }, h('dt', {}, label), h('dd', {}, value === null || value === '' ? '—' : value));
}

function identityRow(member) {
  const value = h('span', { class: 'id-number', 'data-testid': 'id-number' }, member.id_number_masked);
  if (!canRevealId(member.org_id)) return row(t('member.idNumber'), value);
  let revealed = null;
  const button = h('button', { type: 'button', class: 'button button-small' }, t('member.reveal'));
  button.addEventListener('click', async () => {
    if (revealed !== null) {
      revealed = null;
      value.textContent = member.id_number_masked;
      button.textContent = t('member.reveal');
      return;
    }
    button.disabled = true;
    button.textContent = t('member.revealing');
    try {
      const answer = await api.post(`/api/members/${member.id}/reveal-id`);
      revealed = answer.id_number;
      value.textContent = revealed;
      button.textContent = t('member.hide');
      announce(t('member.revealed'));
    } catch (error) {
      button.textContent = t('member.reveal');
      announce(error.message, 'error');
    } finally {
      button.disabled = false;
    }
  });
  return row(t('member.idNumber'), h('span', { class: 'id-reveal' }, value, button));
}

/** Loads and draws a member into the pane; `onClose` leaves the pane. */
export function renderMemberPane(pane, { memberId, onClose }) {
  const titleId = `member-title-${memberId}`;
  pane.setAttribute('aria-labelledby', titleId);
  const closeButton = h('button', { type: 'button', class: 'icon-button', 'aria-label': t('common.close'), onclick: onClose }, '×');
  const body = h('div', { class: 'pane-body' }, h('p', { class: 'muted' }, t('common.loading')));
  const heading = h('h2', { id: titleId, tabindex: '-1' }, t('member.title'));
  replace(pane, h('header', { class: 'pane-header' }, heading, closeButton), body);
  pane.onkeydown = (event) => {
    if (event.key === 'Escape') onClose();
  };

  async function load() {
    let member;
    try {
      member = await api.get(`/api/members/${memberId}`);
    } catch (error) {
      replace(body, errorState(error, load));
      return;
    }
    heading.textContent = member.name;
    replace(
      body,
      h(
        'div',
        { class: 'member-summary' },
        h('span', { class: 'avatar avatar-large', 'aria-hidden': 'true' }, member.name.slice(-2)),
        h(
          'div',
          {},
          h('p', { class: 'member-org' }, member.org_name),
          h('span', { class: `status-tag status-${member.status}` }, t(`status.${member.status}`)),
        ),
      ),
      h(
        'dl',
        { class: 'dl', 'data-testid': 'member-detail' },
        row(t('members.gender'), t(`gender.${member.gender}`)),
        row(t('member.ethnicity'), member.ethnicity),
        row(t('member.birthDate'), formatDate(member.birth_date)),
        row(t('member.education'), member.education),
        row(t('members.joinedOn'), formatDate(member.joined_on)),
        row(t('members.phone'), member.phone),
        identityRow(member),
      ),
      h('h3', {}, t('member.roles')),
      member.roles.length === 0
        ? h('p', { class: 'muted' }, t('member.noRoles'))
        : h(
          'ul',
          { class: 'role-list' },
          member.roles.map((role) =>
            h('li', {}, t('member.roleAt', { org: role.org_name, role: t(`role.${role.role}`) })),
          ),
        ),
    );
  }

  load().then(() => heading.focus());
}
