// Temporary branches (临时党支部) on the transfers tab: the list of those
// under the organizations the caller manages, each with a dissolve button,
// and the form that forms one from three or more mobile members registered
// with the chosen organization.

import { api } from '../api.js';
import { announce, clearFormErrors, field, h, showFormError } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { chosenOrg, localizeDates } from './membership.js';

/** Minimum number of mobile members that form a temporary branch (the server checks it too). */
const MIN_MEMBERS = 3;

function branchLine(branch, redraw) {
  const dissolve = h('button', { type: 'button', class: 'button button-small' }, t('mem.dissolve'));
  dissolve.addEventListener('click', async () => {
    try {
      await api.post(`/api/membership/temporary-branches/${branch.org_id}/dissolve`);
      announce(t('mem.temporaryDissolved', { name: branch.name }));
      redraw();
    } catch (error) {
      announce(localizeDates(error.message), 'error');
    }
  });
  return h(
    'li',
    {},
    t('mem.temporaryLine', { name: branch.name, leader: branch.leader_name, count: branch.members.length, date: formatDate(branch.ends_on) }),
    ' ',
    h('span', { class: 'status-tag' }, t(`mem.temporaryStatus.${branch.status}`)),
    branch.status === 'active' ? [' ', dissolve] : null,
  );
}

function formBranch(free, redraw) {
  const boxes = free.map((item) =>
    h('label', { class: 'checkbox' }, h('input', { type: 'checkbox', name: 'member_ids', value: String(item.member_id) }), `${item.member_name}（${item.home_org_name}）`),
  );
  const leader = h('select', { name: 'leader_member_id' }, free.map((item) => h('option', { value: String(item.member_id) }, item.member_name)));
  const form = h(
    'form',
    { class: 'card-body form-grid', 'aria-label': t('mem.formTemporary') },
    field(t('mem.temporaryName'), h('input', { name: 'name', type: 'text', required: true, maxlength: '100' })),
    h('fieldset', {}, h('legend', {}, t('mem.temporaryMembers')), boxes),
    field(t('mem.temporaryLeader'), leader),
    field(t('mem.temporaryEndsOn'), h('input', { name: 'ends_on', type: 'date', required: true })),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('button', { type: 'submit', class: 'button button-primary' }, t('mem.formTemporary')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const data = new FormData(form);
    const body = {
      host_org_id: chosenOrg(),
      name: data.get('name'),
      member_ids: data.getAll('member_ids').map(Number),
      leader_member_id: Number(data.get('leader_member_id')),
      ends_on: data.get('ends_on'),
    };
    try {
      await api.post('/api/membership/temporary-branches', body);
      announce(t('mem.temporaryFormed', { name: body.name }));
      redraw();
    } catch (error) {
      error.message = localizeDates(error.message);
      showFormError(form, error);
    }
  });
  return form;
}

/**
 * Renders the temporary branches and, when enough mobile members without a
 * branch are registered with the chosen organization, the form to add one.
 */
export function temporarySection(branches, registrations, redraw) {
  const free = registrations.filter((item) => item.host_org_id === chosenOrg() && item.temporary_branch_id === null);
  return h(
    'section',
    { class: 'card', 'aria-label': t('mem.temporary') },
    h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('mem.temporary'))),
    h(
      'ul',
      { class: 'card-body', 'data-testid': 'temporary-branches' },
      branches.length ? branches.map((branch) => branchLine(branch, redraw)) : h('li', { class: 'muted' }, t('common.empty')),
    ),
    free.length >= MIN_MEMBERS ? formBranch(free, redraw) : h('p', { class: 'card-body hint' }, t('mem.temporaryNeedsThree')),
  );
}
