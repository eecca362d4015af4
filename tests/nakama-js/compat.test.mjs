// The official Nakama JavaScript SDK against the real huddle binary (SPEC K-1).
//
// What it proves: a game written against nakama-js 2.8.0 (the version the reference frames in
// tests/fixtures/nakama/ were recorded with, pinned in package.json) restores sessions from
// huddle-minted tokens, connects with the SDK's own URL (`/ws?lang=en&status=true&token=…`, no
// `format`), and drives huddle's parties and status unchanged: create, open join, closed join
// with request, accept and reject, party data both ways, promote, leader rotation on leave, kick,
// close, update, status update, follow and unfollow, and the SDK's error path.
//
// How: one huddle binary ($HUDDLE_BIN, built once by CI and shared) on 127.0.0.1 with an
// OS-chosen port; every user a restored session with its own socket. Every callback the SDK can
// fire is recorded in arrival order, and a test takes each one it expects, in order, checking its
// payload; `quiet()` sends a ping and, once its pong is in, asserts no other callback fired (the
// server answers in order, so anything sent before the pong was dispatched first). So a callback
// that fires unexpectedly fails the test. Every wait has a deadline; none is a sleep.
//
// Run: cd tests/nakama-js && npm ci --ignore-scripts && HUDDLE_BIN=../../target/release/huddle npm test
// (`npm test` is `node --test --test-force-exit`: nakama-js never clears its 30 s connect timer
// nor the 10 s timer of each request, which would keep the process alive that long after the
// last test.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, Session } from '@heroiclabs/nakama-js';
import { HUDDLE_BIN, startHuddle } from './huddle.mjs';

// nakama-js opens its socket with the browser's global WebSocket, which Node 20 lacks.
globalThis.WebSocket = WebSocket;

const skip = HUDDLE_BIN ? false : 'set HUDDLE_BIN to the huddle binary';

/** Longest wait for any one callback or promise. */
const WAIT_MS = 5_000;

/** Every callback of nakama-js 2.8.0's socket that a server message (or the socket) can fire. */
const CALLBACKS = [
  'ondisconnect', 'onerror', 'onheartbeattimeout', 'onnotification', 'onchannelmessage',
  'onchannelpresence', 'onmatchdata', 'onmatchpresence', 'onmatchmakerticket', 'onmatchmakermatched',
  'onparty', 'onpartyclose', 'onpartydata', 'onpartyjoinrequest', 'onpartyleader',
  'onpartymatchmakerticket', 'onpartypresence', 'onstatuspresence', 'onstreampresence', 'onstreamdata',
];

/** Fails after `ms` instead of hanging. */
function within(promise, what, ms = WAIT_MS) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A user of the game: a session restored from a huddle token, a connected socket, its callbacks. */
class Player {
  static async connect(server, userId, username, { status = true } = {}) {
    // No refresh token: huddle mints session tokens only. Session.restore reads uid, usn and exp.
    const session = Session.restore(server.mintToken(userId, username), '');
    assert.equal(session.user_id, userId);
    assert.equal(session.username, username);
    assert.ok(!session.isexpired(Date.now() / 1000), 'a fresh token');
    // Only host and port are used: huddle serves the realtime socket, not Nakama's REST API.
    const client = new Client('defaultkey', server.host, server.port, false);
    const player = new Player(userId, username, client.createSocket(false, false));
    await within(player.socket.connect(session, status), `${username} connects`);
    if (status) {
      // `status=true`: the session's own status presence comes first, as from Nakama.
      const own = await player.expect('onstatuspresence');
      assert.deepEqual(own.joins.map((p) => [p.user_id, p.username, p.status]), [[userId, username, '']]);
      assert.equal(own.leaves, undefined);
      player.presence = { user_id: userId, session_id: own.joins[0].session_id, username };
    }
    return player;
  }

  constructor(userId, username, socket) {
    this.userId = userId;
    this.username = username;
    this.socket = socket;
    this.fired = [];
    this.wake = null;
    for (const name of CALLBACKS) {
      socket[name] = (payload) => {
        this.fired.push({ name, payload });
        this.wake?.();
      };
    }
  }

  /** The next callback that fired, which must be `name`; its payload. */
  async expect(name) {
    const deadline = Date.now() + WAIT_MS;
    while (this.fired.length === 0) {
      const left = deadline - Date.now();
      assert.ok(left > 0, `${this.username}: ${name} did not fire within ${WAIT_MS} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    const { name: got, payload } = this.fired.shift();
    assert.equal(got, name, `${this.username}: expected ${name}, ${got} fired: ${JSON.stringify(payload)}`);
    return payload;
  }

  /** Asserts that no callback fired that the test has not taken, up to a ping's round trip. */
  async quiet() {
    await within(this.socket.send({ ping: {} }), `${this.username} ping`);
    assert.deepEqual(this.fired, [], `${this.username}: callbacks fired that nobody expected`);
  }

  disconnect() {
    this.socket.disconnect(false);
  }
}

/** A presence as nakama-js hands it back (`party.self`, event presences). */
const presenceOf = (player) => player.presence;

let server;
const players = [];

before(async () => {
  if (skip) return;
  server = await startHuddle();
});

after(async () => {
  for (const player of players) player.disconnect();
  await server?.stop();
});

/** Connects a player for this test (user ids are unique per test, so tests do not meet). */
async function player(userId, options) {
  const connected = await Player.connect(server, userId, `${userId}-name`, options);
  players.push(connected);
  return connected;
}

test('restored sessions connect with the SDK URL; create, open join, party data both ways', { skip }, async () => {
  const alice = await player('j1-alice');
  const bob = await player('j1-bob');

  const party = await within(alice.socket.createParty(true, 4), 'createParty');
  assert.match(party.party_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.huddle$/);
  assert.equal(party.open, true);
  assert.equal(party.max_size, 4);
  assert.deepEqual(party.self, presenceOf(alice));
  assert.deepEqual(party.leader, presenceOf(alice));
  assert.deepEqual(party.presences, [presenceOf(alice)]);
  // As from Nakama 3.40: the created party is pushed again, with the creator's own join.
  assert.deepEqual(await alice.expect('onparty'), party);
  assert.deepEqual(await alice.expect('onpartypresence'), { party_id: party.party_id, joins: [presenceOf(alice)] });

  await within(bob.socket.joinParty(party.party_id), 'joinParty');
  const joined = await bob.expect('onparty');
  assert.deepEqual(joined, { ...party, self: presenceOf(bob), presences: [presenceOf(alice), presenceOf(bob)] });
  assert.deepEqual(await bob.expect('onpartypresence'), { party_id: party.party_id, joins: [presenceOf(bob)] });
  assert.deepEqual(await alice.expect('onpartypresence'), { party_id: party.party_id, joins: [presenceOf(bob)] });

  // Party data as the SDK sends it (no cid; the promise resolves at once): a string one way…
  await alice.socket.sendPartyData(party.party_id, 1, '{"hello":"from A"}');
  const fromAlice = await bob.expect('onpartydata');
  assert.equal(fromAlice.party_id, party.party_id);
  assert.deepEqual(fromAlice.presence, presenceOf(alice));
  assert.equal(fromAlice.op_code, 1);
  assert.equal(new TextDecoder().decode(fromAlice.data), '{"hello":"from A"}');
  // …bytes the other, with a negative op code.
  await bob.socket.sendPartyData(party.party_id, -2, new Uint8Array([1, 2, 3, 255]));
  const fromBob = await alice.expect('onpartydata');
  assert.deepEqual(fromBob.presence, presenceOf(bob));
  assert.equal(fromBob.op_code, -2);
  assert.deepEqual([...fromBob.data], [1, 2, 3, 255]);

  await alice.quiet();
  await bob.quiet();
});

test('closed join: request, list, accept, reject; promote; leader rotation on leave', { skip }, async () => {
  const alice = await player('j2-alice');
  const bob = await player('j2-bob');
  const carol = await player('j2-carol');
  const party = await within(alice.socket.createParty(false, 4), 'createParty');
  assert.equal(party.open, undefined, 'protojson leaves false out, as Nakama does');
  await alice.expect('onparty');
  await alice.expect('onpartypresence');

  // Bob asks: his promise resolves, the leader is told.
  await within(bob.socket.joinParty(party.party_id), 'joinParty (closed)');
  const request = await alice.expect('onpartyjoinrequest');
  assert.deepEqual(request, { party_id: party.party_id, presences: [presenceOf(bob)] });
  const listed = await within(alice.socket.listPartyJoinRequests(party.party_id), 'listPartyJoinRequests');
  assert.deepEqual(listed, request);

  await within(alice.socket.acceptPartyMember(party.party_id, request.presences[0]), 'acceptPartyMember');
  assert.deepEqual(await alice.expect('onpartypresence'), { party_id: party.party_id, joins: [presenceOf(bob)] });
  const bobsParty = await bob.expect('onparty');
  assert.deepEqual(bobsParty.self, presenceOf(bob));
  assert.deepEqual(bobsParty.leader, presenceOf(alice));
  assert.deepEqual(bobsParty.presences, [presenceOf(alice), presenceOf(bob)]);
  assert.deepEqual(await bob.expect('onpartypresence'), { party_id: party.party_id, joins: [presenceOf(bob)] });

  // Carol asks and is rejected: silence for her, as in Nakama.
  await within(carol.socket.joinParty(party.party_id), 'joinParty (carol)');
  const carolsRequest = await alice.expect('onpartyjoinrequest');
  await within(alice.socket.removePartyMember(party.party_id, carolsRequest.presences[0]), 'reject');
  await carol.quiet();

  // Promote: the SDK reads `party_leader` from the ack, which Nakama's ack lacks too.
  const promoted = await within(alice.socket.promotePartyMember(party.party_id, presenceOf(bob)), 'promote');
  assert.equal(promoted, undefined);
  const leader = { party_id: party.party_id, presence: presenceOf(bob) };
  assert.deepEqual(await alice.expect('onpartyleader'), leader);
  assert.deepEqual(await bob.expect('onpartyleader'), leader);

  // The leader leaves: the longest-tenured member leads.
  await within(carol.socket.joinParty(party.party_id), 'joinParty (carol again)');
  const again = await bob.expect('onpartyjoinrequest');
  await within(bob.socket.acceptPartyMember(party.party_id, again.presences[0]), 'accept carol');
  await bob.expect('onpartypresence');
  await alice.expect('onpartypresence');
  await carol.expect('onparty');
  await carol.expect('onpartypresence');
  await within(bob.socket.leaveParty(party.party_id), 'leaveParty');
  for (const member of [alice, carol]) {
    assert.deepEqual(await member.expect('onpartyleader'), { party_id: party.party_id, presence: presenceOf(alice) });
    assert.deepEqual(await member.expect('onpartypresence'), { party_id: party.party_id, leaves: [presenceOf(bob)] });
  }
  for (const p of [alice, bob, carol]) await p.quiet();
});

test('kick, update and close', { skip }, async () => {
  const alice = await player('j3-alice');
  const bob = await player('j3-bob');
  const carol = await player('j3-carol');
  const dave = await player('j3-dave');
  const party = await within(alice.socket.createParty(true, 4), 'createParty');
  await alice.expect('onparty');
  await alice.expect('onpartypresence');
  for (const joiner of [bob, carol]) {
    await within(joiner.socket.joinParty(party.party_id), 'joinParty');
    await joiner.expect('onparty');
    await joiner.expect('onpartypresence');
  }
  await alice.expect('onpartypresence');
  await alice.expect('onpartypresence');
  await bob.expect('onpartypresence');

  // Kick: the kicked member hears `party_close`, the others its leave.
  await within(alice.socket.removePartyMember(party.party_id, presenceOf(bob)), 'kick');
  assert.deepEqual(await bob.expect('onpartyclose'), { party_id: party.party_id });
  for (const member of [alice, carol]) {
    assert.deepEqual(await member.expect('onpartypresence'), { party_id: party.party_id, leaves: [presenceOf(bob)] });
  }

  // Update: nakama-js 2.8.0 has no method (the .NET SDK has UpdatePartyAsync); the socket's own
  // send takes Nakama's message. A full replace; the SDK drops the `party_update` event it has no
  // callback for, and the change shows in the next joiner's party.
  const label = '{"mode":"ranked"}';
  await within(alice.socket.send({ party_update: { party_id: party.party_id, label, open: true } }), 'party_update');
  await within(dave.socket.joinParty(party.party_id), 'joinParty (dave)');
  const davesParty = await dave.expect('onparty');
  assert.equal(davesParty.label, label);
  assert.equal(davesParty.open, true);
  await dave.expect('onpartypresence');
  await alice.expect('onpartypresence');
  await carol.expect('onpartypresence');

  // Refusals reject the SDK's promise with Nakama's code and text.
  await assert.rejects(carol.socket.closeParty(party.party_id), { code: 3, message: 'Error closing party: party leader only' });

  // Close: every member hears it, the closer included.
  await within(alice.socket.closeParty(party.party_id), 'closeParty');
  for (const member of [alice, carol, dave]) {
    assert.deepEqual(await member.expect('onpartyclose'), { party_id: party.party_id });
  }
  await assert.rejects(bob.socket.joinParty(party.party_id), { code: 3, message: 'Error joining party: party not found' });
  await assert.rejects(bob.socket.createParty(true, 0), { code: 3, message: 'Invalid party max size, must be 1-256' });
  for (const p of [alice, bob, carol, dave]) await p.quiet();
});

test('status: update, follow, unfollow', { skip }, async () => {
  const alice = await player('j4-alice');
  const bob = await player('j4-bob');
  const carol = await player('j4-carol', { status: false });

  const followed = await within(bob.socket.followUsers([alice.userId, carol.userId]), 'followUsers');
  // Carol connected without status: not visible.
  assert.deepEqual(followed, { presences: [{ ...presenceOf(alice), status: '' }] });

  await within(alice.socket.updateStatus('in lobby'), 'updateStatus');
  const change = { joins: [{ ...presenceOf(alice), status: 'in lobby' }], leaves: [{ ...presenceOf(alice), status: '' }] };
  assert.deepEqual(await alice.expect('onstatuspresence'), change, 'the session sees its own change');
  assert.deepEqual(await bob.expect('onstatuspresence'), change);

  // No status: appear offline, a leave only.
  await within(alice.socket.updateStatus(), 'updateStatus()');
  const offline = { leaves: [{ ...presenceOf(alice), status: 'in lobby' }] };
  assert.deepEqual(await alice.expect('onstatuspresence'), offline);
  assert.deepEqual(await bob.expect('onstatuspresence'), offline);

  await within(bob.socket.unfollowUsers([alice.userId]), 'unfollowUsers');
  await within(alice.socket.updateStatus('back'), 'updateStatus(back)');
  assert.deepEqual((await alice.expect('onstatuspresence')).joins[0].status, 'back');
  for (const p of [alice, bob, carol]) await p.quiet();
});

test('the server going away fires ondisconnect', { skip }, async () => {
  const own = await startHuddle();
  try {
    const player = await Player.connect(own, 'j5-alice', 'j5-alice-name');
    await player.quiet();
    const closed = player.expect('ondisconnect');
    await own.stop();
    const event = await closed;
    assert.equal(event.code, 1001);
    assert.equal(event.reason, 'server shutting down');
  } finally {
    await own.stop();
  }
});
