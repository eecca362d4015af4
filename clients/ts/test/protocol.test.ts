// The client's tables against the generated code, without a server: every union member is claimed
// once, ids and numbers are checked where they enter, error codes get their schema names, and the
// close-code policy says what the README's table says.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Builder, ByteBuffer } from 'flatbuffers';
import WebSocket from 'ws';
import {
  closePolicy,
  decodeFrame,
  errorCodeName,
  ErrorCode,
  fb,
  HuddleClient,
  INBOUND,
  isPartyId,
  partyIdFromHex,
  partyIdToHex,
  REQUESTS,
} from '@huddle/client';

test('every member of the Message union is either a request or a server message, exactly once', () => {
  const members = Object.values(fb.Message).filter((v): v is number => typeof v === 'number' && v !== fb.Message.NONE);
  const claimed = [...Object.values(REQUESTS).map((r) => r.message), ...Object.values(INBOUND).map((r) => r.message)];
  assert.deepEqual([...claimed].sort((a, b) => a - b), [...members].sort((a, b) => a - b));
});

test('request and message names are the schema names in lowerCamelCase', () => {
  for (const [name, spec] of [...Object.entries(REQUESTS), ...Object.entries(INBOUND)]) {
    const schemaName = fb.Message[spec.message]!;
    assert.equal(name, schemaName[0]!.toLowerCase() + schemaName.slice(1));
  }
});

test('party ids are 32 hex digits, hi first, and round-trip', () => {
  const hi = 0x0123456789abcdefn;
  const lo = 0xfedcba9876543210n;
  const hex = partyIdToHex(hi, lo);
  assert.equal(hex, '0123456789abcdeffedcba9876543210');
  assert.deepEqual(partyIdFromHex(hex), { hi, lo });
  assert.deepEqual(partyIdFromHex(hex.toUpperCase()), { hi, lo });
  assert.equal(partyIdToHex(0n, 1n), '00000000000000000000000000000001');
  assert.equal(isPartyId(hex), true);
  for (const bad of ['', hex.slice(1), hex + '0', 'g'.repeat(32), ` ${hex.slice(1)}`]) {
    assert.equal(isPartyId(bad), false);
    assert.throws(() => partyIdFromHex(bad), TypeError);
  }
});

test('error codes are named after the schema; codes newer than the client are Unknown', () => {
  assert.equal(errorCodeName(201), 'PartyNotFound');
  assert.equal(errorCodeName(ErrorCode.SearchQueryInvalid), 'SearchQueryInvalid');
  assert.equal(errorCodeName(300), 'LimitExceeded');
  assert.equal(errorCodeName(65535), 'Unknown');
  // Lobby I (240–248), as the main README's error table names them.
  assert.deepEqual(
    [240, 241, 242, 243, 244, 245, 246, 247, 248].map(errorCodeName),
    [
      'PartyAlreadyInParty',
      'PartyJoinNotAllowed',
      'PartyNotInvited',
      'InviteeIsSelf',
      'InviteeInvalid',
      'InviteeInParty',
      'InvitationNotFound',
      'PartyCodeNotFound',
      'InvitationCancelNotAllowed',
    ],
  );
});

test('strategies: absent is Unset on the wire (create: the defaults, update: unchanged); unknown names are TypeErrors', () => {
  const read = (encode: (b: Builder) => number) => {
    const b = new Builder(128);
    fb.Envelope.finishEnvelopeBuffer(b, fb.Envelope.createEnvelope(b, 1n, fb.Message.PartyUpdate, encode(b)));
    const envelope = fb.Envelope.getRootAsEnvelope(new ByteBuffer(b.asUint8Array()));
    const update = envelope.message(new fb.PartyUpdate()) as fb.PartyUpdate;
    return [update.joinStrategy(), update.inviteStrategy(), update.open()];
  };
  const partyId = '0'.repeat(32);
  assert.deepEqual(read((b) => REQUESTS.partyUpdate.encode(b, { partyId })), [fb.PartyJoinStrategy.Unset, fb.PartyInviteStrategy.Unset, fb.Toggle.Unset]);
  assert.deepEqual(read((b) => REQUESTS.partyUpdate.encode(b, { partyId, joinStrategy: 'InvitedOnly' })), [fb.PartyJoinStrategy.InvitedOnly, fb.PartyInviteStrategy.Unset, fb.Toggle.Unset]);
  assert.deepEqual(read((b) => REQUESTS.partyUpdate.encode(b, { partyId, inviteStrategy: 'LeaderOnly' })), [fb.PartyJoinStrategy.Unset, fb.PartyInviteStrategy.LeaderOnly, fb.Toggle.Unset]);
  const b = new Builder(64);
  for (const bad of ['Unset', 'public', '1', 1]) {
    b.clear();
    assert.throws(() => REQUESTS.partyUpdate.encode(b, { partyId, joinStrategy: bad as never }), /joinStrategy must be one of Public, FriendsOfLeader/);
    b.clear();
    assert.throws(() => REQUESTS.partyCreate.encode(b, { open: true, maxSize: 2, inviteStrategy: bad as never }), TypeError);
  }
});

test('close codes: no reconnect after 1002, 1007, 1009 or a ban; 1008 waits; the rest reconnect', () => {
  for (const code of [1002, 1007, 1009]) assert.equal(closePolicy(code, '').reconnect, false, `close ${code}`);
  assert.equal(closePolicy(1008, 'banned').reconnect, false);
  assert.deepEqual(closePolicy(1008, 'request rate limit'), { reconnect: true, minDelayMs: 1000 });
  for (const code of [1000, 1001, 1006, 1011, 4000]) assert.equal(closePolicy(code, 'whatever').reconnect, true, `close ${code}`);
});

test('server frames decode into plain objects; unknown and broken frames are reported, not thrown', () => {
  const b = new Builder(256);
  const userId = b.createString('alice');
  const username = b.createString('Alice');
  const sender = fb.Presence.createPresence(b, userId, 18446744073709551615n, username);
  const data = fb.PartyData.createDataVector(b, new Uint8Array([1, 2, 3]));
  fb.PartyData.startPartyData(b);
  fb.PartyData.addPartyId(b, fb.PartyId.createPartyId(b, 1n, 2n));
  fb.PartyData.addSender(b, sender);
  fb.PartyData.addOpCode(b, -5n);
  fb.PartyData.addData(b, data);
  const body = fb.PartyData.endPartyData(b);
  fb.Envelope.finishEnvelopeBuffer(b, fb.Envelope.createEnvelope(b, 0n, fb.Message.PartyData, body));
  const frame = decodeFrame(b.asUint8Array());
  assert.equal(frame.kind, 'message');
  assert.ok(frame.kind === 'message' && frame.message.type === 'partyData');
  const message = frame.message;
  assert.equal(message.partyId, '00000000000000010000000000000002');
  assert.deepEqual(message.sender, { userId: 'alice', sessionId: 18446744073709551615n, username: 'Alice' });
  assert.equal(message.opCode, -5n);
  assert.deepEqual([...message.data], [1, 2, 3]);

  b.clear();
  fb.Envelope.startEnvelope(b);
  fb.Envelope.addCid(b, 9n);
  fb.Envelope.addMessageType(b, 250 as fb.Message);
  fb.Envelope.finishEnvelopeBuffer(b, fb.Envelope.endEnvelope(b));
  assert.deepEqual(decodeFrame(b.asUint8Array()), { kind: 'unknown', cid: 9n, messageType: 250 });

  // A reply type without its body (the generated readers do not verify; required parts are checked).
  b.clear();
  fb.Envelope.startEnvelope(b);
  fb.Envelope.addCid(b, 3n);
  fb.Envelope.addMessageType(b, fb.Message.PartyOk);
  fb.Envelope.finishEnvelopeBuffer(b, fb.Envelope.endEnvelope(b));
  assert.deepEqual(decodeFrame(b.asUint8Array()), { kind: 'malformed', cid: 3n, messageType: fb.Message.PartyOk, reason: 'PartyOk without a body' });
  // Garbage: never a throw, never a message.
  for (const garbage of [new Uint8Array(0), new Uint8Array([200, 0, 0, 0, 1, 2]), new Uint8Array(64).fill(255)]) {
    assert.notEqual(decodeFrame(garbage).kind, 'message');
  }
});

test('bad arguments reject with a TypeError before anything is sent', async () => {
  // The encoders check before they write (`request` rejects with what they throw); the end-to-end
  // tests show that a rejected request leaves the connection usable.
  const b = new Builder(64);
  assert.throws(() => REQUESTS.partyJoin.encode(b, { partyId: 'not-a-party' }), TypeError);
  b.clear();
  assert.throws(() => REQUESTS.partyCreate.encode(b, { open: true, maxSize: -1 }), TypeError);
  b.clear();
  assert.throws(() => REQUESTS.partyCreate.encode(b, { open: 'yes' as unknown as boolean, maxSize: 4 }), TypeError);
  b.clear();
  assert.throws(
    () => REQUESTS.partyDataSend.encode(b, { partyId: '0'.repeat(32), opCode: 2n ** 63n, data: new Uint8Array() }),
    TypeError,
  );
  b.clear();
  assert.throws(
    () => REQUESTS.partyAccept.encode(b, { partyId: '0'.repeat(32), presence: { userId: 'a', username: 'A', sessionId: -1n } }),
    TypeError,
  );
  // Not connected: requests reject with NotConnected and fire-and-forget sends nothing.
  const client = new HuddleClient('ws://127.0.0.1:9/ws', 'token', { WebSocket });
  await assert.rejects(client.ping(), { name: 'NotConnected', code: 0, fromServer: false });
  assert.equal(client.partyDataFireAndForget({ partyId: '0'.repeat(32), opCode: 1, data: 'x' }), false);
});

test('the URL gets /ws when it has no path; the WebSocket class is required in Node 20', () => {
  assert.equal(new HuddleClient('ws://127.0.0.1:7350', 't', { WebSocket }).url, 'ws://127.0.0.1:7350/ws');
  assert.equal(new HuddleClient('wss://play.example.com/huddle/ws', 't', { WebSocket }).url, 'wss://play.example.com/huddle/ws');
  assert.throws(() => new HuddleClient('not a url', 't', { WebSocket }), TypeError);
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
    assert.throws(() => new HuddleClient('ws://127.0.0.1:7350/ws', 't'), /pass \{ WebSocket \}/);
  }
});
