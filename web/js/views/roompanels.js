// Side panels of the meeting room: the participant list with raised hands
// and the host's controls, the lobby, and the chat. Each builder returns a
// fresh element for the current live state; the room redraws a panel when
// its state changes.

import { h } from '../dom.js';
import { t } from '../i18n.js';
import { clock } from './meetings.js';

/**
 * Orders participants as the speaking queue: raised hands first, earliest
 * first, then the rest by name.
 */
export function speakingOrder(entries) {
  return [...entries].sort((a, b) => {
    const handA = a.hand_raised_at ?? Infinity;
    const handB = b.hand_raised_at ?? Infinity;
    if (handA !== handB) return handA - handB;
    return a.name.localeCompare(b.name, 'zh-CN');
  });
}

/** Lists the state marks of a participant for the list and the tiles. */
export function participantMarks(entry) {
  const marks = [];
  if (entry.standing === 'host' || entry.standing === 'recorder') marks.push(t(`room.standing.${entry.standing}`));
  if (entry.muted_by_host) marks.push(t('room.mutedByHost'));
  else if (!entry.microphone) marks.push(t('room.micOff'));
  if (!entry.camera) marks.push(t('room.cameraOff'));
  if (entry.screen) marks.push(t('room.sharing'));
  if (entry.hand_raised_at !== null && entry.hand_raised_at !== undefined) marks.push(t('room.handRaised'));
  if (entry.speaking) marks.push(t('room.speaking'));
  if (!entry.connected) marks.push(t('room.connecting'));
  return marks;
}

function hostButtons(entry, host) {
  const buttons = [];
  if (entry.hand_raised_at !== null && entry.hand_raised_at !== undefined) {
    buttons.push(h('button', { type: 'button', class: 'button button-small', onclick: () => host.lowerHand(entry) }, t('room.lowerHandOf', { name: entry.name })));
  }
  if (entry.standing === 'host') return buttons;
  buttons.push(
    entry.muted_by_host
      ? h('button', { type: 'button', class: 'button button-small', onclick: () => host.mute(entry, false) }, t('room.unmuteName', { name: entry.name }))
      : h('button', { type: 'button', class: 'button button-small', onclick: () => host.mute(entry, true) }, t('room.muteName', { name: entry.name })),
    h('button', { type: 'button', class: 'button button-small button-danger-outline', onclick: () => host.remove(entry) }, t('room.removeName', { name: entry.name })),
  );
  return buttons;
}

/**
 * Builds the participant list. `host` contains the host's actions (`mute`,
 * `remove`, `lowerHand`, `admit`, `deny`), or is null for everyone else.
 */
export function participantsPanel({ participants, lobby, selfAccountId, host }) {
  const rows = speakingOrder(participants).map((entry) =>
    h(
      'li',
      { class: entry.speaking ? 'room-person room-person-speaking' : 'room-person', 'data-testid': 'room-participant', 'data-account': String(entry.account_id) },
      h('span', { class: 'room-person-name' }, entry.name, entry.account_id === selfAccountId ? t('room.selfMark') : ''),
      h('span', { class: 'hint' }, participantMarks(entry).join(' · ')),
      host ? h('div', { class: 'row-actions' }, hostButtons(entry, host)) : null,
    ),
  );
  const lobbyRows = host && lobby.length > 0
    ? h(
      'section',
      { class: 'room-lobby', 'aria-label': t('room.lobby') },
      h('h3', {}, t('room.lobbyCount', { count: lobby.length })),
      h(
        'ul',
        { class: 'room-people' },
        lobby.map((entry) =>
          h(
            'li',
            { class: 'room-person', 'data-testid': 'room-lobby-entry' },
            h('span', { class: 'room-person-name' }, entry.name),
            h('span', { class: 'hint' }, t('room.waitingSince', { time: clock(entry.since) })),
            h(
              'div',
              { class: 'row-actions' },
              h('button', { type: 'button', class: 'button button-small button-primary', onclick: () => host.admit(entry) }, t('room.admitName', { name: entry.name })),
              h('button', { type: 'button', class: 'button button-small', onclick: () => host.deny(entry) }, t('room.denyName', { name: entry.name })),
            ),
          ),
        ),
      ),
    )
    : null;
  return h(
    'div',
    { class: 'room-panel-body' },
    lobbyRows,
    h('h3', {}, t('room.participantCount', { count: participants.length })),
    h('ul', { class: 'room-people' }, rows),
  );
}

/**
 * Creates the chat panel. `send(text)` returns a promise that rejects with
 * the server's error; the typed text stays until the message is accepted.
 */
export function createChat(send) {
  const list = h('ol', { class: 'room-chat-list', 'aria-live': 'polite', 'data-testid': 'room-chat' });
  const input = h('textarea', { name: 'text', rows: 2, maxlength: 2000, 'aria-label': t('room.chatInput') });
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const form = h(
    'form',
    {
      class: 'room-chat-form',
      onsubmit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        const text = input.value.trim();
        if (!text) return;
        try {
          await send(text);
          input.value = '';
        } catch (failure) {
          error.textContent = failure.message;
          error.hidden = false;
        }
      },
    },
    input,
    error,
    h('button', { type: 'submit', class: 'button button-primary' }, t('room.chatSend')),
  );
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  return {
    element: h('div', { class: 'room-panel-body room-chat' }, list, form),
    /** Appends one stored `chat.message` event; the text is inserted as text. */
    add(event) {
      const data = event.data || {};
      list.append(
        h(
          'li',
          { class: 'room-chat-message' },
          h('span', { class: 'room-chat-name' }, data.name || ''),
          h('time', { class: 'hint', datetime: new Date(event.at || Date.now()).toISOString() }, clock(event.at || Date.now())),
          h('p', {}, data.text || ''),
        ),
      );
      list.scrollTop = list.scrollHeight;
    },
  };
}
