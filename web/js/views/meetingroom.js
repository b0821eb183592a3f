// The meeting room. A person first checks camera and microphone, may wait
// in the lobby, and then enters the video room. The room has grid and
// speaker views, microphone, camera and screen share controls, raised
// hands, chat, and the votes and minutes panels of the meeting page. The
// host also gets admit, mute, remove, lock and end. Media flows over WebRTC to the server's media engine; signaling and
// live state travel on the hub WebSocket (see roomconnection.js).
//
// The live state (participants, lobby, lock, active speaker) comes from the
// `meeting_*` messages. The meeting record (quorum, votes, minutes) is
// GET /api/meetings/ID, reloaded on each event of the `meeting:ID` topic,
// which also delivers the chat.
//
// Route: /meetings/ID/room.

import { api } from '../api.js';
import { announce, confirmDialog, errorState, h, replace } from '../dom.js';
import { hub } from '../hub.js';
import { t } from '../i18n.js';
import { meetingStatusTag } from './meetings.js';
import { createMinutesPanel } from './meetingminutes.js';
import { votesPanel } from './meetingvotes.js';
import { RoomConnection, RoomState } from './roomconnection.js';
import { captureErrorText, createDeviceCheck } from './roomdevices.js';
import { createChat, participantMarks, participantsPanel } from './roompanels.js';

const PANELS = ['participants', 'chat', 'votes', 'minutes'];

/** Interval of the received-audio loss check that suggests the low bandwidth mode. */
const LOSS_CHECK_MS = 5000;
/** Share of audio packets lost over one interval that counts as heavy loss. */
const HEAVY_LOSS = 0.1;
/** Minimum packets in an interval for its loss share to count. */
const LOSS_MIN_PACKETS = 100;

/** Left reasons and join errors after which entering again cannot succeed. */
const FINAL_REASONS = new Set(['ended', 'meeting_ended', 'meeting_cancelled']);
/** Requests for a new node after a connection failed, one every RELOCATE_RETRY_MS. */
const RELOCATE_ATTEMPTS = 10;
const RELOCATE_RETRY_MS = 1000;

export function renderMeetingRoom(outlet, id, { navigate }) {
  let closed = false;
  let view = null;
  let loadTicket = 0;
  let unsubscribe = null;
  let devices = null;
  /** The local capture while in the room: `stream`, `microphone`, `camera`, `screen` tracks. */
  let local = null;
  let microphoneOn = true;
  let cameraOn = true;
  let layout = 'grid';
  let panel = 'participants';
  let rejoinOnReconnect = false;
  /** Id of the node whose hub socket and media engine the room uses. */
  let mediaNode = null;
  /** A move to another node is under way. */
  let relocating = false;
  /** Receiving one mixed audio stream from the server instead of one per speaker. */
  let mixedAudio = false;
  /** Received and lost audio packets at the last loss check. */
  let lossSample = null;
  /** The low bandwidth mode was suggested once; it is not suggested again. */
  let lossSuggested = false;
  let room = null;
  // Whether an audio recording of the meeting is running; shown to everyone.
  let recording = false;
  const live = { participants: new Map(), lobby: [], locked: false };
  /** Received tracks by `PARTICIPANT/MID`. */
  const remote = new Map();
  /** Highest simulcast layer asked of the server, by the track's `PARTICIPANT/MID`. */
  const maxLayers = new Map();
  /** Video codecs this browser cannot decode, by the track's `PARTICIPANT/MID`. */
  const undecodable = new Map();
  /** Video tiles by key, kept across redraws so that playback continues. */
  const tiles = new Map();
  const audioBox = h('div', { class: 'room-audio', hidden: true });
  const liveRegion = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'room-live' });
  /** Shown while the room connects to its node again, or to another node. */
  const reconnectBanner = h('p', { class: 'room-reconnecting', role: 'status', 'data-testid': 'room-reconnecting', hidden: true }, t('room.reconnecting'));
  const path = (suffix = '') => `/api/meetings/${id}${suffix}`;
  const chat = createChat(sendChat);
  const minutes = createMinutesPanel({ path, act, reload: load });

  const connection = new RoomConnection(id, {
    onState,
    onMessage,
    onTrack,
    onTrackEnded,
    onMediaFailed,
    onError: (error) => announce(error.message || String(error), 'error'),
  });

  replace(outlet, h('section', { class: 'page' }, h('p', { class: 'muted' }, t('common.loading'))));

  function say(message) {
    liveRegion.textContent = message;
    announce(message, 'info', { toast: true });
  }

  /** Runs one host or record action, shows its error, and reloads the record. */
  async function act(run, done = null) {
    try {
      await run();
      if (done) say(done);
    } catch (error) {
      announce(error.message, 'error');
    }
    await load();
  }

  async function sendChat(text) {
    if (connection.state !== RoomState.joined) throw new Error(t('room.chatNeedsRoom'));
    await connection.call('meeting_chat', { text }, t('room.offline'));
  }

  // ---- meeting record ----

  async function load() {
    loadTicket += 1;
    const ticket = loadTicket;
    let next;
    try {
      next = await api.get(path());
    } catch (error) {
      if (!closed && ticket === loadTicket && !view) replace(outlet, h('section', { class: 'page' }, errorState(error, load)));
      return;
    }
    if (closed || ticket !== loadTicket) return;
    const first = !view;
    view = next;
    if (first) {
      unsubscribe = hub.subscribe(`meeting:${id}`, { onEvent: onMeetingEvent, onReset: load }, { since: view.seq });
      showCheck();
      loadRecording();
      return;
    }
    if (room) drawRecord();
  }

  /** Learns whether an audio recording is running; hub events keep it current after. */
  async function loadRecording() {
    try {
      const recordings = await api.get(path('/recordings'));
      recording = recordings.some((entry) => entry.recording);
    } catch (error) {
      // The room works without it; the next recording event corrects the state.
      recording = false;
    }
    if (!closed && room) drawRecord();
  }

  function onMeetingEvent(event) {
    if (event.kind === 'chat.message') {
      chat.add(event);
      if (panel !== 'chat' && room) room.tabs.chat.classList.add('room-tab-unread');
      return;
    }
    const data = event.data || {};
    if (event.kind === 'meeting.recording') {
      recording = Boolean(data.recording);
      say(recording ? t('room.recordingStarted') : t('room.recordingStopped'));
      if (room) {
        drawRecord();
        drawControls();
      }
      return;
    }
    const messages = {
      'vote.opened': () => t('meet.liveVoteOpened', { title: data.title }),
      'vote.closed': () => t('meet.liveVoteClosed', { title: data.title }),
      'minutes.saved': () => t('meet.liveMinutes', { name: data.saved_by_name }),
    };
    if (messages[event.kind]) say(messages[event.kind]());
    load();
  }

  // ---- join screen, lobby and left screens ----

  function screen(...children) {
    room = null;
    replace(
      outlet,
      h(
        'section',
        { class: 'page room-screen' },
        h('header', { class: 'page-header' }, h('a', { href: `/meetings/${id}`, class: 'button button-small', 'data-link': true }, `← ${t('room.backToMeeting')}`), h('h1', { tabindex: '-1' }, view.meeting.title), meetingStatusTag(view.meeting.status)),
        children,
        liveRegion,
      ),
    );
    outlet.querySelector('h1').focus({ preventScroll: true });
  }

  function showCheck() {
    if (devices) devices.stop();
    devices = createDeviceCheck();
    const open = view.meeting.status === 'scheduled' || view.meeting.status === 'live';
    screen(
      h(
        'div',
        { class: 'card card-body room-check' },
        h('h2', {}, t('room.checkTitle')),
        h('p', { class: 'hint' }, view.can.join ? t('room.checkHint') : t('room.lobbyHint')),
        devices.element,
        h(
          'div',
          { class: 'row-actions' },
          h('button', { type: 'button', class: 'button button-primary', disabled: !open, onclick: enter }, view.can.join ? t('room.join') : t('room.askToJoin')),
        ),
      ),
    );
    devices.open();
  }

  async function enter() {
    const stream = devices.take() || new MediaStream();
    devices = null;
    const microphone = stream.getAudioTracks()[0] || null;
    const camera = stream.getVideoTracks()[0] || null;
    local = { stream, microphone, camera, screen: null };
    microphoneOn = Boolean(microphone);
    cameraOn = Boolean(camera);
    screen(h('p', { class: 'card card-body', role: 'status' }, t('room.joining')));
    try {
      await followNode();
      await connection.join({ microphone, camera });
    } catch (error) {
      releaseLocal();
      screen(h('div', { class: 'card card-body', role: 'alert' }, h('p', {}, t('room.joinFailed', { reason: error.message })), h('button', { type: 'button', class: 'button', onclick: showCheck }, t('common.retry'))));
    }
  }

  /**
   * Moves the hub socket to the node the server names for this meeting, so
   * that everyone in it shares one media engine.
   */
  async function followNode() {
    const choice = await api.get(`/api/meetings/${id}/node`);
    mediaNode = choice.node_id;
    if (choice.this_node) return;
    hub.useNode(choice.url);
    try {
      await hub.whenConnected();
    } catch {
      throw new Error(t('room.nodeUnreachable'));
    }
  }

  /**
   * Asks for the meeting's node again after the hub socket or the media to
   * `mediaNode` failed, naming that node so that the server leaves it out
   * once NATS confirms it is gone, and moves the hub socket there. The
   * status listener below joins the media again once the socket is up.
   * Retries while the socket stays down, since the request itself may reach
   * a node that is going down.
   */
  async function relocate() {
    if (relocating) return;
    relocating = true;
    try {
      for (let attempt = 0; attempt < RELOCATE_ATTEMPTS && !closed && rejoinOnReconnect; attempt += 1) {
        try {
          const lost = mediaNode ? `?unreachable=${encodeURIComponent(mediaNode)}` : '';
          const choice = await api.get(`/api/meetings/${id}/node${lost}`);
          if (closed) return;
          mediaNode = choice.node_id;
          hub.useNode(choice.url);
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, RELOCATE_RETRY_MS));
        }
      }
    } finally {
      relocating = false;
    }
  }

  /** Joins the media again after its connection failed while the hub socket stayed up. */
  function onMediaFailed() {
    if (closed || rejoinOnReconnect || !local) return;
    rejoinOnReconnect = true;
    showReconnecting(true);
    relocate().then(() => {
      if (hub.connected && rejoinOnReconnect) rejoin();
    });
  }

  function rejoin() {
    rejoinOnReconnect = false;
    clearRemote();
    connection
      .join({ microphone: local.microphone, camera: local.camera })
      .catch((error) => {
        showReconnecting(false);
        say(t('room.joinFailed', { reason: error.message }));
      });
  }

  function showReconnecting(shown) {
    reconnectBanner.hidden = !shown;
    if (shown) say(t('room.reconnecting'));
  }

  function showLobby() {
    screen(
      h(
        'div',
        { class: 'card card-body room-lobby-wait', 'data-testid': 'room-lobby-wait' },
        h('h2', {}, t('room.waitTitle')),
        h('p', { role: 'status' }, t('room.waitHint')),
        h('button', { type: 'button', class: 'button', onclick: leave }, t('room.leaveLobby')),
      ),
    );
  }

  function showLeft(message) {
    releaseLocal();
    clearRemote();
    const reason = message.error ? 'error' : message.reason;
    const text = message.error ? message.error.message : t(`room.left.${reason}`);
    const again = !FINAL_REASONS.has(message.error ? message.error.code : reason);
    screen(
      h(
        'div',
        { class: 'card card-body', 'data-testid': 'room-left', role: 'status' },
        h('p', {}, text),
        h(
          'div',
          { class: 'row-actions' },
          again ? h('button', { type: 'button', class: 'button button-primary', onclick: showCheck }, t('room.enterAgain')) : null,
          h('a', { href: `/meetings/${id}`, class: 'button', 'data-link': true }, t('room.backToMeeting')),
        ),
      ),
    );
  }

  // ---- connection events ----

  function onState(state, message) {
    if (closed) return;
    if (state === RoomState.lobby) showLobby();
    else if (state === RoomState.joined) {
      showReconnecting(false);
      enterRoom(message);
    }
    else if (state === RoomState.left && message.reason !== 'left') showLeft(message);
  }

  function enterRoom(message) {
    const snapshot = message.snapshot || {};
    live.participants.clear();
    for (const entry of snapshot.participants || []) live.participants.set(entry.account_id, entry);
    live.lobby = snapshot.lobby || [];
    live.locked = Boolean(snapshot.locked);
    // A new media connection starts with one audio stream per speaker.
    mixedAudio = false;
    lossSample = null;
    drawRoom();
    reportMedia();
    load();
  }

  function onMessage(message) {
    switch (message.type) {
      case 'meeting_participant':
        live.participants.set(message.participant.account_id, message.participant);
        break;
      case 'meeting_participant_left': {
        const entry = live.participants.get(message.account_id);
        if (entry && entry.participant === message.participant) live.participants.delete(message.account_id);
        break;
      }
      case 'meeting_speaker':
        for (const entry of live.participants.values()) entry.speaking = entry.account_id === message.account_id;
        break;
      case 'meeting_locked':
        live.locked = message.locked;
        say(message.locked ? t('room.lockedNow') : t('room.unlockedNow'));
        break;
      case 'meeting_undecodable':
        undecodable.set(`${message.publisher}/${message.mid}`, message.codec);
        break;
      case 'meeting_lobby':
        if (message.waiting.length > live.lobby.length) say(t('room.someoneWaiting'));
        live.lobby = message.waiting;
        break;
      default:
        return;
    }
    if (room) drawLive();
  }

  function onTrack(info) {
    remote.set(`${info.participant}/${info.mid}`, info);
    if (room) drawLive();
  }

  function onTrackEnded(info) {
    const key = `${info.participant}/${info.mid}`;
    if (remote.get(key) === info) remote.delete(key);
    if (room) drawLive();
  }

  // ---- local media ----

  function self() {
    for (const entry of live.participants.values()) {
      if (entry.participant === connection.participant) return entry;
    }
    return null;
  }

  function reportMedia() {
    const mine = self();
    const mutedByHost = Boolean(mine && mine.muted_by_host);
    if (local.microphone) local.microphone.enabled = microphoneOn && !mutedByHost;
    if (local.camera) local.camera.enabled = cameraOn;
    connection.reportMedia({ microphone: microphoneOn && Boolean(local.microphone), camera: cameraOn && Boolean(local.camera), screen: Boolean(local.screen) });
  }

  function releaseLocal() {
    if (!local) return;
    for (const track of [...local.stream.getTracks(), local.screen].filter(Boolean)) track.stop();
    local = null;
  }

  function clearRemote() {
    remote.clear();
    maxLayers.clear();
    undecodable.clear();
    tiles.clear();
    audioBox.replaceChildren();
    live.participants.clear();
    live.lobby = [];
  }

  async function toggleScreen() {
    if (local.screen) {
      const track = local.screen;
      local.screen = null;
      track.stop();
      await connection.removeScreen();
      reportMedia();
      drawLive();
      return;
    }
    let capture;
    try {
      capture = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      if (error.name !== 'NotAllowedError') announce(captureErrorText(error), 'error');
      return;
    }
    const track = capture.getVideoTracks()[0];
    local.screen = track;
    track.addEventListener('ended', () => {
      if (local && local.screen === track) toggleScreen();
    });
    await connection.addScreen(track);
    reportMedia();
    drawLive();
  }

  function leave() {
    connection.leave();
    releaseLocal();
    clearRemote();
    navigate(`/meetings/${id}`);
  }

  // ---- host controls ----

  const host = {
    admit: (entry) => act(() => api.post(path('/live/admit'), { account_id: entry.account_id }), t('room.admitted', { name: entry.name })),
    deny: (entry) => act(() => api.post(path('/live/deny'), { account_id: entry.account_id }), t('room.denied', { name: entry.name })),
    mute: (entry, muted) => act(() => api.post(path('/live/mute'), { account_id: entry.account_id, muted }), t(muted ? 'room.mutedName' : 'room.unmutedName', { name: entry.name })),
    lowerHand: (entry) => act(() => api.post(path('/live/hands/lower'), { account_id: entry.account_id })),
    async remove(entry) {
      if (!(await confirmDialog(t('room.removeTitle'), t('room.removeConfirm', { name: entry.name }), t('room.remove'), true))) return;
      await act(() => api.post(path('/live/remove'), { account_id: entry.account_id }), t('room.removed', { name: entry.name }));
    },
    lock: () => act(() => api.post(path(live.locked ? '/live/unlock' : '/live/lock'))),
    record: () => act(() => api.post(path(recording ? '/recording/stop' : '/recording/start'))),
    async end() {
      if (!(await confirmDialog(t('room.endTitle'), t('room.endConfirm'), t('room.end'), true))) return;
      await act(() => api.post(path('/live/end')));
    },
  };

  const isHost = () => view && view.me.standing === 'host';

  // ---- the room ----

  function controlButton(label, onclick, extra = {}) {
    return h('button', { type: 'button', class: 'button room-control', onclick, ...extra }, label);
  }

  function drawRoom() {
    const stage = h('div', { class: 'room-stage', 'data-testid': 'room-stage' });
    const tabs = {};
    for (const name of PANELS) {
      tabs[name] = h('button', { type: 'button', class: 'room-tab', 'aria-pressed': String(panel === name), onclick: () => showPanel(name) }, t(`room.panel.${name}`));
    }
    const panelBody = h('div', { class: 'room-panel', id: `room-panel-${id}` });
    const controls = {
      microphone: controlButton('', () => {
        microphoneOn = !microphoneOn;
        reportMedia();
        drawControls();
      }),
      camera: controlButton('', () => {
        cameraOn = !cameraOn;
        reportMedia();
        drawControls();
      }),
      screen: controlButton('', toggleScreen),
      hand: controlButton('', () => {
        const mine = self();
        connection.request('meeting_hand', { raised: !(mine && mine.hand_raised_at) });
      }),
      lowBandwidth: controlButton('', toggleMixedAudio, { 'data-testid': 'room-low-bandwidth' }),
      layout: controlButton('', () => {
        layout = layout === 'grid' ? 'speaker' : 'grid';
        drawControls();
        drawStage();
      }),
      lock: controlButton('', host.lock),
      record: controlButton('', host.record),
      end: controlButton(t('room.end'), host.end, { class: 'button room-control button-danger-outline' }),
      leave: controlButton(t('room.leave'), leave, { class: 'button room-control button-danger' }),
    };
    const header = h('header', { class: 'room-header' }, h('h1', { tabindex: '-1' }, view.meeting.title), h('span', { class: 'room-facts' }));
    room = { stage, tabs, panelBody, controls, header, votes: h('div'), minutes: h('div') };
    replace(
      outlet,
      h(
        'section',
        { class: 'room-page', 'data-testid': 'room' },
        header,
        h(
          'div',
          { class: 'room-body' },
          stage,
          h('aside', { class: 'room-side', 'aria-label': t('room.sidePanel') }, h('div', { class: 'room-tabs', role: 'group' }, PANELS.map((name) => tabs[name])), panelBody),
        ),
        h('nav', { class: 'room-controls', 'aria-label': t('room.controls') }, Object.values(controls)),
        reconnectBanner,
        audioBox,
        liveRegion,
      ),
    );
    header.querySelector('h1').focus({ preventScroll: true });
    drawRecord();
    drawLive();
  }

  /** Switches between one mixed audio stream (for a weak link) and one per speaker. */
  async function toggleMixedAudio() {
    const next = !mixedAudio;
    try {
      await connection.call('meeting_mix', { mixed: next }, t('room.offline'));
      mixedAudio = next;
      say(next ? t('room.lowBandwidthOn') : t('room.lowBandwidthOff'));
    } catch (error) {
      announce(error.message, 'error');
    }
    if (!room) return;
    drawControls();
    drawStage();
  }

  /**
   * Suggests the low bandwidth mode once when more than a tenth of the
   * received audio packets were lost since the last check.
   */
  async function checkLoss() {
    const peer = connection.peer;
    if (closed || mixedAudio || lossSuggested || connection.state !== RoomState.joined || !peer) return;
    let stats;
    try {
      stats = await peer.getStats();
    } catch (error) {
      // The connection closed meanwhile; the next check starts over.
      lossSample = null;
      return;
    }
    let received = 0;
    let lost = 0;
    for (const report of stats.values()) {
      if (report.type !== 'inbound-rtp' || report.kind !== 'audio') continue;
      received += report.packetsReceived || 0;
      lost += report.packetsLost || 0;
    }
    const previous = lossSample;
    lossSample = { received, lost };
    if (!previous) return;
    const newLost = Math.max(0, lost - previous.lost);
    const expected = Math.max(0, received - previous.received) + newLost;
    if (expected < LOSS_MIN_PACKETS || newLost / expected < HEAVY_LOSS) return;
    lossSuggested = true;
    say(t('room.lowBandwidthSuggested'));
    if (room) room.controls.lowBandwidth.classList.add('room-control-suggested');
  }

  function showPanel(name) {
    panel = name;
    for (const [key, tab] of Object.entries(room.tabs)) tab.setAttribute('aria-pressed', String(key === name));
    room.tabs[name].classList.remove('room-tab-unread');
    drawPanel();
  }

  function drawPanel() {
    const content = {
      participants: () => participantsPanel({ participants: [...live.participants.values()], lobby: live.lobby, selfAccountId: self() && self().account_id, host: isHost() ? host : null }),
      chat: () => chat.element,
      votes: () => room.votes,
      minutes: () => room.minutes,
    };
    replace(room.panelBody, content[panel]());
  }

  /** Redraws what comes from the meeting record: facts, votes and minutes. */
  function drawRecord() {
    const q = view.quorum;
    replace(
      room.header.querySelector('.room-facts'),
      meetingStatusTag(view.meeting.status),
      h('span', { class: q.quorate ? 'quorum quorum-yes' : 'quorum', 'data-testid': 'quorum' }, t('meet.quorum', { required: q.required, present: q.present }), ' ', h('strong', {}, q.quorate ? t('meet.quorate') : t('meet.notQuorate'))),
      recording ? h('span', { class: 'room-recording', 'data-testid': 'recording-indicator' }, t('room.recording')) : null,
    );
    const votes = votesPanel({ view, path, act, reload: load });
    replace(room.votes, votes || h('p', { class: 'muted' }, view.decides ? t('meet.noVotes') : t('room.noVoting')));
    replace(room.minutes, minutes.render(view) || h('p', { class: 'muted' }, t('room.noMinutes')));
    if (panel === 'votes' || panel === 'minutes') drawPanel();
  }

  /** Redraws what comes from the live state: tiles, controls and the participant list. */
  function drawLive() {
    drawStage();
    drawControls();
    if (panel === 'participants') drawPanel();
  }

  function drawControls() {
    const c = room.controls;
    const mine = self();
    const mutedByHost = Boolean(mine && mine.muted_by_host);
    if (local && local.microphone) local.microphone.enabled = microphoneOn && !mutedByHost;
    let microphoneLabel = microphoneOn ? t('room.mute') : t('room.unmute');
    if (mutedByHost) microphoneLabel = t('room.mutedByHost');
    c.microphone.textContent = microphoneLabel;
    c.microphone.disabled = mutedByHost || !local || !local.microphone;
    c.microphone.setAttribute('aria-pressed', String(!microphoneOn));
    c.camera.textContent = cameraOn ? t('room.cameraStop') : t('room.cameraStart');
    c.camera.disabled = !local || !local.camera;
    c.camera.setAttribute('aria-pressed', String(!cameraOn));
    c.screen.textContent = local && local.screen ? t('room.shareStop') : t('room.shareStart');
    c.screen.hidden = !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia;
    const raised = Boolean(mine && mine.hand_raised_at);
    c.hand.textContent = raised ? t('room.lowerHand') : t('room.raiseHand');
    c.hand.setAttribute('aria-pressed', String(raised));
    c.lowBandwidth.textContent = t('room.lowBandwidth');
    c.lowBandwidth.setAttribute('aria-pressed', String(mixedAudio));
    c.layout.textContent = layout === 'grid' ? t('room.speakerView') : t('room.gridView');
    c.lock.textContent = live.locked ? t('room.unlock') : t('room.lock');
    c.lock.hidden = !isHost();
    c.record.textContent = recording ? t('room.recordStop') : t('room.recordStart');
    c.record.setAttribute('aria-pressed', String(recording));
    c.record.hidden = !isHost();
    c.end.hidden = !isHost();
  }

  // ---- tiles ----

  function tile(key, { account, source, name }) {
    let entry = tiles.get(key);
    if (!entry) {
      const video = h('video', { autoplay: true, playsinline: true, muted: true, 'data-account': String(account), 'data-source': source });
      video.muted = true;
      const label = h('span', { class: 'room-tile-name' });
      const placeholder = h('span', { class: 'room-tile-avatar', 'aria-hidden': 'true' }, name.slice(-2));
      const note = h('p', { class: 'room-tile-note', 'data-testid': 'room-tile-note', hidden: true });
      const element = h('figure', { class: 'room-tile', 'data-testid': 'room-tile', 'data-account': String(account), 'data-source': source }, video, placeholder, note, h('figcaption', {}, label));
      entry = { element, video, label, placeholder, note, track: null, remote: null };
      tiles.set(key, entry);
    }
    return entry;
  }

  function attach(entry, track, showVideo) {
    if (entry.track !== track) {
      entry.track = track;
      entry.video.srcObject = track ? new MediaStream([track]) : null;
    }
    const visible = Boolean(track) && showVideo;
    entry.video.hidden = !visible;
    entry.placeholder.hidden = visible;
    if (visible && entry.video.paused) entry.video.play().catch(() => {});
  }

  function receivedTracks(entry) {
    const found = { audio: [], camera: null, screen: null };
    for (const info of remote.values()) {
      if (info.participant !== entry.participant || info.track.readyState === 'ended') continue;
      const declared = (entry.tracks || []).find((track) => track.mid === info.mid);
      // A track without a declared source counts as the camera.
      const screen = Boolean(declared) && declared.source === 'screen';
      if (info.track.kind === 'audio') found.audio.push(info.track);
      else if (screen) {
        found.screen = info.track;
        found.screenInfo = info;
      } else {
        found.camera = info.track;
        found.cameraInfo = info;
      }
    }
    return found;
  }

  function playAudio(tracks) {
    const received = new Set(tracks.map((track) => track.id));
    for (const element of [...audioBox.children]) {
      if (!received.has(element.dataset.track)) element.remove();
    }
    for (const track of tracks) {
      if (audioBox.querySelector(`[data-track="${CSS.escape(track.id)}"]`)) continue;
      const audio = h('audio', { autoplay: true, 'data-track': track.id });
      audio.srcObject = new MediaStream([track]);
      audioBox.append(audio);
      audio.play().catch(() => {});
    }
  }

  function drawStage() {
    const shown = [];
    const audio = [];
    const me = self();
    for (const entry of live.participants.values()) {
      const mine = entry === me;
      const name = mine ? `${entry.name}${t('room.selfMark')}` : entry.name;
      const camera = tile(`camera:${entry.account_id}`, { account: entry.account_id, source: 'camera', name: entry.name });
      if (mine) attach(camera, local && local.camera, cameraOn);
      else {
        const received = receivedTracks(entry);
        audio.push(...received.audio);
        attach(camera, received.camera, entry.camera);
        camera.remote = received.cameraInfo || null;
        if (received.screen) {
          const share = tile(`screen:${entry.account_id}`, { account: entry.account_id, source: 'screen', name: entry.name });
          share.label.textContent = t('room.screenOf', { name: entry.name });
          attach(share, received.screen, true);
          share.remote = received.screenInfo || null;
          shown.push({ entry, tile: share, screen: true });
        }
      }
      camera.label.textContent = [name, ...participantMarks(entry)].join(' · ');
      const codec = [...undecodable].find(([key]) => key.startsWith(`${entry.participant}/`));
      camera.note.hidden = !codec;
      camera.note.textContent = codec ? t('room.undecodable', { codec: codec[1] }) : '';
      camera.element.dataset.participant = entry.participant;
      camera.element.classList.toggle('room-tile-speaking', Boolean(entry.speaking));
      shown.push({ entry, tile: camera, screen: false });
    }
    if (me && local && local.screen) {
      const share = tile(`screen:${me.account_id}`, { account: me.account_id, source: 'screen', name: me.name });
      share.label.textContent = t('room.myScreen');
      attach(share, local.screen, true);
      shown.push({ entry: me, tile: share, screen: true });
    }
    // The server's mix for this page carries the stream id `PARTICIPANT-mix`.
    const mix = remote.get(`${connection.participant}-mix/mix`);
    if (mixedAudio && mix && mix.track.readyState !== 'ended') audio.push(mix.track);
    playAudio(audio);
    const keep = new Set(shown.map((item) => item.tile));
    for (const [key, entry] of tiles) {
      if (!keep.has(entry)) tiles.delete(key);
    }
    arrange(shown, me);
  }

  /**
   * Places the tiles. The speaker view puts a shared screen, else the
   * active speaker, else the first other participant, on the main stage.
   */
  function arrange(shown, me) {
    room.stage.dataset.layout = layout;
    room.stage.dataset.count = String(shown.length);
    let main = null;
    if (layout === 'speaker') {
      main = shown.find((item) => item.screen && item.entry !== me)
        || shown.find((item) => item.entry.speaking && !item.screen)
        || shown.find((item) => item.entry !== me && !item.screen)
        || shown[0];
    }
    const strip = shown.filter((item) => item !== main).map((item) => item.tile.element);
    for (const item of shown) item.tile.element.classList.toggle('room-tile-main', item === main);
    const children = main ? [main.tile.element, h('div', { class: 'room-strip' }, strip)] : strip;
    room.stage.replaceChildren(...children);
    for (const item of shown) {
      if (!item.tile.video.hidden && item.tile.video.paused) item.tile.video.play().catch(() => {});
    }
    capLayers(shown);
  }

  /**
   * Asks the server for the simulcast layer that fits each remote tile. For
   * the 640-pixel camera capture of roomdevices.js that is the quarter-size
   * layer (160 pixels) for tiles up to 200 device pixels wide and for hidden
   * video, the half-size layer up to 400, else the full one. A layer may be
   * stretched by a quarter before the next one is worth its bandwidth.
   */
  function capLayers(shown) {
    const scale = window.devicePixelRatio || 1;
    for (const { tile } of shown) {
      const info = tile.remote;
      if (!info || !info.mid) continue;
      const width = tile.video.hidden ? 0 : tile.element.clientWidth * scale;
      let layer = 2;
      if (width <= 200) layer = 0;
      else if (width <= 400) layer = 1;
      const key = `${info.participant}/${info.mid}`;
      if (maxLayers.get(key) === layer) continue;
      maxLayers.set(key, layer);
      connection.setMaxLayer(info.participant, info.mid, layer);
    }
  }

  // ---- hub connection ----

  const stopStatus = hub.onStatus((connected) => {
    if (!connected && (connection.state === RoomState.joined || connection.state === RoomState.lobby)) {
      // The server leaves the media when the socket drops; enter again on
      // reconnect, on another node when this one is gone.
      rejoinOnReconnect = true;
      showReconnecting(true);
      relocate();
    } else if (connected && rejoinOnReconnect && local) {
      rejoin();
    }
  });

  // Tiles change size with the window, and with them the layer to receive.
  const onResize = () => {
    if (room) drawStage();
  };
  window.addEventListener('resize', onResize);
  const lossTimer = setInterval(checkLoss, LOSS_CHECK_MS);

  load();
  return {
    close() {
      closed = true;
      window.removeEventListener('resize', onResize);
      clearInterval(lossTimer);
      stopStatus();
      connection.dispose();
      hub.useNode(null);
      if (devices) devices.stop();
      releaseLocal();
      if (unsubscribe) unsubscribe();
    },
  };
}
