// Test support: start the real huddle binary on a free port, mint tokens with it, stop it.
// The binary comes from $HUDDLE_BIN (built once, e.g. `cargo build --release`, and shared by every
// Node test), so the tests drive exactly what users run.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The huddle binary under test; the tests that need it are skipped when it is not set. */
export const HUDDLE_BIN = process.env.HUDDLE_BIN ?? '';

/** How long the server may take to print its listening address. */
const START_DEADLINE_MS = 10_000;
/** How long it may take to exit after SIGTERM. */
const STOP_DEADLINE_MS = 5_000;
/** Server log kept for failure messages (the rest is drained and dropped, so the pipe never fills). */
const LOG_KEPT_BYTES = 64 * 1024;

/**
 * Starts `huddle serve` on 127.0.0.1 with an OS-chosen port and a fresh key file, and waits (up to
 * a deadline, never a fixed sleep) for the log line naming its address.
 */
export async function startHuddle(extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'huddle-nakama-js-'));
  const keyFile = join(dir, 'token.key');
  const child = spawn(HUDDLE_BIN, ['serve', '--listen', '127.0.0.1:0', '--admin-listen', 'off', '--key-file', keyFile, ...extraArgs], {
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.setEncoding('utf8');
  const address = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`huddle did not listen within ${START_DEADLINE_MS} ms:\n${log}`)), START_DEADLINE_MS);
    child.stderr.on('data', (chunk) => {
      log = (log + chunk).slice(-LOG_KEPT_BYTES);
      const found = /listening on ws:\/\/(\S+)\/ws/.exec(log);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`huddle exited (${code ?? signal}) before listening:\n${log}`));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  let listening;
  try {
    listening = await address;
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const colon = listening.lastIndexOf(':');
  return {
    host: listening.slice(0, colon),
    port: listening.slice(colon + 1),
    log: () => log,
    /** A token the server accepts, minted by `huddle token` with the server's key (Nakama's claims). */
    mintToken(userId, username) {
      const out = execFileSync(HUDDLE_BIN, ['token', '--user-id', userId, '--username', username, '--key-file', keyFile], {
        encoding: 'utf8',
      });
      return out.trim().split('\n').pop();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
