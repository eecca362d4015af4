// The WebSocket the client drives: the browser's own, or `ws` from npm in Node 20 (which has no
// global WebSocket). Only what both offer is used: the `on…` handler properties, `binaryType`,
// `send` and `close`. Handler parameters are typed loosely so both the DOM's class and ws's
// (whose event types differ) fit without casts.

export interface WebSocketLike {
  binaryType: string;
  /** One binary frame (an ArrayBuffer: what both classes take without conversion). */
  send(data: ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

// Compile-time proof that the browser's WebSocket fits (ws's is proven by the tests, which pass it).
type Fits<T extends true> = T;
type BrowserWebSocketFits = Fits<typeof WebSocket extends WebSocketConstructor ? true : false>;

/** The host's WebSocket, if it has one (browsers, Node >= 22, Deno, Bun). */
export function globalWebSocket(): WebSocketConstructor | undefined {
  const candidate = (globalThis as { WebSocket?: unknown }).WebSocket;
  return typeof candidate === 'function' ? (candidate as WebSocketConstructor) : undefined;
}

/**
 * Runs `task` in a task of its own, after every microtask queued so far. The client handles each
 * received frame in its own task, as browsers deliver them, so an `await` on a reply resumes
 * before the events that follow the reply are emitted (in Node, `ws` emits all frames of one TCP
 * read in one go).
 */
export function runInNextTask(task: () => void): void {
  const host = globalThis as { setImmediate?: (task: () => void) => unknown };
  if (typeof host.setImmediate === 'function') {
    host.setImmediate(task);
    return;
  }
  channelTask(task);
}

let channel: { post: (task: () => void) => void } | undefined;

/** Browsers: a MessageChannel message is a task and, unlike nested setTimeout, is never clamped. */
function channelTask(task: () => void): void {
  if (channel === undefined) {
    if (typeof MessageChannel !== 'function') {
      setTimeout(task, 0);
      return;
    }
    const queue: (() => void)[] = [];
    const ports = new MessageChannel();
    ports.port1.onmessage = () => queue.shift()?.();
    channel = {
      post(next) {
        queue.push(next);
        ports.port2.postMessage(null);
      },
    };
  }
  channel.post(task);
}
