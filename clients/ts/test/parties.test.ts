// Every party request against the real server, with the events each one causes and the errors it
// maps (code and name). One server per test; each player is a client of the package under test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isPartyId, type Inbound, type HuddleClient } from '@huddle/client';
import { player, rejectsWith, startHuddle } from './huddle.js';

function me(client: HuddleClient) {
  assert.ok(client.presence !== null);
  return client.presence;
}

test('create, open join, get, my parties and leave, with the joins and leaves members see', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');

  const created = await alice.partyCreate({ open: true, maxSize: 4, label: '{"mode":"ctf"}' });
  assert.equal(created.type, 'partyInfo');
  assert.ok(isPartyId(created.partyId), created.partyId);
  assert.deepEqual(
    { open: created.open, hidden: created.hidden, maxSize: created.maxSize, label: created.label },
    { open: true, hidden: false, maxSize: 4, label: '{"mode":"ctf"}' },
  );
  assert.deepEqual(created.leader, me(alice));
  assert.deepEqual(created.members, [me(alice)]);
  assert.equal(created.version, 1n, 'L-9: 1 at create');
  const { partyId } = created;

  const aliceSeesJoin = alice.next('partyPresence');
  const joined = await bob.partyJoin({ partyId });
  assert.ok(joined.type === 'partyInfo', `open join replies with the party, got ${joined.type}`);
  assert.deepEqual(joined.members, [me(alice), me(bob)]);
  assert.equal(joined.version, 2n);
  assert.deepEqual(await aliceSeesJoin, { type: 'partyPresence', partyId, joins: [me(bob)], leaves: [], version: 2n });

  const got = await bob.partyGet({ partyId });
  assert.deepEqual(got.members, [me(alice), me(bob)]);
  const mine = await bob.partyMyList();
  assert.equal(mine.type, 'partyMyListResult');
  assert.deepEqual(mine.parties, [
    { partyId, open: true, hidden: false, maxSize: 4, memberCount: 2, label: '{"mode":"ctf"}', leader: me(alice), version: 2n, joinStrategy: 'Public', inviteStrategy: 'AllMembers' },
  ]);

  const aliceSeesLeave = alice.next('partyPresence');
  assert.deepEqual(await bob.partyLeave({ partyId }), { type: 'partyOk', partyId });
  assert.deepEqual(await aliceSeesLeave, { type: 'partyPresence', partyId, joins: [], leaves: [me(bob)], version: 3n });
  assert.deepEqual((await bob.partyMyList()).parties, []);
});

test('closed party: a join request, the list, accept (partyJoined) and reject (partyRemoved Rejected)', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const { partyId } = await alice.partyCreate({ open: false, maxSize: 3 });

  const request = alice.next('partyJoinRequest');
  assert.deepEqual(await bob.partyJoin({ partyId }), { type: 'partyJoinPending', partyId });
  assert.deepEqual(await request, { type: 'partyJoinRequest', partyId, presences: [me(bob)] });
  await rejectsWith(bob.partyJoin({ partyId }), ErrorCode.PartyJoinRequestDuplicate, 'PartyJoinRequestDuplicate');
  assert.deepEqual(await alice.partyJoinRequestListGet({ partyId }), { type: 'partyJoinRequestList', partyId, presences: [me(bob)] });

  const bobJoined = bob.next('partyJoined');
  const aliceSeesBob = alice.next('partyPresence');
  assert.deepEqual(await alice.partyAccept({ partyId, presence: me(bob) }), { type: 'partyOk', partyId });
  const snapshot = (await bobJoined).party;
  assert.equal(snapshot.partyId, partyId);
  assert.deepEqual(snapshot.members, [me(alice), me(bob)]);
  assert.deepEqual(snapshot.leader, me(alice));
  assert.deepEqual((await aliceSeesBob).joins, [me(bob)]);

  await carol.partyJoin({ partyId });
  const carolRejected = carol.next('partyRemoved');
  await alice.partyRemove({ partyId, presence: me(carol) });
  // A rejected request is no change: the version it was rejected at (2, after bob's accept).
  assert.deepEqual(await carolRejected, { type: 'partyRemoved', partyId, reason: 'Rejected', reasonCode: 3, version: 2n });
  assert.deepEqual((await alice.partyJoinRequestListGet({ partyId })).presences, []);
  // Not a requester any more, and a presence whose user does not match its session.
  await rejectsWith(alice.partyAccept({ partyId, presence: me(carol) }), ErrorCode.PartyPresenceNotFound, 'PartyPresenceNotFound');
  await rejectsWith(alice.partyPromote({ partyId, presence: { ...me(bob), userId: 'mallory' } }), ErrorCode.PartyPresenceMismatch, 'PartyPresenceMismatch');
});

test('promote, kick, leader rotation and close, with the leader, removed and presence events', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 3 });
  for (const joiner of [bob, carol]) {
    const seen = alice.next('partyPresence');
    await joiner.partyJoin({ partyId });
    await seen;
  }

  const leaderEvents = [alice, bob, carol].map((c) => c.next('partyLeader'));
  assert.deepEqual(await alice.partyPromote({ partyId, presence: me(bob) }), { type: 'partyOk', partyId });
  for (const event of await Promise.all(leaderEvents)) assert.deepEqual(event, { type: 'partyLeader', partyId, leader: me(bob), version: 4n });
  await rejectsWith(alice.partyClose({ partyId }), ErrorCode.PartyNotLeader, 'PartyNotLeader');
  await rejectsWith(bob.partyRemove({ partyId, presence: me(bob) }), ErrorCode.PartyCannotRemoveSelf, 'PartyCannotRemoveSelf');

  const carolKicked = carol.next('partyRemoved');
  const aliceSeesKick = alice.next('partyPresence');
  await bob.partyRemove({ partyId, presence: me(carol) });
  assert.deepEqual(await carolKicked, { type: 'partyRemoved', partyId, reason: 'Kicked', reasonCode: 1, version: 5n });
  assert.deepEqual((await aliceSeesKick).leaves, [me(carol)]);
  await rejectsWith(carol.partyGet({ partyId }), ErrorCode.PartyNotMember, 'PartyNotMember');

  // The leader leaves: the longest-tenured member (alice) leads, and hears it before the leave.
  const order: string[] = [];
  const offLeader = alice.on('partyLeader', (e) => order.push(`leader ${e.leader.userId} v${e.version}`));
  const offPresence = alice.on('partyPresence', (e) => order.push(`leaves ${e.leaves.map((p) => p.userId).join()} v${e.version}`));
  const aliceSeesBobLeave = alice.next('partyPresence');
  await bob.partyLeave({ partyId });
  await aliceSeesBobLeave;
  offLeader();
  offPresence();
  assert.deepEqual(order, ['leader alice v6', 'leaves bob v6'], 'one change, one version step');

  const closed = alice.next('partyRemoved');
  await alice.partyClose({ partyId });
  assert.deepEqual(await closed, { type: 'partyRemoved', partyId, reason: 'Closed', reasonCode: 2, version: 7n });
  await rejectsWith(alice.partyGet({ partyId }), ErrorCode.PartyNotFound, 'PartyNotFound');
});

test('update: absent fields keep their value (Toggle Unset), members get the full settings', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 4, label: '{"mode":"ctf"}' });
  await bob.partyJoin({ partyId });

  const strategies = { joinStrategy: 'Public', inviteStrategy: 'AllMembers' } as const;
  let updated = bob.next('partyUpdated');
  await alice.partyUpdate({ partyId, open: false });
  assert.deepEqual(await updated, { type: 'partyUpdated', partyId, open: false, hidden: false, maxSize: 4, label: '{"mode":"ctf"}', ...strategies, version: 3n });

  updated = bob.next('partyUpdated');
  await alice.partyUpdate({ partyId, label: '' });
  assert.deepEqual(await updated, { type: 'partyUpdated', partyId, open: false, hidden: false, maxSize: 4, label: '', ...strategies, version: 4n });

  updated = bob.next('partyUpdated');
  await alice.partyUpdate({ partyId, open: true, hidden: true });
  assert.deepEqual(await updated, { type: 'partyUpdated', partyId, open: true, hidden: true, maxSize: 4, label: '', ...strategies, version: 5n });

  // The same values again: the event all the same (as Nakama), but no change, no version step.
  updated = bob.next('partyUpdated');
  await alice.partyUpdate({ partyId, open: true });
  assert.equal((await updated).version, 5n);

  // Hidden parties cannot have a label: checked on the result of the update.
  const error = await rejectsWith(alice.partyUpdate({ partyId, label: '{"mode":"dm"}' }), ErrorCode.BadInput, 'BadInput');
  assert.match(error.message, /hidden/);
  await rejectsWith(bob.partyUpdate({ partyId, open: false }), ErrorCode.PartyNotLeader, 'PartyNotLeader');
  assert.equal((await alice.partyGet({ partyId })).open, true);
});

test('party data: with a reply, fire-and-forget, and refusals as error events', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 4 });
  await bob.partyJoin({ partyId });

  let data = alice.next('partyData');
  assert.deepEqual(await bob.partyDataSend({ partyId, opCode: 7, data: new Uint8Array([0, 1, 255]) }), { type: 'partyOk', partyId });
  let received = await data;
  assert.deepEqual({ ...received, data: [...received.data] }, { type: 'partyData', partyId, sender: me(bob), opCode: 7n, data: [0, 1, 255] });

  // Fire-and-forget (cid 0): no reply; the data arrives all the same, in order.
  const arrived: Inbound<'partyData'>[] = [];
  const off = alice.on('partyData', (e) => arrived.push(e));
  data = alice.next('partyData', { filter: (e) => e.opCode === 3n });
  for (const opCode of [1n, 2n, 3n]) assert.equal(bob.partyDataFireAndForget({ partyId, opCode, data: `tick ${opCode}` }), true);
  await data;
  off();
  assert.deepEqual(
    arrived.map((e) => [e.opCode, new TextDecoder().decode(e.data)]),
    [
      [1n, 'tick 1'],
      [2n, 'tick 2'],
      [3n, 'tick 3'],
    ],
  );
  // A ping after the fire-and-forget frames proves none of them got a reply of its own: replies
  // come in order, and the next thing bob hears with a cid is his pong.
  const skipped: unknown[] = [];
  bob.on('skipped', (e) => skipped.push(e));
  assert.deepEqual(await bob.ping(), { type: 'pong' });
  assert.deepEqual(skipped, []);

  // Refused fire-and-forget: an error event (cid 0), no rejection anywhere.
  const refused = carol.next('error');
  assert.equal(carol.partyDataFireAndForget({ partyId, opCode: 1, data: 'not a member' }), true);
  const event = await refused;
  assert.equal(event.code, ErrorCode.PartyNotMember);
  assert.equal(event.name, 'PartyNotMember');
  await rejectsWith(carol.partyDataSend({ partyId, opCode: 1, data: 'x' }), ErrorCode.PartyNotMember, 'PartyNotMember');
  await rejectsWith(bob.partyDataSend({ partyId, opCode: 1, data: new Uint8Array(8193) }), ErrorCode.LimitExceeded, 'LimitExceeded');
});

test('errors: each maps to its code and name, and leaves the connection usable', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const unknown = '0123456789abcdef0123456789abcdef';
  await rejectsWith(alice.partyJoin({ partyId: unknown }), ErrorCode.PartyNotFound, 'PartyNotFound');
  await rejectsWith(alice.partyCreate({ open: true, maxSize: 0 }), ErrorCode.BadInput, 'BadInput');
  await rejectsWith(alice.partyCreate({ open: true, maxSize: 4, label: 'not json' }), ErrorCode.BadInput, 'BadInput');
  const full = await alice.partyCreate({ open: true, maxSize: 1 });
  const bob = await player(t, server, 'bob');
  await rejectsWith(bob.partyJoin({ partyId: full.partyId }), ErrorCode.PartyFull, 'PartyFull');
  // A bad argument is the caller's bug: a TypeError, nothing sent, the client still works.
  await assert.rejects(alice.partyJoin({ partyId: 'nope' }), TypeError);
  assert.deepEqual(await alice.ping(), { type: 'pong' });
});

// The README promises that the event's message names the party (so the client sets `partyId`);
// the server sends it once the core side of P-9 lands (tests/protocol.rs ignores its twin until then).
test('a refused fire-and-forget names its party in the error event', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const zed = await player(t, server, 'zed');
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 4 });
  let refused = zed.next('error');
  zed.partyDataFireAndForget({ partyId, opCode: 1, data: 'not mine' });
  assert.deepEqual(await refused, { type: 'error', code: 204, name: 'PartyNotMember', message: (await refused).message, partyId });
  const missing = '00000000000000000000000000005eed';
  refused = zed.next('error');
  zed.partyDataFireAndForget({ partyId: missing, opCode: 1, data: 'nobody' });
  const event = await refused;
  assert.equal(event.name, 'PartyNotFound');
  assert.equal(event.partyId, missing, event.message);
});
