// Learning home: the caller's credit hours this year against the target,
// the ledger, and the course catalogue.
//
// Route: /learning.

import { api } from '../api.js';
import { errorState, h, replace } from '../dom.js';
import { formatDate, t } from '../i18n.js';

/** Renders the header shared by the learning pages. */
export function learningHeader(active) {
  const tab = (name, href) =>
    h('a', { href, class: 'tab', 'data-link': true, 'aria-current': active === name ? 'page' : null }, t(`learn.tab.${name}`));
  return h(
    'header',
    { class: 'page-header' },
    h('h1', {}, t('learn.title')),
    h('nav', { class: 'tabs', 'aria-label': t('learn.tabsLabel') }, tab('home', '/learning'), tab('reports', '/learning/reports')),
    h('div', { class: 'page-header-spacer' }),
  );
}

/** Formats credit hours with at most two decimals. */
export function formatHours(value) {
  return t('learn.hours', { hours: Math.round(value * 100) / 100 });
}

/** Renders a labelled bar of hours against a target. */
function meter(label, value, target, testId) {
  const percent = target > 0 ? Math.min(100, Math.round((value / target) * 100)) : 100;
  return h(
    'div',
    { class: 'learn-meter' },
    h('div', { class: 'learn-meter-label' }, h('span', {}, label), h('strong', { 'data-testid': testId }, `${formatHours(value)} / ${formatHours(target)}`)),
    h('progress', { max: 100, value: percent, 'aria-label': label }),
  );
}

export function mountLearning(outlet) {
  const hoursCard = h('section', { class: 'card', 'aria-label': t('learn.myHours') }, h('p', { class: 'muted card-body' }, t('common.loading')));
  const courses = h('section', { class: 'learn-courses', 'aria-label': t('learn.catalogue') });
  replace(outlet, h('section', { class: 'page' }, learningHeader('home'), hoursCard, h('h2', {}, t('learn.catalogue')), courses));
  let alive = true;

  async function load() {
    try {
      const [me, list] = await Promise.all([api.get('/api/learning/me').catch(() => null), api.get('/api/learning/courses')]);
      if (!alive) return;
      renderHours(me);
      renderCourses(list);
    } catch (error) {
      if (alive) replace(courses, errorState(error, load));
    }
  }

  function renderHours(me) {
    if (!me) {
      replace(hoursCard, h('p', { class: 'card-body muted' }, t('learn.noMember')));
      return;
    }
    const totals = me.totals;
    replace(
      hoursCard,
      h('header', { class: 'card-header' }, h('h2', { class: 'card-title' }, t('learn.myHoursYear', { year: totals.year }))),
      h(
        'div',
        { class: 'card-body' },
        h('p', {}, t('learn.total'), ' ', h('strong', { 'data-testid': 'learn-total' }, formatHours(totals.total_hours)), totals.met ? h('span', { class: 'tag' }, t('learn.met')) : null),
        meter(t('learn.required'), totals.required_hours, totals.required_target, 'learn-required'),
        meter(t('learn.elective'), totals.elective_hours, totals.elective_target, 'learn-elective'),
        me.entries.length === 0
          ? h('p', { class: 'muted' }, t('learn.noEntries'))
          : h(
              'table',
              { class: 'table' },
              h('thead', {}, h('tr', {}, h('th', {}, t('learn.date')), h('th', {}, t('learn.source')), h('th', {}, t('learn.course')), h('th', {}, t('learn.hoursColumn')))),
              h(
                'tbody',
                {},
                me.entries.map((entry) =>
                  h(
                    'tr',
                    {},
                    h('td', {}, formatDate(entry.created_at)),
                    h('td', {}, t(`learn.source.${entry.source}`)),
                    h('td', {}, entry.course_title || entry.note),
                    h('td', {}, formatHours(entry.hours)),
                  ),
                ),
              ),
            ),
      ),
    );
  }

  function renderCourses(list) {
    if (list.length === 0) {
      replace(courses, h('div', { class: 'empty-state' }, t('learn.noCourses')));
      return;
    }
    replace(
      courses,
      h(
        'ul',
        { class: 'learn-course-list' },
        list.map((course) =>
          h(
            'li',
            { class: 'card learn-course' },
            h(
              'div',
              { class: 'card-body' },
              h('h3', {}, h('a', { href: `/learning/courses/${course.id}`, 'data-link': true }, course.title)),
              h(
                'p',
                {},
                h('span', { class: 'tag' }, t(`learn.category.${course.category}`)),
                course.assigned ? h('span', { class: 'tag tag-urgent' }, t('learn.assigned')) : null,
                ' ',
                h('span', { class: 'muted' }, course.org_name),
              ),
              course.summary ? h('p', { class: 'muted' }, course.summary) : null,
              h(
                'p',
                { class: 'muted' },
                t('learn.courseFacts', { done: course.completed_lessons, lessons: course.lesson_count, hours: course.credit_hours }),
                course.deadline_at ? ` · ${t('learn.deadline', { date: formatDate(course.deadline_at) })}` : '',
              ),
            ),
          ),
        ),
      ),
    );
  }

  load();
  return {
    unmount() {
      alive = false;
    },
  };
}
