// The "coming soon" page for features that have no API yet.

import { h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';

export function mountComingSoon(outlet, context) {
  const feature = t(`nav.${context.nav}`);
  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      h('header', { class: 'page-header' }, h('h1', {}, feature)),
      h(
        'div',
        { class: 'empty-state soon' },
        h('div', { class: 'soon-icon' }, icon(context.nav)),
        h('h2', {}, t('soon.title', { feature })),
        h('p', {}, t(`soon.${context.nav}`)),
        h('p', { class: 'hint' }, t('soon.body')),
      ),
    ),
  );
  return {};
}
