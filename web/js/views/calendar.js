// The working-day calendar behind step deadlines: one year's public
// holidays and make-up working days (调休). Everyone can read it, and the
// system administrator edits it and saves the whole year at once.
//
// Route: /approvals/calendar.

import { api } from '../api.js';
import { announce, errorState, field, h, replace } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { hasSystemRole } from '../session.js';
import { approvalsHeader } from './approvalparts.js';

/** Years offered around the current one. */
const YEARS_BEFORE = 1;
const YEARS_AFTER = 1;

export function mountCalendar(outlet) {
  let closed = false;
  let loadTicket = 0;
  const editable = hasSystemRole('system_admin');
  const thisYear = new Date().getFullYear();
  const years = [];
  for (let year = thisYear - YEARS_BEFORE; year <= thisYear + YEARS_AFTER; year += 1) years.push(year);
  const yearSelect = h('select', { name: 'year' }, years.map((year) => h('option', { value: String(year), selected: year === thisYear }, String(year))));
  const body = h('div', { class: 'card-body' }, h('p', { class: 'muted' }, t('common.loading')));
  /** The rows being edited: `{ day, kind, name }`. */
  let rows = [];

  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      approvalsHeader('calendar'),
      h('p', { class: 'hint' }, t('calendar.hint')),
      h('div', { class: 'toolbar' }, field(t('calendar.year'), yearSelect)),
      h('section', { class: 'card', 'aria-label': t('calendar.label') }, body),
    ),
  );

  function weekday(day) {
    const [year, month, date] = day.split('-').map(Number);
    return t(`calendar.weekday.${new Date(Date.UTC(year, month - 1, date)).getUTCDay()}`);
  }

  function readOnlyRow(row) {
    return h(
      'tr',
      {},
      h('td', {}, `${formatDate(row.day)} ${weekday(row.day)}`),
      h('td', {}, h('span', { class: `status-tag calendar-${row.kind}` }, t(`calendar.kind.${row.kind}`))),
      h('td', {}, row.name),
    );
  }

  function editRow(row, index) {
    const date = h('input', { type: 'date', value: row.day, 'aria-label': t('calendar.dayOf', { n: index + 1 }) });
    date.addEventListener('change', () => { row.day = date.value; });
    const kind = h(
      'select',
      { 'aria-label': t('calendar.kindOf', { n: index + 1 }) },
      ['holiday', 'workday'].map((value) => h('option', { value, selected: row.kind === value }, t(`calendar.kind.${value}`))),
    );
    kind.addEventListener('change', () => { row.kind = kind.value; });
    const name = h('input', { type: 'text', value: row.name, maxlength: '50', 'aria-label': t('calendar.nameOf', { n: index + 1 }) });
    name.addEventListener('input', () => { row.name = name.value; });
    const remove = h('button', {
      type: 'button',
      class: 'button button-small',
      'aria-label': t('calendar.removeOf', { n: index + 1 }),
      onclick: () => {
        rows.splice(index, 1);
        draw();
      },
    }, t('calendar.remove'));
    return h('tr', {}, h('td', {}, date), h('td', {}, kind), h('td', {}, name), h('td', {}, remove));
  }

  function draw(problem = null) {
    const head = h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, t('calendar.day')),
        h('th', { scope: 'col' }, t('calendar.kindColumn')),
        h('th', { scope: 'col' }, t('calendar.name')),
        editable ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, t('calendar.actions'))) : null,
      ),
    );
    const table = rows.length === 0 && !editable
      ? h('p', { class: 'empty-state' }, t('calendar.empty'))
      : h(
        'div',
        { class: 'table-wrap' },
        h('table', { class: 'table', 'data-testid': 'calendar' }, head, h('tbody', {}, rows.map(editable ? editRow : readOnlyRow))),
      );
    const actions = editable
      ? h(
        'div',
        { class: 'action-row' },
        h('button', {
          type: 'button',
          class: 'button',
          onclick: () => {
            rows.push({ day: `${yearSelect.value}-01-01`, kind: 'holiday', name: '' });
            draw();
          },
        }, `+ ${t('calendar.add')}`),
        h('button', { type: 'button', class: 'button button-primary', onclick: save }, t('calendar.save')),
      )
      : null;
    replace(body, problem ? h('p', { class: 'field-error', role: 'alert' }, problem) : null, table, actions);
  }

  async function save() {
    const year = yearSelect.value;
    try {
      const saved = await api.put(`/api/calendar/${year}`, { days: rows.map((row) => ({ day: row.day, kind: row.kind, name: row.name.trim() })) });
      if (closed || yearSelect.value !== year) return;
      rows = saved.days;
      draw();
      announce(t('calendar.saved', { year }));
    } catch (error) {
      if (closed) return;
      // The server names the rejected row as `days[N].day` or `days[N].name`.
      const position = /^days\[(\d+)\]/.exec(error.field || '');
      draw(position ? t('calendar.rowProblem', { n: Number(position[1]) + 1, message: error.message }) : error.message);
    }
  }

  async function load() {
    loadTicket += 1;
    const ticket = loadTicket;
    let year;
    try {
      year = await api.get(`/api/calendar/${yearSelect.value}`);
    } catch (error) {
      if (!closed && ticket === loadTicket) replace(body, errorState(error, load));
      return;
    }
    if (closed || ticket !== loadTicket) return;
    rows = year.days;
    draw();
  }

  yearSelect.addEventListener('change', load);
  load();

  return {
    unmount() {
      closed = true;
    },
  };
}
