// Test support: the real huddle binary ($HUDDLE_BIN, set by scripts/with-huddle.mjs) on 127.0.0.1,
// tokens minted by `huddle token` with the server's own key file, and clients of the package under
// test (imported by its name, as users do) over `ws`. Every wait has a deadline; nothing sleeps.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import WebSocket from 'ws';
import assert from 'node:assert/strict';
import { HuddleClient, HuddleError, type ClientOptions, type Inbound } from '@huddle/client';

const HUDDLE_BIN = process.env.HUDDLE_BIN ?? '';
/** How long the server may take to print its listening address. */
const START_DEADLINE_MS = 10_000;
/** How long it may take to exit after SIGTERM before it is killed (and the test fails). */
const STOP_DEADLINE_MS = 5_000;
const LOG_KEPT_BYTES = 64 * 1024;

export interface Huddle {
  readonly url: string;
  readonly port: number;
  /** The admin listener's base URL (`http://127.0.0.1:PORT`), null with `adminListen: 'off'`. */
  readonly adminUrl: string | null;
  readonly keyFile: string;
  /** A token this server accepts (`huddle token` with its key file). */
  token(userId: string, username?: string): string;
  /** SIGTERM, then waits for the exit; resolves with the exit code (0 after a clean drain). */
  stop(): Promise<number | null>;
  /** SIGSTOP / SIGCONT: a server that hangs without closing anything. */
  pause(): void;
  resume(): void;
  log(): string;
}

export interface StartOptions {
  /** A fixed port (to restart on the same address); default an OS-chosen one. */
  port?: number;
  /** A key file to share with an earlier server; default a fresh one (a new random key). */
  keyFile?: string;
  /** `--admin-listen`: default an OS-chosen port on loopback (never the fixed 7351 default). */
  adminListen?: string;
  args?: string[];
}

/** Starts `huddle serve` and waits for its "listening on" log line. The test stops it. */
export async function startHuddle(t: TestContext, options: StartOptions = {}): Promise<Huddle> {
  if (!HUDDLE_BIN) throw new Error('HUDDLE_BIN is not set: run the tests with `npm test` (scripts/with-huddle.mjs)');
  const dir = mkdtempSync(join(tmpdir(), 'huddle-ts-'));
  const keyFile = options.keyFile ?? join(dir, 'token.key');
  const listen = `127.0.0.1:${options.port ?? 0}`;
  const adminListen = options.adminListen ?? '127.0.0.1:0';
  const args = ['serve', '--listen', listen, '--admin-listen', adminListen, '--key-file', keyFile, ...(options.args ?? [])];
  const child = spawn(HUDDLE_BIN, args, {
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const [address, adminAddress] = await new Promise<[string, string | null]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`huddle did not listen within ${START_DEADLINE_MS} ms:\n${log}`)), START_DEADLINE_MS);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      log = (log + chunk).slice(-LOG_KEPT_BYTES);
      const game = /listening on ws:\/\/(\S+)\/ws/.exec(log);
      const admin = /admin API listening on http:\/\/(\S+)/.exec(log);
      if (game && (admin || adminListen === 'off')) {
        clearTimeout(timer);
        resolve([game[1]!, admin?.[1] ?? null]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`huddle exited (${code ?? signal}) before listening:\n${log}`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const server: Huddle = {
    url: `ws://${address}/ws`,
    port,
    adminUrl: adminAddress === null ? null : `http://${adminAddress}`,
    keyFile,
    token(userId, username = userId[0]!.toUpperCase() + userId.slice(1)) {
      const out = execFileSync(HUDDLE_BIN, ['token', '--user-id', userId, '--username', username, '--key-file', keyFile], { encoding: 'utf8' });
      return out.trim().split('\n').pop()!;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    pause: () => signal(child, 'SIGSTOP'),
    resume: () => signal(child, 'SIGCONT'),
    log: () => log,
  };
  t.after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

/** A token signed with `tokenKey` (not a server's key file): one no server of these tests accepts. */
export function tokenSignedWith(tokenKey: string, userId: string): string {
  const out = execFileSync(HUDDLE_BIN, ['token', '--user-id', userId, '--token-key', tokenKey], { encoding: 'utf8' });
  return out.trim().split('\n').pop()!;
}

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (!child.kill(name)) throw new Error(`could not send ${name} to huddle`);
}

/** Test defaults: short timeouts so a missing reply fails fast, and fast reconnects. */
export const FAST: ClientOptions = {
  WebSocket,
  requestTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
  reconnect: { initialDelayMs: 20, maxDelayMs: 200, handshakeFailuresMax: 3 },
};

/** A connected client for `userId` (username: the id capitalised), closed when the test ends. */
export async function player(t: TestContext, server: Huddle, userId: string, options: ClientOptions = {}): Promise<HuddleClient> {
  const client = new HuddleClient(server.url, server.token(userId), { ...FAST, ...options });
  t.after(() => client.close());
  await client.connect();
  return client;
}

/** Asserts that `promise` rejects with the server's error `code` / `name`. */
export async function rejectsWith(promise: Promise<unknown>, code: number, name: string): Promise<HuddleError> {
  const error = await promise.then(
    (value) => assert.fail(`expected error ${code} ${name}, got ${JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`),
    (error: unknown) => error,
  );
  assert.ok(error instanceof HuddleError, `a HuddleError, got ${String(error)}`);
  assert.equal(error.code, code);
  assert.equal(error.name, name);
  assert.equal(error.fromServer, true);
  assert.ok(error.message.length > 0);
  return error;
}

/** The server events one client receives, in arrival order. */
export interface Recorder {
  /**
   * The events that arrived before the pong to a fresh ping, taken out of the record: the server
   * answers in order and queues a request's events before its reply, so once another client has
   * its reply, every event that request caused for this client is among them. Nothing sleeps.
   */
  drain(): Promise<Inbound[]>;
}

/** Records every server event (cid 0) `client` receives from now on. */
export function record(client: HuddleClient): Recorder {
  const events: Inbound[] = [];
  client.on('message', (event) => events.push(event));
  return {
    async drain() {
      assert.deepEqual(await client.ping(), { type: 'pong' });
      return events.splice(0);
    },
  };
}
