// The connection's life against the real server: the welcome, reply-before-event ordering,
// timeouts, a server-side close (1001 on SIGTERM) followed by a reconnect to a new server on the
// same port, close codes that forbid reconnecting, refused handshakes and the token refresh.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { HuddleClient, type Disconnected, type WebSocketConstructor } from '@huddle/client';
import { FAST, player, startHuddle, tokenSignedWith, type Huddle } from './huddle.js';

test('the welcome names the session; ping; an event a request causes can be awaited after its reply', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  assert.equal(alice.state, 'open');
  assert.equal(alice.presence!.userId, 'alice');
  assert.equal(alice.presence!.username, 'Alice');
  assert.equal(typeof alice.presence!.sessionId, 'bigint');
  assert.match(alice.serverVersion, /\d+\.\d+/);
  assert.deepEqual(await alice.ping(), { type: 'pong' });

  // The accept's reply and the joins event come back to back; the event is emitted in a later
  // task than the reply, so code that awaits the reply still hears the event it caused.
  const bob = await player(t, server, 'bob');
  const { partyId } = await alice.partyCreate({ open: false, maxSize: 2 });
  const request = alice.next('partyJoinRequest');
  await bob.partyJoin({ partyId });
  await request;
  await alice.partyAccept({ partyId, presence: bob.presence! });
  const joins = await alice.next('partyPresence', { timeoutMs: 5_000 });
  assert.deepEqual(joins.joins, [bob.presence]);
});

test('a request the server does not answer times out; its late reply is skipped; the connection goes on', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  server.pause();
  const skipped = alice.next('skipped', { timeoutMs: 10_000 });
  try {
    await assert.rejects(alice.ping(undefined, { timeoutMs: 200 }), (error: Error) => {
      assert.equal(error.name, 'Timeout');
      assert.match(error.message, /ping got no reply within 200 ms/);
      return true;
    });
  } finally {
    server.resume();
  }
  assert.match((await skipped).reason, /pong reply to no pending request/);
  assert.deepEqual(await alice.ping(), { type: 'pong' });
  await assert.rejects(alice.next('partyData', { timeoutMs: 50 }), { name: 'Timeout' });
});

test('server shutdown: close 1001, then a reconnect to a new server on the same port, as a new session', async (t) => {
  const first = await startHuddle(t);
  const alice = await player(t, first, 'alice', { reconnect: { initialDelayMs: 20, maxDelayMs: 100, handshakeFailuresMax: 1000 } });
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 2 });

  const disconnected = alice.next('disconnected');
  assert.equal(await first.stop(), 0, 'a clean shutdown');
  const event: Disconnected = await disconnected;
  assert.equal(event.code, 1001);
  assert.equal(event.reason, 'server shutting down');
  assert.equal(event.handshakeFailures, 0);
  assert.ok(event.reconnectInMs >= 10 && event.reconnectInMs <= 20, `the first delay is jittered within [initial/2, initial]: ${event.reconnectInMs}`);
  assert.equal(alice.state, 'reconnecting');
  await assert.rejects(alice.ping(), { name: 'NotConnected' });

  const welcome = alice.next('welcome', { timeoutMs: 15_000 });
  await startHuddle(t, { port: first.port, keyFile: first.keyFile });
  const again = await welcome;
  assert.equal(alice.state, 'open');
  // Session ids restart with the server, so the new session shows in its state, not its id.
  assert.deepEqual(alice.presence, again.presence);
  assert.deepEqual(await alice.ping(), { type: 'pong' });
  // A new server, a new session: the old party is gone.
  assert.deepEqual((await alice.partyMyList()).parties, []);
  await assert.rejects(alice.partyGet({ partyId }), { name: 'PartyNotFound' });
});

/** `ws`, remembering its sockets so a test can write what the client never would. */
function recordingWebSocket(): { WebSocket: WebSocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { WebSocket: Recording, sockets };
}

async function expectClosedForGood(client: HuddleClient, close: Promise<unknown>, code: number, reason: RegExp): Promise<void> {
  let disconnects = 0;
  client.on('disconnected', () => disconnects++);
  const closed = client.next('closed');
  await close;
  const event = await closed;
  assert.equal(event.code, code);
  assert.match(event.reason, reason);
  assert.equal(event.byClient, false);
  assert.equal(event.error?.name, 'Closed');
  // The decision is taken when the close arrives: no reconnect was scheduled, none will be.
  assert.equal(disconnects, 0);
  assert.equal(client.state, 'closed');
  await assert.rejects(client.ping(), { name: 'NotConnected' });
}

test('close 1009 (a frame over message_bytes_max): no reconnect, the request rejects with ConnectionLost', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 2 });
  const tooBig = alice.partyDataSend({ partyId, opCode: 1, data: new Uint8Array(20_000) });
  const lost = assert.rejects(tooBig, (error: Error) => {
    assert.equal(error.name, 'ConnectionLost');
    assert.match(error.message, /1009/);
    return true;
  });
  await expectClosedForGood(alice, lost, 1009, /message too big/);
});

test('close 1007 (a text frame that is not UTF-8): no reconnect', async (t) => {
  const server = await startHuddle(t);
  const recording = recordingWebSocket();
  const alice = await player(t, server, 'alice', { WebSocket: recording.WebSocket });
  assert.equal(recording.sockets.length, 1);
  recording.sockets[0]!.send(Buffer.from([0xc3, 0x28]), { binary: false });
  await expectClosedForGood(alice, Promise.resolve(), 1007, /UTF-8/);
  assert.equal(recording.sockets.length, 1, 'no second socket was opened');
});

test('refused handshakes (a token the server rejects): the client gives up after handshakeFailuresMax', async (t) => {
  const server = await startHuddle(t);
  const client = new HuddleClient(server.url, tokenSignedWith('not-the-server-key', 'mallory'), FAST);
  t.after(() => client.close());
  const disconnects: Disconnected[] = [];
  client.on('disconnected', (e) => disconnects.push(e));
  const closed = client.next('closed');
  await assert.rejects(client.connect(), (error: Error) => {
    assert.equal(error.name, 'HandshakeFailed');
    assert.match(error.message, /3 consecutive connection attempt/);
    return true;
  });
  assert.deepEqual(
    disconnects.map((d) => [d.code, d.handshakeFailures]),
    [
      [1006, 1],
      [1006, 2],
    ],
  );
  const event = await closed;
  assert.equal(event.error?.name, 'HandshakeFailed');
  assert.equal(client.state, 'closed');
});

test('token refresh: after failed handshakes the client asks for a token once and reconnects with it', async (t) => {
  const first = await startHuddle(t);
  let second: Promise<Huddle> | undefined;
  const refreshes: string[] = [];
  const alice = await player(t, first, 'alice', {
    async refreshToken() {
      refreshes.push(alice.token);
      // The second server has another key: only its token works there.
      return (await second!).token('alice');
    },
  });
  const welcome = alice.next('welcome', { timeoutMs: 15_000 });
  await first.stop();
  second = startHuddle(t, { port: first.port });
  await second;
  const again = await welcome;
  assert.equal(refreshes.length, 1, 'one refresh for one streak of failed handshakes');
  assert.notEqual(alice.token, refreshes[0]);
  assert.equal(again.presence.userId, 'alice');
  assert.deepEqual(await alice.ping(), { type: 'pong' });
});

test('close(): pending requests reject with Closed, no reconnect; a closed client can connect again', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const before = alice.presence!.sessionId;
  const closed = alice.next('closed');
  const pending = alice.ping();
  const closing = alice.close();
  await assert.rejects(pending, { name: 'Closed' });
  await closing;
  assert.deepEqual(await closed, { code: 1000, reason: '', byClient: true, error: null });
  assert.equal(alice.state, 'closed');
  await assert.rejects(alice.ping(), { name: 'NotConnected' });

  const welcome = await alice.connect();
  assert.notEqual(welcome.presence.sessionId, before);
  assert.deepEqual(await alice.ping(), { type: 'pong' });
});

test('token refresh on the first connect: a refused token is replaced and connect() resolves', async (t) => {
  const server = await startHuddle(t);
  let refreshes = 0;
  const client = new HuddleClient(server.url, tokenSignedWith('expired-or-foreign', 'alice'), {
    ...FAST,
    refreshToken: () => {
      refreshes++;
      return server.token('alice');
    },
  });
  t.after(() => client.close());
  const welcome = await client.connect();
  assert.equal(welcome.presence.userId, 'alice');
  assert.equal(refreshes, 1);
  assert.deepEqual(await client.ping(), { type: 'pong' });
});
