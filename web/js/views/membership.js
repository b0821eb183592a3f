// Membership work for officers: the development pipeline board of one
// organization with its bulk import, one person's timeline with the step
// form, and the tabs for transfers, dues and statistics (membershipwork.js).
// The server checks every time rule; a rejected step shows its message,
// whose dates name the day the step becomes possible. A member who is no
// officer sees only their own record (membershipmine.js).
//
// Routes: /membership, /membership/people/ID, /membership/transfers,
// /membership/dues, /membership/stats, /membership/mine.

import { api } from '../api.js';
import { announce, errorState, field, h, replace, showFormError, clearFormErrors } from '../dom.js';
import { hub } from '../hub.js';
import { formatDate, t } from '../i18n.js';
import { session } from '../session.js';
import { peopleImportCard } from './membershipimport.js';
import { renderMine } from './membershipmine.js';
import { renderDues, renderStats, renderTransfers } from './membershipwork.js';

const STEPS = [
  'talk', 'activist', 'contacts', 'assessment', 'thought_report', 'candidate', 'political_review',
  'training', 'branch_meeting', 'reported', 'approval', 'oath', 'confirmation',
];

/** The organization chosen on any tab, kept while the tabs change. */
const chosen = { orgId: null };

/** Replaces ISO dates in a server message with the interface's date format. */
export function localizeDates(message) {
  return message.replace(/\d{4}-\d{2}-\d{2}/g, (day) => formatDate(day));
}

/** Loads the organizations the caller manages and keeps the chosen one valid. */
export async function managedOrgs() {
  const orgs = (await api.get('/api/orgs')).filter((org) => org.can_write);
  if (!orgs.some((org) => org.id === chosen.orgId)) chosen.orgId = orgs.length ? orgs[orgs.length - 1].id : null;
  return orgs;
}

/** Renders the organization picker; `onChange` redraws the tab. */
export function orgPicker(orgs, onChange) {
  const select = h(
    'select',
    { name: 'org' },
    orgs.map((org) => h('option', { value: String(org.id), selected: org.id === chosen.orgId }, org.name)),
  );
  select.addEventListener('change', () => {
    chosen.orgId = Number(select.value);
    onChange();
  });
  return h('div', { class: 'toolbar' }, field(t('mem.org'), select));
}

export function chosenOrg() {
  return chosen.orgId;
}

/**
 * Checks whether the caller works on other people's records here: the
 * system administrator and officers. Everyone else gets only their own
 * record; the server rejects them on every officer route anyway.
 */
export function isMembershipOfficer() {
  if (session.account && session.account.system_role === 'system_admin') return true;
  return Boolean(session.member && session.member.roles.length);
}

/** Renders the page header with the tabs the caller can use. */
export function membershipHeader(active) {
  const tab = (name, href) =>
    h('a', { href, class: 'tab', 'data-link': true, 'aria-current': active === name ? 'page' : null }, t(`mem.tab.${name}`));
  const ownRecord = session.account && session.account.member_id ? tab('mine', '/membership/mine') : null;
  const tabs = isMembershipOfficer()
    ? [tab('board', '/membership'), tab('transfers', '/membership/transfers'), tab('dues', '/membership/dues'), tab('stats', '/membership/stats'), ownRecord]
    : [ownRecord];
  return h(
    'header',
    { class: 'page-header' },
    h('h1', {}, t('mem.title')),
    h('nav', { class: 'tabs', 'aria-label': t('mem.tabsLabel') }, tabs),
  );
}

export function mountMembership(outlet, context) {
  /** Stops following the board's organization when the page changes. */
  const live = { stop: null };
  function show(next) {
    if (live.stop) live.stop();
    live.stop = null;
    const [people, id, tab] = next.params;
    if (!isMembershipOfficer() || tab === 'mine') renderMine(outlet);
    else if (people) renderPerson(outlet, Number(id));
    else if (tab === 'transfers') renderTransfers(outlet);
    else if (tab === 'dues') renderDues(outlet);
    else if (tab === 'stats') renderStats(outlet);
    else renderBoard(outlet, live);
  }
  show(context);
  return {
    update: show,
    unmount: () => {
      if (live.stop) live.stop();
    },
  };
}

/**
 * Draws the pipeline board of the chosen organization. It follows the
 * organization's hub topic, so steps and imports recorded elsewhere appear
 * without a reload; `live.stop` ends that.
 */
async function renderBoard(outlet, live) {
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, h('section', { class: 'page membership-page' }, membershipHeader('board'), body));
  let orgs;
  try {
    orgs = await managedOrgs();
  } catch (error) {
    replace(body, errorState(error, () => renderBoard(outlet)));
    return;
  }
  if (!orgs.length) {
    replace(body, h('p', { class: 'empty-state' }, t('mem.noOrgs')));
    return;
  }
  const columns = h('div', { class: 'pipeline-board', 'data-testid': 'pipeline-board' });
  const addButton = h('button', { type: 'button', class: 'button button-primary' }, `+ ${t('mem.addApplicant')}`);
  const importButton = h('button', { type: 'button', class: 'button' }, t('mem.import'));
  const formSlot = h('div');
  addButton.addEventListener('click', () => replace(formSlot, applicantForm(() => draw())));
  importButton.addEventListener('click', () => replace(formSlot, peopleImportCard(chosenOrg(), () => refresh())));
  replace(body, orgPicker(orgs, () => draw()), h('div', { class: 'toolbar' }, addButton, importButton), formSlot, columns);

  /** Redraws the columns only, leaving an open form or import report in place. */
  async function refresh() {
    try {
      const board = await api.get(`/api/membership/orgs/${chosenOrg()}/board`);
      replace(columns, board.columns.map(boardColumn));
    } catch (error) {
      replace(columns, errorState(error, refresh));
    }
  }

  function draw() {
    replace(formSlot);
    if (live.stop) live.stop();
    const onEvent = (event) => {
      if (event.kind === 'membership.step' || event.kind === 'membership.import') refresh();
    };
    live.stop = hub.subscribe(`org:${chosenOrg()}`, { onEvent, onReset: refresh });
    refresh();
  }
  draw();
}

function boardColumn(column) {
  return h(
    'section',
    { class: 'card pipeline-column', 'aria-label': t(`mem.stage.${column.stage}`) },
    h('div', { class: 'card-header' }, h('h2', { class: 'card-title' }, `${t(`mem.stage.${column.stage}`)} (${column.people.length})`)),
    h(
      'ul',
      { class: 'card-body pipeline-people' },
      column.people.map((person) =>
        h(
          'li',
          {},
          h('a', { href: `/membership/people/${person.id}`, 'data-link': true }, person.name),
          person.due.slice(0, 1).map((due) => h('p', { class: 'hint' }, t('mem.dueOn', { step: t(`mem.step.${due.step}`), date: formatDate(due.due_on) }))),
        ),
      ),
    ),
  );
}

function applicantForm(onDone) {
  const input = (name, type = 'text') => h('input', { name, type, required: true });
  const gender = h('select', { name: 'gender' }, ['female', 'male'].map((value) => h('option', { value }, t(`mem.gender.${value}`))));
  const form = h(
    'form',
    { class: 'card card-body form-grid', 'aria-label': t('mem.addApplicant') },
    field(t('mem.name'), input('name')),
    field(t('mem.genderLabel'), gender),
    field(t('mem.ethnicity'), input('ethnicity')),
    field(t('mem.birthDate'), input('birth_date', 'date')),
    field(t('mem.education'), input('education')),
    field(t('mem.phone'), input('phone')),
    field(t('mem.idNumber'), input('id_number')),
    field(t('mem.appliedOn'), input('applied_on', 'date')),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('button', { type: 'submit', class: 'button button-primary' }, t('common.save')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const body = Object.fromEntries(new FormData(form).entries());
    body.org_id = chosenOrg();
    try {
      await api.post('/api/membership/people', body);
      announce(t('mem.applicantAdded', { name: body.name }));
      onDone();
    } catch (error) {
      error.message = localizeDates(error.message);
      showFormError(form, error);
    }
  });
  return form;
}

async function renderPerson(outlet, id) {
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, h('section', { class: 'page membership-page' }, membershipHeader('board'), body));
  let person;
  try {
    person = await api.get(`/api/membership/people/${id}`);
  } catch (error) {
    replace(body, errorState(error, () => renderPerson(outlet, id)));
    return;
  }
  const timeline = h(
    'ol',
    { class: 'timeline', 'data-testid': 'timeline' },
    person.steps.map((record) =>
      h(
        'li',
        {},
        h('strong', {}, t(`mem.step.${record.step}`)),
        ` ${formatDate(record.taken_on)}`,
        record.late_since ? h('span', { class: 'status-tag' }, t('mem.lateSince', { date: formatDate(record.late_since) })) : null,
        record.exception_reason ? h('p', { class: 'hint' }, t('mem.reason', { reason: record.exception_reason })) : null,
        record.detail && record.detail.note ? h('p', { class: 'hint' }, record.detail.note) : null,
      ),
    ),
  );
  const due = h(
    'ul',
    { class: 'card-body' },
    person.due.length
      ? person.due.map((item) => h('li', {}, t('mem.dueOn', { step: t(`mem.step.${item.step}`), date: formatDate(item.due_on) })))
      : h('li', { class: 'muted' }, t('common.none')),
  );
  replace(
    body,
    h('h2', {}, person.name, ' ', h('span', { class: 'status-tag', 'data-testid': 'stage' }, t(`mem.stage.${person.stage}`))),
    h('p', { class: 'muted' }, `${person.org_name} · ${formatDate(person.birth_date)} · ${person.education}`),
    h('section', { class: 'card', 'aria-label': t('mem.due') }, h('div', { class: 'card-header' }, h('h3', { class: 'card-title' }, t('mem.due'))), due),
    h('section', { class: 'card', 'aria-label': t('mem.timeline') }, h('div', { class: 'card-header' }, h('h3', { class: 'card-title' }, t('mem.timeline'))), h('div', { class: 'card-body' }, timeline)),
    stepForm(person, () => renderPerson(outlet, id)),
  );
}

function stepForm(person, onDone) {
  const step = h('select', { name: 'step' }, STEPS.map((value) => h('option', { value }, t(`mem.step.${value}`))));
  const number = (name) => h('input', { name, type: 'number', min: '0', value: '' });
  const form = h(
    'form',
    { class: 'card card-body form-grid', 'aria-label': t('mem.recordStep') },
    h('h3', { class: 'card-title' }, t('mem.recordStep')),
    field(t('mem.stepLabel'), step),
    field(t('mem.takenOn'), h('input', { name: 'taken_on', type: 'date', required: true })),
    field(t('mem.note'), h('input', { name: 'note', type: 'text', maxlength: '500' })),
    field(t('mem.contactIds'), h('input', { name: 'contact_ids', type: 'text' }), t('mem.contactIdsHint')),
    field(t('mem.trainingDays'), number('training_days')),
    field(t('mem.trainingHours'), number('training_hours')),
    field(t('mem.voteId'), number('vote_id')),
    field(t('mem.reasonLabel'), h('input', { name: 'reason', type: 'text', maxlength: '500' }), t('mem.reasonHint')),
    h('p', { class: 'form-error', role: 'alert', hidden: true, 'data-testid': 'step-error' }),
    h('button', { type: 'submit', class: 'button button-primary' }, t('mem.record')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const data = Object.fromEntries(new FormData(form).entries());
    const body = { step: data.step, taken_on: data.taken_on, note: data.note };
    const ids = data.contact_ids.split(/[,，\s]+/).filter(Boolean).map(Number);
    if (ids.length) body.contact_ids = ids;
    for (const name of ['training_days', 'training_hours', 'vote_id']) {
      if (data[name] !== '') body[name] = Number(data[name]);
    }
    if (data.reason.trim()) body.reason = data.reason;
    try {
      await api.post(`/api/membership/people/${person.id}/steps`, body);
      announce(t('mem.stepRecorded', { step: t(`mem.step.${body.step}`) }));
      onDone();
    } catch (error) {
      // Rule errors name the date field; show them in the form's box too,
      // so the date the step opens stays visible.
      error.message = localizeDates(error.message);
      showFormError(form, { ...error, message: error.message, field: null });
    }
  });
  return form;
}
