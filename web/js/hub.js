// Client of the live hub (docs/protocol.md): one WebSocket per tab.
//
// Each listener keeps the sequence number of the last event handed to it.
// After a reconnect every topic is subscribed again with `since` set to the
// lowest of its listeners' numbers, so the server replays what was missed,
// and a listener never gets an event at or below its own number, so each
// event reaches it once.

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set([1008, 4000]);
const BACKOFF_START_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** Heartbeat interval assumed until the server's welcome names its own. */
const DEFAULT_HEARTBEAT_MS = 15_000;

/** Error codes after which subscribing to the topic again cannot succeed. */
const FINAL_ERROR_CODES = new Set(['forbidden', 'not_found', 'invalid_field']);

/**
 * State of one topic. Each entry of `listeners` has `seq`, the last
 * sequence number handed to it: null until the first `subscribed` reply
 * when no HTTP snapshot gave one.
 */
class TopicState {
  constructor(name) {
    this.name = name;
    this.listeners = new Set();
    this.online = [];
  }

  /** Returns the `since` to subscribe with: the lowest listener cursor. */
  since() {
    let lowest = null;
    for (const entry of this.listeners) {
      if (entry.seq !== null && (lowest === null || entry.seq < lowest)) lowest = entry.seq;
    }
    return lowest;
  }

  /** Returns the highest sequence number any listener has handled. */
  head() {
    let highest = null;
    for (const entry of this.listeners) {
      if (entry.seq !== null && (highest === null || entry.seq > highest)) highest = entry.seq;
    }
    return highest;
  }
}

class Hub {
  constructor() {
    this.topics = new Map();
    this.socket = null;
    this.running = false;
    this.connected = false;
    this.backoff = BACKOFF_START_MS;
    this.retryTimer = null;
    this.watchTimer = null;
    this.lastHeard = 0;
    this.heartbeatMs = DEFAULT_HEARTBEAT_MS;
    this.requestCounter = 0;
    this.pending = new Map();
    this.onSessionEnded = () => {};
    this.statusListeners = new Set();
    this.messageListeners = new Set();
    /** Open requests by id: `{ resolve, reject, timer }`. */
    this.requests = new Map();
    /** Listeners of topic-less server messages, by message type. */
    this.typeListeners = new Map();
    /** Address of the node to connect to, or null for this page's host. */
    this.nodeUrl = null;
  }

  /**
   * Connects to the node at `url` from now on, or to this page's host with
   * null, reconnecting at once when the address changes. A node URL with a
   * path (a proxy route such as `https://host/nodes/n1`) gets its socket at
   * that path plus `/ws`. Every topic is subscribed again from where its
   * listeners stopped, so the server replays what was missed.
   */
  useNode(url) {
    const next = url && !isPageOrigin(url) ? url : null;
    if (next === this.nodeUrl) return;
    this.nodeUrl = next;
    if (!this.running) return;
    const socket = this.socket;
    this.socket = null;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchTimer);
    if (socket) socket.close(1000);
    this.setConnected(false);
    this.connect();
  }

  /** Resolves once the socket is connected, or rejects after `timeoutMs`. */
  whenConnected(timeoutMs = 15_000) {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error('timeout'));
      }, timeoutMs);
      const stop = this.onStatus((connected) => {
        if (!connected) return;
        clearTimeout(timer);
        stop();
        resolve();
      });
    });
  }

  /** Opens the connection; call after login. */
  start({ onSessionEnded } = {}) {
    if (onSessionEnded) this.onSessionEnded = onSessionEnded;
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /** Closes the connection and drops every topic; call on logout. */
  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchTimer);
    this.topics.clear();
    this.pending.clear();
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000);
    }
    this.setConnected(false);
  }

  /**
   * Subscribes to a topic. `since` is the sequence number of an HTTP
   * snapshot, if one was loaded. Listener callbacks: `onEvent(event)`,
   * `onReset(message)` (reload state over HTTP), `onPresence(online)` and
   * `onError(error)`. Returns a function that removes the listener.
   */
  subscribe(topic, listener, { since = null } = {}) {
    let state = this.topics.get(topic);
    const isNew = !state;
    if (isNew) {
      state = new TopicState(topic);
      this.topics.set(topic, state);
    }
    // Without a snapshot, a listener joining a live topic starts where the
    // others are.
    const entry = { listener, seq: since ?? (isNew ? null : state.head()) };
    const lowest = state.since();
    state.listeners.add(entry);
    if (isNew || (entry.seq !== null && lowest !== null && entry.seq < lowest)) {
      // The server replays from the older cursor; listeners that are
      // further along drop what they already handled.
      this.sendSubscribe(state);
    }
    if (state.online.length > 0 && listener.onPresence) listener.onPresence(state.online);
    return () => {
      state.listeners.delete(entry);
      if (state.listeners.size === 0 && this.topics.get(topic) === state) {
        this.topics.delete(topic);
        this.send({ type: 'unsubscribe', topic });
      }
    };
  }

  /** Returns who is online on a topic, as the last `presence` message listed. */
  presence(topic) {
    const state = this.topics.get(topic);
    return state ? state.online : [];
  }

  /**
   * Sends a request message (such as `study_start`) with a fresh `id`.
   * Resolves with the reply that carries the id; rejects with an Error whose
   * `code` is the server's error code, `offline` when the connection is
   * down, or `timeout`.
   */
  request(message, timeoutMs = 15_000) {
    this.requestCounter += 1;
    const id = `q${this.requestCounter}`;
    return new Promise((resolve, reject) => {
      const fail = (code, text) => {
        this.requests.delete(id);
        reject(Object.assign(new Error(text), { code }));
      };
      if (!this.send({ ...message, id })) {
        fail('offline', 'hub connection is down');
        return;
      }
      const timer = setTimeout(() => fail('timeout', 'no reply from the hub'), timeoutMs);
      this.requests.set(id, { resolve, reject, timer });
    });
  }

  /** Registers `listener(message)` for server messages of one type that are
   * not replies (such as `study_check`); returns a remover. */
  onMessageOfType(type, listener) {
    if (!this.typeListeners.has(type)) this.typeListeners.set(type, new Set());
    this.typeListeners.get(type).add(listener);
    return () => this.typeListeners.get(type).delete(listener);
  }

  /** Registers `listener(connected)` for connection changes; returns a remover. */
  onStatus(listener) {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /**
   * Registers `listener(message)` for server messages that are not about
   * topics, such as the `meeting_*` signaling. It also receives `error`
   * replies to requests other than subscriptions. Returns a remover.
   */
  onMessage(listener) {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  connect() {
    const target = this.nodeUrl ? new URL(this.nodeUrl) : location;
    const scheme = target.protocol === 'https:' ? 'wss:' : 'ws:';
    const path = this.nodeUrl ? target.pathname.replace(/\/+$/, '') : '';
    const socket = new WebSocket(`${scheme}//${target.host}${path}/ws?v=1`);
    this.socket = socket;
    this.lastHeard = Date.now();
    socket.addEventListener('message', (message) => {
      if (socket !== this.socket) return;
      this.lastHeard = Date.now();
      this.handle(message.data);
    });
    socket.addEventListener('close', (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.setConnected(false);
      clearInterval(this.watchTimer);
      this.afterClose(event.code);
    });
  }

  afterClose(code) {
    if (!this.running) return;
    if (FINAL_CLOSE_CODES.has(code)) {
      this.running = false;
      if (code === 1008) this.onSessionEnded();
      return;
    }
    // 4008 (slow consumer), 4009 (heartbeat timeout), 1006 (connection
    // lost), 1011 (server failure) and the rest: resume after a pause that
    // doubles on each failure, with jitter so tabs do not retry together.
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => {
      if (this.running) this.connect();
    }, delay);
  }

  setConnected(connected) {
    if (this.connected === connected) return;
    this.connected = connected;
    for (const listener of this.statusListeners) listener(connected);
  }

  /** Sends `ping` every heartbeat and reconnects after three silent ones. */
  watchHeartbeat() {
    clearInterval(this.watchTimer);
    this.watchTimer = setInterval(() => {
      if (!this.socket) return;
      if (Date.now() - this.lastHeard > 3 * this.heartbeatMs) {
        // A dead link may take minutes to report close; end it now.
        const socket = this.socket;
        this.socket = null;
        this.setConnected(false);
        clearInterval(this.watchTimer);
        socket.close();
        this.afterClose(4009);
        return;
      }
      this.send({ type: 'ping' });
    }, this.heartbeatMs);
  }

  /** Sends one message on the open connection; returns false while disconnected. */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  sendSubscribe(state) {
    this.requestCounter += 1;
    const id = `s${this.requestCounter}`;
    const message = { type: 'subscribe', id, topic: state.name };
    const since = state.since();
    if (since !== null) message.since = since;
    if (this.send(message)) this.pending.set(id, state.name);
  }

  handle(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const request = message.id ? this.requests.get(message.id) : null;
    if (request) {
      this.requests.delete(message.id);
      clearTimeout(request.timer);
      if (message.type === 'error') request.reject(Object.assign(new Error(message.message), { code: message.code }));
      else request.resolve(message);
      return;
    }
    switch (message.type) {
      case 'welcome':
        this.backoff = BACKOFF_START_MS;
        this.heartbeatMs = message.heartbeat_ms || DEFAULT_HEARTBEAT_MS;
        this.setConnected(true);
        this.watchHeartbeat();
        for (const state of this.topics.values()) this.sendSubscribe(state);
        break;
      case 'subscribed':
        this.onSubscribed(message);
        break;
      case 'event':
        this.onEvent(message);
        break;
      case 'reset':
        this.onReset(message);
        break;
      case 'presence':
        this.onPresence(message);
        break;
      case 'error':
        this.onError(message);
        break;
      default:
        this.notifyMessage(message);
        for (const listener of this.typeListeners.get(message.type) || []) listener(message);
        break;
    }
  }

  notifyMessage(message) {
    for (const listener of [...this.messageListeners]) listener(message);
  }

  onSubscribed(message) {
    this.pending.delete(message.id);
    const state = this.topics.get(message.topic);
    if (!state) return;
    // Without a snapshot, a listener starts at the topic's newest event.
    for (const entry of state.listeners) {
      if (entry.seq === null) entry.seq = message.seq;
    }
  }

  onEvent(message) {
    const state = this.topics.get(message.topic);
    if (!state) return;
    for (const entry of [...state.listeners]) {
      if (entry.seq !== null && message.seq <= entry.seq) continue;
      entry.seq = message.seq;
      if (entry.listener.onEvent) entry.listener.onEvent(message);
    }
  }

  onReset(message) {
    const state = this.topics.get(message.topic);
    if (!state) return;
    for (const entry of [...state.listeners]) {
      entry.seq = message.seq;
      if (entry.listener.onReset) entry.listener.onReset(message);
    }
  }

  onPresence(message) {
    const state = this.topics.get(message.topic);
    if (!state) return;
    state.online = message.online || [];
    for (const entry of [...state.listeners]) {
      if (entry.listener.onPresence) entry.listener.onPresence(state.online);
    }
  }

  onError(message) {
    const topic = this.pending.get(message.id);
    if (!topic) {
      this.notifyMessage(message);
      return;
    }
    this.pending.delete(message.id);
    const state = this.topics.get(topic);
    if (!state) return;
    // A denied topic stays denied; other failures retry on reconnect.
    if (FINAL_ERROR_CODES.has(message.code)) this.topics.delete(topic);
    for (const entry of [...state.listeners]) {
      if (entry.listener.onError) entry.listener.onError(message);
    }
  }
}

/** Checks whether a node URL names this page's own origin, without a path. */
function isPageOrigin(url) {
  const parsed = new URL(url);
  return parsed.origin === location.origin && parsed.pathname.replace(/\/+$/, '') === '';
}

/** The tab's one hub connection. */
export const hub = new Hub();
