// The meeting room's media connection: one RTCPeerConnection to the
// server's media engine, signaled over the hub WebSocket with the
// `meeting_*` messages of docs/protocol.md.
//
// Messages of the meeting are handled one at a time in arrival order,
// because a reply with an answer can be followed at once by a new server
// offer. The server never rolls back, so on `negotiation_in_progress` this
// side rolls its own offer back, answers the server and offers again.

import { api } from '../api.js';
import { hub } from '../hub.js';

/** States of the room connection. */
export const RoomState = Object.freeze({
  idle: 'idle',
  joining: 'joining',
  lobby: 'lobby',
  joined: 'joined',
  left: 'left',
});

/**
 * Simulcast layers of the camera, lowest first as the server expects: a
 * quarter, half and full resolution. The server forwards to each page the
 * highest layer up to what that page asks for with `meeting_layer`.
 */
const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4 },
  { rid: 'h', scaleResolutionDownBy: 2 },
  { rid: 'f' },
];

let requestCounter = 0;

function nextId(prefix) {
  requestCounter += 1;
  return `${prefix}${requestCounter}`;
}

/**
 * Returns the publisher's own media id of a received track. The server
 * names each track `PARTICIPANT-MID` in its `msid` line.
 */
function publisherMid(participant, track) {
  const prefix = `${participant}-`;
  return track.id.startsWith(prefix) ? track.id.slice(prefix.length) : null;
}

export class RoomConnection {
  /**
   * `handlers`: `onState(state, message)`, `onMessage(message)` for live
   * state (participants, speaker, lock, lobby), `onTrack({ participant,
   * mid, track })`, `onTrackEnded({ participant, mid, track })`,
   * `onMediaFailed()` when the media connection of the current join fails,
   * and `onError(error)` for failed requests.
   */
  constructor(meetingId, handlers) {
    this.meetingId = meetingId;
    this.handlers = handlers;
    this.state = RoomState.idle;
    this.peer = null;
    this.joinId = null;
    this.participant = null;
    this.pendingOffer = null;
    this.offerAgain = false;
    this.senders = new Map();
    /** Requests awaiting `meeting_ok` or `error`, by id. */
    this.calls = new Map();
    this.queue = Promise.resolve();
    this.removeListener = hub.onMessage((message) => {
      if (message.meeting_id !== undefined && message.meeting_id !== this.meetingId) return;
      if (message.type === 'error' && !this.ownsRequest(message.id)) return;
      this.queue = this.queue.then(() => this.handle(message)).catch((error) => this.handlers.onError(error));
    });
  }

  ownsRequest(id) {
    return typeof id === 'string' && (id === this.joinId || id === this.pendingOffer || id.startsWith('r'));
  }

  /**
   * Joins with the given local tracks (`microphone`, `camera`, each a
   * MediaStreamTrack or null). Without a microphone the page only listens.
   */
  async join({ microphone, camera }) {
    this.closePeer();
    // TURN servers with a credential of this account, for networks that block UDP;
    // fetched on every join because each credential expires.
    const { ice_servers: iceServers } = await api.get(`/api/meetings/${this.meetingId}/live/ice-servers`);
    const peer = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers });
    this.peer = peer;
    this.senders.clear();
    const stream = new MediaStream([microphone, camera].filter(Boolean));
    if (microphone) this.senders.set('microphone', peer.addTransceiver(microphone, { direction: 'sendrecv', streams: [stream] }));
    else peer.addTransceiver('audio', { direction: 'recvonly' });
    if (camera) this.senders.set('camera', peer.addTransceiver(camera, { direction: 'sendrecv', streams: [stream], sendEncodings: CAMERA_LAYERS }));
    peer.addEventListener('track', (event) => this.onTrack(event));
    peer.addEventListener('connectionstatechange', () => {
      if (peer === this.peer && peer.connectionState === 'failed' && this.handlers.onMediaFailed) this.handlers.onMediaFailed();
    });
    await peer.setLocalDescription(await peer.createOffer());
    this.joinId = nextId('j');
    this.setState(RoomState.joining);
    if (!hub.send({ type: 'meeting_join', id: this.joinId, meeting_id: this.meetingId, sdp: peer.localDescription.sdp })) {
      this.setState(RoomState.left, { reason: 'disconnected' });
    }
  }

  /** Leaves the media or the lobby and releases the connection. */
  leave() {
    if (this.state === RoomState.joined || this.state === RoomState.lobby || this.state === RoomState.joining) {
      hub.send({ type: 'meeting_leave', id: nextId('r'), meeting_id: this.meetingId });
    }
    this.closePeer();
    this.setState(RoomState.left, { reason: 'left' });
  }

  /** Stops listening to the hub; call when the page closes. */
  dispose() {
    this.leave();
    this.removeListener();
  }

  /** Sends a request that needs the media, such as `meeting_hand`; returns false while disconnected. */
  request(type, fields = {}) {
    return hub.send({ type, id: nextId('r'), meeting_id: this.meetingId, ...fields });
  }

  /**
   * Sends a request and returns a promise of its `meeting_ok` reply, which
   * rejects with the server's error (an Error with `code`) or when the
   * connection is down.
   */
  call(type, fields = {}, offlineMessage = 'offline') {
    const id = nextId('r');
    return new Promise((resolve, reject) => {
      if (!hub.send({ type, id, meeting_id: this.meetingId, ...fields })) {
        reject(new Error(offlineMessage));
        return;
      }
      this.calls.set(id, { resolve, reject });
    });
  }

  /** Reports the page's device state and which of its tracks is which source. */
  reportMedia({ microphone, camera, screen }) {
    const sources = {};
    for (const [source, transceiver] of this.senders) {
      if (transceiver.mid !== null) sources[transceiver.mid] = source;
    }
    this.request('meeting_media', { microphone, camera, screen, sources });
  }

  /**
   * Caps the simulcast layer (0 is the lowest) this page receives of one
   * remote track, for example from the size of its tile.
   */
  setMaxLayer(participant, mid, maxLayer) {
    return this.request('meeting_layer', { publisher: participant, mid, max_layer: maxLayer });
  }

  /** Publishes a screen capture track as another video track. */
  async addScreen(track) {
    const transceiver = this.peer.addTransceiver(track, { direction: 'sendonly', streams: [new MediaStream([track])] });
    this.senders.set('screen', transceiver);
    await this.offer();
  }

  /** Stops publishing the screen capture. */
  async removeScreen() {
    const transceiver = this.senders.get('screen');
    this.senders.delete('screen');
    if (!transceiver || !this.peer) return;
    this.peer.removeTrack(transceiver.sender);
    await this.offer();
  }

  async offer() {
    if (!this.peer || this.state !== RoomState.joined) return;
    if (this.peer.signalingState !== 'stable') {
      this.offerAgain = true;
      return;
    }
    await this.peer.setLocalDescription(await this.peer.createOffer());
    this.pendingOffer = nextId('o');
    hub.send({ type: 'meeting_offer', id: this.pendingOffer, meeting_id: this.meetingId, sdp: this.peer.localDescription.sdp });
  }

  setState(state, message = {}) {
    this.state = state;
    this.handlers.onState(state, message);
  }

  closePeer() {
    for (const call of this.calls.values()) call.reject(new Error('left'));
    this.calls.clear();
    if (this.peer) this.peer.close();
    this.peer = null;
    this.pendingOffer = null;
    this.offerAgain = false;
  }

  onTrack(event) {
    const stream = event.streams[0];
    if (!stream) return;
    const participant = stream.id;
    const info = { participant, mid: publisherMid(participant, event.track), track: event.track };
    const ended = () => this.handlers.onTrackEnded(info);
    event.track.addEventListener('ended', ended);
    stream.addEventListener('removetrack', (removed) => {
      if (removed.track === event.track) ended();
    });
    this.handlers.onTrack(info);
  }

  async handle(message) {
    switch (message.type) {
      case 'meeting_joined':
        if (message.id !== this.joinId || !this.peer) return;
        await this.peer.setRemoteDescription({ type: 'answer', sdp: message.sdp });
        this.participant = message.participant;
        this.setState(RoomState.joined, message);
        break;
      case 'meeting_waiting':
        if (message.id === this.joinId) this.setState(RoomState.lobby, message);
        break;
      case 'meeting_offer':
        await this.answerServer(message.sdp);
        break;
      case 'meeting_answer':
        if (message.id !== this.pendingOffer || !this.peer) return;
        this.pendingOffer = null;
        await this.peer.setRemoteDescription({ type: 'answer', sdp: message.sdp });
        await this.offerIfPending();
        break;
      case 'meeting_left':
        if (this.state === RoomState.left || (message.reason === 'left' && message.id && !this.ownsRequest(message.id))) return;
        this.closePeer();
        this.setState(RoomState.left, message);
        break;
      case 'meeting_ok':
        this.settle(message.id, (call) => call.resolve(message));
        break;
      case 'error':
        if (this.settle(message.id, (call) => call.reject(Object.assign(new Error(message.message), { code: message.code })))) return;
        await this.onRequestError(message);
        break;
      default:
        this.handlers.onMessage(message);
    }
  }

  /** Settles a pending call; returns whether `id` named one. */
  settle(id, run) {
    const call = this.calls.get(id);
    if (!call) return false;
    this.calls.delete(id);
    run(call);
    return true;
  }

  async answerServer(sdp) {
    if (!this.peer) return;
    // Setting a remote offer over a local one rolls the local one back.
    await this.peer.setRemoteDescription({ type: 'offer', sdp });
    await this.peer.setLocalDescription(await this.peer.createAnswer());
    hub.send({ type: 'meeting_answer', id: nextId('r'), meeting_id: this.meetingId, sdp: this.peer.localDescription.sdp });
    await this.offerIfPending();
  }

  async offerIfPending() {
    if (!this.offerAgain) return;
    this.offerAgain = false;
    await this.offer();
  }

  async onRequestError(message) {
    if (message.id === this.joinId) {
      this.closePeer();
      this.setState(RoomState.left, { reason: 'error', error: message });
      return;
    }
    if (message.id === this.pendingOffer) {
      this.pendingOffer = null;
      if (this.peer && this.peer.signalingState === 'have-local-offer') {
        await this.peer.setLocalDescription({ type: 'rollback' });
      }
      if (message.code === 'negotiation_in_progress') {
        // Offer again after the answer to the server's offer.
        this.offerAgain = true;
        if (this.peer && this.peer.signalingState === 'stable') await this.offerIfPending();
        return;
      }
    }
    this.handlers.onError(message);
  }
}
