// The official Nakama JavaScript SDK against the real huddle binary (SPEC K-1).
//
// What it proves, once phase 2 wires the JSON codec into the server: a game written against
// nakama-js 2.8.0 (the version the reference traces in tests/fixtures/nakama/ were recorded with)
// restores a session from a huddle-minted token, connects with the SDK's own URL
// (`/ws?lang=en&status=true&token=…`, no `format`), and drives parties and status with every SDK
// callback checked. Each test starts its own server on 127.0.0.1:0 and waits on deadlines.
//
// Today it cannot pass: huddle speaks FlatBuffers on every connection. The upgrade, the token and
// Session.restore already work, but huddle's first frame (its binary welcome) makes nakama-js's
// JSON.parse throw outside any promise, and text frames get error 104. The tests are skipped until
// phase 2; remove the skip (PENDING) then.
//
// Run: cd tests/nakama-js && npm ci --ignore-scripts && HUDDLE_BIN=../../target/release/huddle npm test

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, Session } from '@heroiclabs/nakama-js';
import { HUDDLE_BIN, startHuddle } from './huddle.mjs';

// nakama-js opens its socket with the browser's global WebSocket, which Node 20 lacks.
globalThis.WebSocket = WebSocket;

const PENDING = 'phase 2: huddle does not speak Nakama JSON on its sockets yet (binary frames only; text frames get error 104)';
const skip = PENDING || (HUDDLE_BIN ? false : 'set HUDDLE_BIN to the huddle binary');

/** Waits for the next call of `socket[callback]`, failing after `ms` instead of hanging. */
function nextCall(socket, callback, ms = 5_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${callback} did not fire within ${ms} ms`)), ms);
    socket[callback] = (payload) => {
      clearTimeout(timer);
      resolve(payload);
    };
  });
}

/** A user of the game: a session restored from a huddle token and a connected socket. */
async function connect(server, userId, username) {
  // No refresh token: huddle mints only session tokens. Session.restore reads uid, usn and exp.
  const session = Session.restore(server.mintToken(userId, username), '');
  assert.equal(session.user_id, userId);
  assert.equal(session.username, username);
  const client = new Client('defaultkey', server.host, server.port, false);
  const socket = client.createSocket(false, false);
  const statusPresence = nextCall(socket, 'onstatuspresence');
  await socket.connect(session, true);
  // `status=true`: the server announces the session's own status presence first (Nakama does too).
  const own = await statusPresence;
  assert.equal(own.joins[0].user_id, userId);
  return { session, socket };
}

test('a restored session connects, creates a party and another user joins it', { skip }, async (t) => {
  const server = await startHuddle();
  t.after(() => server.stop());
  const alice = await connect(server, 'alice-id', 'alice');
  const bob = await connect(server, 'bob-id', 'bob');
  t.after(() => {
    alice.socket.disconnect(false);
    bob.socket.disconnect(false);
  });

  const aliceParty = nextCall(alice.socket, 'onparty');
  const party = await alice.socket.createParty(true, 4);
  assert.equal(party.max_size, 4);
  assert.equal(party.leader.user_id, 'alice-id');
  assert.match(party.party_id, /^[0-9a-f-]{36}\.huddle$/);
  assert.deepEqual(await aliceParty, party);

  const bobParty = nextCall(bob.socket, 'onparty');
  const aliceSeesBob = nextCall(alice.socket, 'onpartypresence');
  await bob.socket.joinParty(party.party_id);
  assert.deepEqual((await bobParty).presences.map((p) => p.user_id), ['alice-id', 'bob-id']);
  assert.equal((await aliceSeesBob).joins[0].user_id, 'bob-id');
});
