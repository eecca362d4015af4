// The client: one WebSocket at a time, a promise per request matched by cid, typed events, and
// reconnect with jittered backoff that honours the close codes (README, "Close codes").
//
// Life of a connection: `connect()` opens a socket; the server's first frame, `Welcome`, makes it
// open. A socket that closes before its welcome is a failed handshake (browsers never show the
// HTTP status of a refused upgrade: 401, 403, 429 all look like close 1006), counted; a socket
// that closes after it is a disconnect, and its close code decides whether to reconnect. Every
// reconnect is a new session: the server has left its parties and dropped its follows (C-6).

import { Builder } from 'flatbuffers';
import * as fb from './generated/huddle/fb.js';
import { HuddleError } from './errors.js';
import { decodeFrame, type Inbound, type InboundName, type Presence } from './messages.js';
import { encodePartyData, REQUESTS, type PartyDataArgs, type RequestArgs, type RequestName, type RequestReply } from './requests.js';
import { globalWebSocket, runInNextTask, type WebSocketConstructor, type WebSocketLike } from './socket.js';

export interface ReconnectOptions {
  /** The first delay's ceiling; each consecutive attempt doubles it up to `maxDelayMs`. Default 250. */
  initialDelayMs?: number;
  /** Default 10 000. */
  maxDelayMs?: number;
  /**
   * Consecutive handshakes that may fail (the socket closed before the welcome) before the client
   * calls `refreshToken` (once per streak) or gives up. Default 3.
   */
  handshakeFailuresMax?: number;
}

export interface ClientOptions {
  /** `?status=true`: appear online with an empty status at once (C-3). */
  status?: boolean;
  /** `?snapshots=true`: also receive a party snapshot event after each change (L-9, when the server has it). */
  snapshots?: boolean;
  /** The WebSocket class; default the host's own. Node 20 has none: pass `ws` (`import WebSocket from 'ws'`). */
  WebSocket?: WebSocketConstructor;
  /** How long a request waits for its reply. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** How long a connection attempt may take from opening the socket to the welcome. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Reconnect after a disconnect (default), or `false` for one connection only. */
  reconnect?: ReconnectOptions | false;
  /**
   * Called after `handshakeFailuresMax` consecutive failed handshakes (an expired token looks just
   * like a server that is down): return a fresh token to go on, or null to give up.
   */
  refreshToken?: () => Promise<string | null | undefined> | string | null | undefined;
}

export interface RequestOptions {
  /** Overrides the client's `requestTimeoutMs` for this request. */
  timeoutMs?: number;
}

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The connection closed and the client will try again in `reconnectInMs`. */
export interface Disconnected {
  code: number;
  reason: string;
  reconnectInMs: number;
  /** Consecutive failed handshakes so far (0 after a connection that had been open). */
  handshakeFailures: number;
}

/** The client stopped for good: by `close()`, a close code that forbids reconnecting, or failed handshakes. */
export interface Closed {
  code: number;
  reason: string;
  byClient: boolean;
  /** Why it gave up, when it did not stop by `close()`. */
  error: HuddleError | null;
}

/** A server frame the client could not use (an unknown type from a newer server, a late reply …). */
export interface Skipped {
  cid: bigint;
  messageType: number;
  reason: string;
}

/** Every event, by name: each server message arriving with cid 0 under its `type`, and the lifecycle. */
export type ClientEvents = { [K in InboundName]: Inbound<K> } & {
  /** Every server event (cid 0) of any type, after its own listeners: handy for an event log. */
  message: Inbound;
  disconnected: Disconnected;
  closed: Closed;
  skipped: Skipped;
};

export type ClientEventName = keyof ClientEvents;

/** A method per request of the schema: `client.partyCreate({ open: true, maxSize: 4 })`. */
export type RequestMethods = {
  [K in RequestName]: (args: RequestArgs<K>, options?: RequestOptions) => Promise<RequestReply<K>>;
};

/** What a close code means for reconnecting; codes not listed reconnect with the usual backoff. */
interface ClosePolicy {
  reconnect: boolean;
  /** A floor on the delay (the server asked the client to slow down). */
  minDelayMs?: number;
}

/**
 * The README's close-code table. 1002, 1007 and 1009 say the client itself is broken: retrying
 * would fail the same way. 1008 is a slow consumer or a rate limit: retry, but not at once. A ban
 * (SPEC O-1: 1008 `banned`) would only be refused again at the upgrade.
 */
const CLOSE_POLICIES: { code: number; reason?: string; policy: ClosePolicy }[] = [
  { code: 1002, policy: { reconnect: false } },
  { code: 1007, policy: { reconnect: false } },
  { code: 1009, policy: { reconnect: false } },
  { code: 1008, reason: 'banned', policy: { reconnect: false } },
  { code: 1008, policy: { reconnect: true, minDelayMs: 1000 } },
];

export function closePolicy(code: number, reason: string): ClosePolicy {
  const row = CLOSE_POLICIES.find((r) => r.code === code && (r.reason === undefined || r.reason === reason));
  return row?.policy ?? { reconnect: true };
}

const DEFAULTS = {
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  handshakeFailuresMax: 3,
};

interface PendingRequest {
  name: RequestName;
  replies: readonly InboundName[];
  resolve(reply: Inbound): void;
  reject(error: HuddleError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One socket's life: frames and the close event of an older socket are told apart by it. */
interface Attempt {
  socket: WebSocketLike;
  welcomed: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

type InboxItem = { attempt: Attempt; kind: 'frame'; data: unknown } | { attempt: Attempt; kind: 'close'; code: number; reason: string };

type Listener = (event: never) => void;

export interface HuddleClient extends RequestMethods {}

export class HuddleClient {
  /** The URL given, with `/ws` added when it had no path. */
  readonly url: string;
  #token: string;
  readonly #WebSocket: WebSocketConstructor;
  readonly #status: boolean;
  readonly #snapshots: boolean;
  readonly #requestTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #reconnect: Required<ReconnectOptions> | null;
  readonly #refreshToken: ClientOptions['refreshToken'];

  #state: ClientState = 'idle';
  #attempt: Attempt | null = null;
  #presence: Presence | null = null;
  #serverVersion = '';
  readonly #pending = new Map<bigint, PendingRequest>();
  #nextCid = 1n;
  readonly #builder = new Builder(1024);
  readonly #listeners = new Map<ClientEventName, Set<Listener>>();

  /** Consecutive sockets that closed before their welcome. */
  #handshakeFailures = 0;
  /** Whether `refreshToken` was already called since the last welcome (once per failure streak). */
  #refreshedInStreak = false;
  /** Consecutive reconnect attempts since the last welcome: the backoff's exponent. */
  #retries = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #connectWaiters: { resolve(welcome: Inbound<'welcome'>): void; reject(error: HuddleError): void }[] = [];
  #closeWaiters: (() => void)[] = [];

  readonly #inbox: InboxItem[] = [];
  #draining = false;

  constructor(url: string, token: string, options: ClientOptions = {}) {
    const parsed = new URL(url);
    if (parsed.pathname === '' || parsed.pathname === '/') parsed.pathname = '/ws';
    this.url = parsed.toString();
    this.#token = token;
    const WebSocket = options.WebSocket ?? globalWebSocket();
    if (WebSocket === undefined) {
      throw new TypeError("no WebSocket in this host: pass { WebSocket } (in Node 20: import WebSocket from 'ws')");
    }
    this.#WebSocket = WebSocket;
    this.#status = options.status ?? false;
    this.#snapshots = options.snapshots ?? false;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    this.#reconnect =
      options.reconnect === false
        ? null
        : {
            initialDelayMs: options.reconnect?.initialDelayMs ?? DEFAULTS.initialDelayMs,
            maxDelayMs: options.reconnect?.maxDelayMs ?? DEFAULTS.maxDelayMs,
            handshakeFailuresMax: Math.max(1, options.reconnect?.handshakeFailuresMax ?? DEFAULTS.handshakeFailuresMax),
          };
    this.#refreshToken = options.refreshToken;
  }

  get state(): ClientState {
    return this.#state;
  }

  /** This session's own presence, from the latest welcome (null before the first). */
  get presence(): Presence | null {
    return this.#presence;
  }

  get serverVersion(): string {
    return this.#serverVersion;
  }

  /** The token the next connection attempt uses. */
  get token(): string {
    return this.#token;
  }

  /** Replaces the token for the next connection attempt (the open connection is not affected). */
  setToken(token: string): void {
    this.#token = token;
  }

  /**
   * Opens the connection (when idle or closed) and resolves with the welcome. While connecting or
   * reconnecting it resolves with the next welcome; while open, at once with the current one.
   * Rejects with `HandshakeFailed` or `Closed` when the client gives up.
   */
  connect(): Promise<Inbound<'welcome'>> {
    if (this.#state === 'open' && this.#presence !== null) {
      return Promise.resolve({ type: 'welcome', presence: this.#presence, serverVersion: this.#serverVersion });
    }
    const welcomed = new Promise<Inbound<'welcome'>>((resolve, reject) => this.#connectWaiters.push({ resolve, reject }));
    if (this.#state === 'idle' || this.#state === 'closed') {
      this.#handshakeFailures = 0;
      this.#refreshedInStreak = false;
      this.#retries = 0;
      this.#state = 'connecting';
      this.#open();
    }
    return welcomed;
  }

  /**
   * Closes the connection and stops reconnecting; pending requests reject with `Closed`. Resolves
   * once the socket has closed.
   */
  close(code = 1000, reason = ''): Promise<void> {
    if (this.#state === 'idle' || this.#state === 'closed') return Promise.resolve();
    this.#state = 'closed';
    this.#cancelReconnect();
    const error = HuddleError.client('Closed', 'the client was closed');
    this.#failPending(error);
    this.#failConnectWaiters(error);
    const attempt = this.#attempt;
    if (attempt === null) {
      this.#emit('closed', { code, reason, byClient: true, error: null });
      return Promise.resolve();
    }
    if (attempt.timer !== null) clearTimeout(attempt.timer);
    return new Promise((resolve) => {
      this.#closeWaiters.push(resolve);
      try {
        attempt.socket.close(code, reason);
      } catch {
        // An invalid code or a socket that is already gone: its close event still comes.
      }
      // A server that never answers the close frame (hung, or a dead link) must not hold close()
      // for ws's 30 s: after the connect timeout the socket is dropped and counted as closed.
      attempt.timer = setTimeout(() => {
        if (this.#attempt !== attempt) return;
        (attempt.socket as { terminate?: () => void }).terminate?.();
        this.#onClose(attempt, 1006, 'no close frame from the server');
      }, this.#connectTimeoutMs);
    });
  }

  /**
   * Sends a request by name and resolves with its reply (one of the replies the request table
   * names, discriminated by `type`); rejects with a `HuddleError`: the server's error (its code and
   * name), `Timeout`, `NotConnected`, `ConnectionLost` or `Closed`. Bad arguments reject with a
   * TypeError and send nothing. The named methods (`client.partyCreate(…)`) call this.
   */
  request<K extends RequestName>(name: K, args: RequestArgs<K>, options: RequestOptions = {}): Promise<RequestReply<K>> {
    const spec = REQUESTS[name];
    if (spec === undefined) return Promise.reject(new TypeError(`unknown request ${String(name)}`));
    const attempt = this.#attempt;
    if (this.#state !== 'open' || attempt === null) {
      return Promise.reject(HuddleError.client('NotConnected', `${name}: not connected (${this.#state})`));
    }
    const cid = this.#nextCid++;
    let frame: ArrayBuffer;
    try {
      frame = this.#encode(cid, spec.message, (builder) => (spec.encode as (b: Builder, a: unknown) => number)(builder, args));
    } catch (error) {
      return Promise.reject(error);
    }
    const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
    return new Promise<RequestReply<K>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cid);
        reject(HuddleError.client('Timeout', `${name} got no reply within ${timeoutMs} ms`, cid));
      }, timeoutMs);
      this.#pending.set(cid, { name, replies: spec.replies, resolve: resolve as (reply: Inbound) => void, reject, timer });
      try {
        attempt.socket.send(frame);
      } catch (error) {
        this.#settleWithError(cid, HuddleError.client('ConnectionLost', `${name}: the socket refused to send: ${String(error)}`, cid));
      }
    });
  }

  /**
   * Party data without a cid (SPEC P-9): no reply on success; a refusal arrives as an `error`
   * event whose `partyId` names the party. For game state at 20–60 Hz. Returns false (and sends
   * nothing) when not connected; bad arguments throw a TypeError.
   */
  partyDataFireAndForget(args: PartyDataArgs): boolean {
    const attempt = this.#attempt;
    if (this.#state !== 'open' || attempt === null) return false;
    const frame = this.#encode(0n, fb.Message.PartyDataSend, (builder) => encodePartyData(builder, args));
    try {
      attempt.socket.send(frame);
      return true;
    } catch {
      return false;
    }
  }

  /** Calls `listener` for every event of `type`; returns the function that removes it. */
  on<K extends ClientEventName>(type: K, listener: (event: ClientEvents[K]) => void): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener as Listener);
    return () => this.off(type, listener);
  }

  off<K extends ClientEventName>(type: K, listener: (event: ClientEvents[K]) => void): void {
    this.#listeners.get(type)?.delete(listener as Listener);
  }

  /**
   * The next event of `type` (that `filter` accepts), or a `Timeout` rejection after `timeoutMs`
   * (default: the request timeout). Call it before the request that causes the event when the
   * event may come in the same task as the reply.
   */
  next<K extends ClientEventName>(type: K, options: { filter?: (event: ClientEvents[K]) => boolean; timeoutMs?: number } = {}): Promise<ClientEvents[K]> {
    const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const off = this.on(type, (event) => {
        if (options.filter !== undefined && !options.filter(event)) return;
        off();
        clearTimeout(timer);
        resolve(event);
      });
      const timer = setTimeout(() => {
        off();
        reject(HuddleError.client('Timeout', `no ${type} event within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  // ---- connection life ----

  #url(): string {
    const url = new URL(this.url);
    url.searchParams.set('token', this.#token);
    if (this.#status) url.searchParams.set('status', 'true');
    if (this.#snapshots) url.searchParams.set('snapshots', 'true');
    return url.toString();
  }

  #open(): void {
    let socket: WebSocketLike;
    try {
      socket = new this.#WebSocket(this.#url());
    } catch (error) {
      // A URL the WebSocket refuses will not get better by retrying.
      this.#finish(1006, '', HuddleError.client('HandshakeFailed', `cannot open a WebSocket to ${this.url}: ${String(error)}`));
      return;
    }
    socket.binaryType = 'arraybuffer';
    const attempt: Attempt = { socket, welcomed: false, timer: null };
    this.#attempt = attempt;
    attempt.timer = setTimeout(() => {
      attempt.timer = null;
      // Its close event (1006) then counts it as a failed handshake.
      if (!attempt.welcomed) socket.close();
    }, this.#connectTimeoutMs);
    socket.onmessage = (event: { data: unknown }) => this.#receive({ attempt, kind: 'frame', data: event.data });
    socket.onclose = (event: { code?: number; reason?: string }) =>
      this.#receive({ attempt, kind: 'close', code: event.code ?? 1006, reason: event.reason ?? '' });
    // A close event follows every error; ws (Node) would throw an error event nobody listens to.
    socket.onerror = () => {};
  }

  /** Queues what a socket delivered: one item per task (see `runInNextTask`), closes in order. */
  #receive(item: InboxItem): void {
    if (this.#draining) {
      this.#inbox.push(item);
      return;
    }
    this.#draining = true;
    this.#handle(item);
    runInNextTask(() => this.#drainOne());
  }

  #drainOne(): void {
    const item = this.#inbox.shift();
    if (item === undefined) {
      this.#draining = false;
      return;
    }
    this.#handle(item);
    runInNextTask(() => this.#drainOne());
  }

  #handle(item: InboxItem): void {
    if (item.attempt !== this.#attempt) return; // an older socket's leftovers
    if (item.kind === 'close') {
      this.#onClose(item.attempt, item.code, item.reason);
      return;
    }
    if (this.#state === 'closed') return; // close() was called: its socket's last frames are not wanted
    const bytes = binary(item.data);
    if (bytes === null) {
      this.#emit('skipped', { cid: 0n, messageType: 0, reason: 'a text frame (huddle speaks binary frames)' });
      return;
    }
    const frame = decodeFrame(bytes);
    if (frame.kind !== 'message') {
      const reason = frame.kind === 'unknown' ? `message type ${frame.messageType} is unknown to this client` : `malformed frame: ${frame.reason}`;
      if (frame.cid !== 0n && this.#pending.has(frame.cid)) {
        this.#settleWithError(frame.cid, HuddleError.client('UnexpectedReply', reason, frame.cid));
      } else {
        this.#emit('skipped', { cid: frame.cid, messageType: frame.messageType, reason });
      }
      return;
    }
    const message = frame.message;
    if (message.type === 'welcome' && !item.attempt.welcomed) this.#onWelcome(item.attempt, message);
    if (frame.cid !== 0n) {
      this.#settle(frame.cid, message);
      return;
    }
    this.#emit(message.type, message as never);
    this.#emit('message', message);
  }

  #onWelcome(attempt: Attempt, welcome: Inbound<'welcome'>): void {
    attempt.welcomed = true;
    if (attempt.timer !== null) clearTimeout(attempt.timer);
    attempt.timer = null;
    this.#handshakeFailures = 0;
    this.#refreshedInStreak = false;
    this.#retries = 0;
    this.#presence = welcome.presence;
    this.#serverVersion = welcome.serverVersion;
    if (this.#state !== 'closed') this.#state = 'open';
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) waiter.resolve(welcome);
  }

  #onClose(attempt: Attempt, code: number, reason: string): void {
    if (attempt.timer !== null) clearTimeout(attempt.timer);
    this.#attempt = null;
    const suffix = reason ? ` ${reason}` : '';
    this.#failPending(HuddleError.client('ConnectionLost', `the connection closed (${code}${suffix}) before the reply`));
    if (this.#state === 'closed') {
      // close() was called: this is its socket closing.
      this.#emit('closed', { code, reason, byClient: true, error: null });
      const waiters = this.#closeWaiters;
      this.#closeWaiters = [];
      for (const resolve of waiters) resolve();
      return;
    }
    const policy = closePolicy(code, reason);
    if (!attempt.welcomed) {
      this.#handshakeFailures++;
      const failed = HuddleError.client(
        'HandshakeFailed',
        `${this.#handshakeFailures} consecutive connection attempt(s) failed (last close ${code}${suffix}): the server is unreachable or refused the upgrade (bad or expired token, banned, too many sessions)`,
      );
      if (this.#reconnect === null || !policy.reconnect) {
        this.#finish(code, reason, failed);
      } else if (this.#handshakeFailures < this.#reconnect.handshakeFailuresMax) {
        this.#scheduleReconnect(code, reason, policy);
      } else if (this.#refreshToken !== undefined && !this.#refreshedInStreak) {
        this.#refreshAndReconnect(code, reason, policy, failed);
      } else {
        this.#finish(code, reason, failed);
      }
      return;
    }
    if (this.#reconnect === null || !policy.reconnect) {
      this.#finish(code, reason, HuddleError.client('Closed', `the server closed the connection (${code}${suffix})`));
      return;
    }
    this.#scheduleReconnect(code, reason, policy);
  }

  #refreshAndReconnect(code: number, reason: string, policy: ClosePolicy, failed: HuddleError): void {
    this.#refreshedInStreak = true;
    this.#state = 'reconnecting';
    const refresh = this.#refreshToken!;
    Promise.resolve()
      .then(() => refresh())
      .then(
        (token) => {
          if (this.#state !== 'reconnecting') return; // closed meanwhile
          if (typeof token !== 'string' || token === '') {
            this.#finish(code, reason, failed);
            return;
          }
          this.#token = token;
          this.#handshakeFailures = 0;
          this.#scheduleReconnect(code, reason, policy);
        },
        (error: unknown) => {
          if (this.#state !== 'reconnecting') return;
          this.#finish(code, reason, HuddleError.client('HandshakeFailed', `${failed.message}; refreshToken failed: ${String(error)}`));
        },
      );
  }

  /** Jittered exponential backoff: a delay between half and all of min(max, initial × 2^retries). */
  #scheduleReconnect(code: number, reason: string, policy: ClosePolicy): void {
    const reconnect = this.#reconnect!;
    const ceiling = Math.min(reconnect.maxDelayMs, reconnect.initialDelayMs * 2 ** this.#retries);
    this.#retries++;
    const delay = Math.round(Math.max(ceiling / 2 + (Math.random() * ceiling) / 2, policy.minDelayMs ?? 0));
    this.#state = 'reconnecting';
    this.#emit('disconnected', { code, reason, reconnectInMs: delay, handshakeFailures: this.#handshakeFailures });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#state === 'reconnecting') this.#open();
    }, delay);
  }

  #cancelReconnect(): void {
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
  }

  /** Stops for good (not by `close()`): the client is `closed`, waiters reject with `error`. */
  #finish(code: number, reason: string, error: HuddleError): void {
    this.#state = 'closed';
    this.#cancelReconnect();
    this.#failPending(error);
    this.#failConnectWaiters(error);
    this.#emit('closed', { code, reason, byClient: false, error });
  }

  // ---- requests ----

  #encode(cid: bigint, message: fb.Message, body: (builder: Builder) => number): ArrayBuffer {
    const builder = this.#builder;
    builder.clear();
    const offset = body(builder);
    const envelope = fb.Envelope.createEnvelope(builder, cid, message, offset);
    fb.Envelope.finishEnvelopeBuffer(builder, envelope);
    // A copy: the builder is reused, and ws may still hold a frame it could not write at once.
    return builder.asUint8Array().slice().buffer;
  }

  #settle(cid: bigint, message: Inbound): void {
    const pending = this.#pending.get(cid);
    if (pending === undefined) {
      this.#emit('skipped', { cid, messageType: 0, reason: `a ${message.type} reply to no pending request (it timed out?)` });
      return;
    }
    this.#pending.delete(cid);
    clearTimeout(pending.timer);
    if (message.type === 'error') {
      pending.reject(HuddleError.fromServerReply(message.code, message.message, cid));
    } else if (pending.replies.includes(message.type)) {
      pending.resolve(message);
    } else {
      pending.reject(HuddleError.client('UnexpectedReply', `${pending.name} was answered with ${message.type}`, cid));
    }
  }

  #settleWithError(cid: bigint, error: HuddleError): void {
    const pending = this.#pending.get(cid);
    if (pending === undefined) return;
    this.#pending.delete(cid);
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  #failPending(error: HuddleError): void {
    const pending = [...this.#pending.entries()];
    this.#pending.clear();
    for (const [cid, request] of pending) {
      clearTimeout(request.timer);
      request.reject(new HuddleError(error.code, error.name, `${request.name}: ${error.message}`, false, cid));
    }
  }

  #failConnectWaiters(error: HuddleError): void {
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  #emit<K extends ClientEventName>(type: K, event: ClientEvents[K]): void {
    const set = this.#listeners.get(type);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as (event: ClientEvents[K]) => void)(event);
      } catch (error) {
        // A listener's bug must not stop the client's own bookkeeping; report it as uncaught.
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
}

for (const name of Object.keys(REQUESTS) as RequestName[]) {
  Object.defineProperty(HuddleClient.prototype, name, {
    value: function (this: HuddleClient, args: never, options?: RequestOptions) {
      return this.request(name, args, options);
    },
    writable: true,
    configurable: true,
  });
}

/** A frame's bytes, or null for a text frame. */
function binary(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

/**
 * Creates a client and connects it; resolves once the server's welcome arrived. To listen before
 * the first welcome, use `new HuddleClient(url, token, options)`, `on(…)`, then `connect()`.
 */
export async function connect(url: string, token: string, options: ClientOptions = {}): Promise<HuddleClient> {
  const client = new HuddleClient(url, token, options);
  await client.connect();
  return client;
}
