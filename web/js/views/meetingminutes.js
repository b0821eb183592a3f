// The minutes panel of a meeting: the saved minutes, the recorder's editor
// and the host's approval. The meeting page and the meeting room both show
// it. Text typed and not yet saved survives redraws of the panel.

import { api } from '../api.js';
import { announce, h } from '../dom.js';
import { formatDateMinutes, t } from '../i18n.js';
import { meetingCard } from './meetings.js';
import { createRichText } from './richtext.js';

/**
 * Creates the panel. `path(suffix)` names the meeting's API routes,
 * `act(run, done)` runs an action and reloads, and `reload()` reloads.
 * `render(view)` builds it for one snapshot of GET /api/meetings/ID, or
 * returns null when there is nothing to show.
 */
export function createMinutesPanel({ path, act, reload }) {
  /** Minutes typed and not yet saved, kept across redraws. */
  let minutesDraft = null;
  /** The version the recorder's draft is based on. */
  let draftVersion = 0;
  let minutesEditor = null;

  async function saveMinutes() {
    const body = minutesEditor.html();
    try {
      await api.put(path('/minutes'), { body_html: body, expected_version: draftVersion });
    } catch (error) {
      // A conflict keeps the typed text so the recorder can merge it.
      announce(error.message, 'error');
      return;
    }
    minutesDraft = null;
    announce(t('meet.minutesSaved'));
    await reload();
  }

  function minutesCard(view) {
    const minutes = view.minutes;
    const parts = [];
    if (minutes) {
      const minutesBody = h('div', { class: 'minutes-body', 'data-testid': 'minutes' });
      // The server sanitizes the minutes when they are saved.
      minutesBody.innerHTML = minutes.body_html;
      parts.push(
        minutesBody,
        h('p', { class: 'hint' }, t('meet.minutesVersion', { version: minutes.version, name: minutes.saved_by_name, at: formatDateMinutes(minutes.saved_at) })),
        minutes.approved_at ? h('p', { class: 'status-tag' }, t('meet.minutesApprovedBy', { name: minutes.approved_by_name })) : null,
      );
    }
    if (view.can.write_minutes) {
      if (minutesDraft === null) draftVersion = minutes ? minutes.version : 0;
      minutesEditor = createRichText({ name: 'minutes', label: t('meet.minutesEdit'), initialHtml: minutesDraft ?? (minutes ? minutes.body_html : '') });
      minutesEditor.element.addEventListener('input', () => {
        minutesDraft = minutesEditor.html();
      });
      if (minutes && minutesDraft !== null && minutes.version !== draftVersion) {
        parts.push(h('p', { class: 'form-error', role: 'alert' }, t('meet.minutesChanged', { version: minutes.version })));
      }
      parts.push(minutesEditor.element, h('button', { type: 'button', class: 'button button-primary', onclick: saveMinutes }, t('meet.saveMinutes')));
    }
    if (view.can.approve_minutes && minutes) {
      parts.push(
        h(
          'button',
          { type: 'button', class: 'button', onclick: () => act(() => api.post(path('/minutes/approve'), { version: minutes.version }), t('meet.minutesApproved')) },
          t('meet.approveMinutes'),
        ),
      );
    }
    if (parts.length === 0) return null;
    return meetingCard(t('meet.minutes'), parts);
  }

  return { render: minutesCard };
}
