// Organizer reports: a subtree's members against their yearly targets,
// who is behind, the ranking of child organizations, CSV and XLSX export,
// offline training entry and, for administrators, the yearly targets.
//
// Route: /learning/reports.

import { api, query } from '../api.js';
import { announce, dialogForm, errorState, field, h, openDialog, replace } from '../dom.js';
import { t } from '../i18n.js';
import { hasSystemRole } from '../session.js';
import { formatHours, learningHeader } from './learning.js';

const ROLES = ['member', 'secretary', 'deputy_secretary', 'organization_member', 'propaganda_member', 'discipline_member', 'committee_member'];

export function mountLearningReports(outlet) {
  const orgSelect = h('select', { 'aria-label': t('learn.reportOrg'), onchange: () => load() });
  const yearInput = h('input', { type: 'number', min: 2000, max: 2100, value: new Date().getFullYear(), 'aria-label': t('learn.year'), onchange: () => load() });
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const controls = h('div', { class: 'learn-report-controls' }, orgSelect, yearInput, hasSystemRole('system_admin') ? h('button', { type: 'button', class: 'button', onclick: editTargets }, t('learn.targets')) : null);
  replace(outlet, h('section', { class: 'page page-wide' }, learningHeader('reports'), controls, body));
  let report = null;

  async function start() {
    try {
      const orgs = (await api.get('/api/orgs')).filter((org) => org.can_write || hasSystemRole('security_admin'));
      if (orgs.length === 0) {
        replace(body, h('div', { class: 'empty-state' }, t('learn.noReports')));
        return;
      }
      replace(orgSelect, orgs.map((org) => h('option', { value: org.id }, org.name)));
      load();
    } catch (error) {
      replace(body, errorState(error, start));
    }
  }

  async function load() {
    const params = query({ year: yearInput.value });
    try {
      report = await api.get(`/api/learning/reports/orgs/${orgSelect.value}${params}`);
      render();
    } catch (error) {
      replace(body, errorState(error, load));
    }
  }

  function render() {
    const exportLink = (format) =>
      h('a', { class: 'button', href: `/api/learning/reports/orgs/${report.org_id}/export${query({ year: report.year, format })}`, download: true }, t(`learn.export.${format}`));
    const row = (line) =>
      h(
        'tr',
        {},
        h('td', {}, line.name),
        h('td', {}, line.org_name),
        h('td', {}, `${formatHours(line.required_hours)} / ${formatHours(line.required_target)}`),
        h('td', {}, `${formatHours(line.elective_hours)} / ${formatHours(line.elective_target)}`),
        h('td', {}, formatHours(line.total_hours)),
        h('td', {}, line.met ? t('learn.met') : t('learn.behind')),
        h('td', {}, line.rejected_reports),
      );
    const table = (lines) =>
      h(
        'table',
        { class: 'table' },
        h('thead', {}, h('tr', {}, ['member', 'org', 'required', 'elective', 'total', 'state', 'rejected'].map((key) => h('th', {}, t(`learn.col.${key}`))))),
        h('tbody', {}, lines.map(row)),
      );
    replace(
      body,
      h(
        'dl',
        { class: 'progress-stats learn-stats' },
        h('div', {}, h('dt', {}, t('learn.members')), h('dd', {}, report.members)),
        h('div', {}, h('dt', {}, t('learn.completionRate')), h('dd', {}, `${Math.round(report.completion_rate * 1000) / 10}%`)),
        h('div', {}, h('dt', {}, t('learn.averageHours')), h('dd', {}, formatHours(report.average_hours))),
      ),
      h('div', { class: 'learn-tools' }, exportLink('csv'), exportLink('xlsx'), h('button', { type: 'button', class: 'button', onclick: enterOffline }, t('learn.enterOffline'))),
      report.ranking.length
        ? h(
            'section',
            { class: 'card' },
            h('header', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('learn.ranking'))),
            h('ol', { class: 'card-body' }, report.ranking.map((rank) => h('li', {}, t('learn.rankLine', { name: rank.name, hours: rank.average_hours, rate: Math.round(rank.completion_rate * 1000) / 10 })))),
          )
        : null,
      h('section', { class: 'card' }, h('header', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('learn.behindList'))), h('div', { class: 'card-body' }, report.behind.length ? table(report.behind) : h('p', { class: 'muted' }, t('learn.nobodyBehind')))),
      h('section', { class: 'card' }, h('header', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('learn.allMembers'))), h('div', { class: 'card-body' }, table(report.lines))),
    );
  }

  function enterOffline() {
    const members = h('select', { multiple: true, size: 8 }, report.lines.map((line) => h('option', { value: line.member_id }, `${line.name}（${line.org_name}）`)));
    const category = h('select', {}, h('option', { value: 'required' }, t('learn.category.required')), h('option', { value: 'elective' }, t('learn.category.elective')));
    const hours = h('input', { type: 'number', step: '0.25', min: 0.25, value: 8 });
    const note = h('input', { placeholder: t('learn.offlineNoteHint') });
    openDialog(t('learn.enterOffline'), (close) =>
      dialogForm(close, [field(t('learn.col.member'), members), field(t('learn.categoryField'), category), field(t('learn.creditHours'), hours), field(t('learn.offlineNote'), note)], t('common.save'), () =>
        api.post('/api/learning/credits', {
          member_ids: [...members.selectedOptions].map((option) => Number(option.value)),
          category: category.value,
          hours: Number(hours.value),
          note: note.value,
        }),
      ),
    ).then((done) => {
      if (done) {
        announce(t('learn.offlineEntered'));
        load();
      }
    });
  }

  async function editTargets() {
    const year = Number(yearInput.value);
    const current = await api.get(`/api/learning/targets/${year}`);
    const inputs = ROLES.map((role) => {
      const found = current.find((target) => target.role === role);
      return {
        role,
        required: h('input', { type: 'number', step: '0.5', min: 0, value: found ? found.required_hours : '', 'aria-label': `${t(`learn.role.${role}`)} ${t('learn.required')}` }),
        elective: h('input', { type: 'number', step: '0.5', min: 0, value: found ? found.elective_hours : '', 'aria-label': `${t(`learn.role.${role}`)} ${t('learn.elective')}` }),
      };
    });
    const grid = h(
      'table',
      { class: 'table' },
      h('thead', {}, h('tr', {}, h('th', {}, t('learn.role')), h('th', {}, t('learn.required')), h('th', {}, t('learn.elective')))),
      h('tbody', {}, inputs.map((input) => h('tr', {}, h('td', {}, t(`learn.role.${input.role}`)), h('td', {}, input.required), h('td', {}, input.elective)))),
    );
    openDialog(t('learn.targetsYear', { year }), (close) =>
      dialogForm(close, [h('p', { class: 'hint' }, t('learn.targetsHint')), grid], t('common.save'), () =>
        api.put(
          `/api/learning/targets/${year}`,
          inputs
            .filter((input) => input.required.value !== '' || input.elective.value !== '')
            .map((input) => ({ role: input.role, required_hours: Number(input.required.value || 0), elective_hours: Number(input.elective.value || 0) })),
        ),
      ),
    ).then((done) => done && load());
  }

  start();
  return {};
}
