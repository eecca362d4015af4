// Lobby I against the real server (SPEC L-1 one party per user, L-2 invitations, L-3 party codes,
// L-4 strategies, L-9 versions and snapshot events): every request, reply and event the client
// knows for them, with the exact events each player receives (`record` + `drain`, see huddle.ts),
// and every lobby error (240–248) by code and name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, HuddleClient, type Inbound, type Party, type PartySummary, type Presence } from '@huddle/client';
import { FAST, player, record, rejectsWith, startHuddle } from './huddle.js';

function me(client: HuddleClient): Presence {
  assert.ok(client.presence !== null);
  return client.presence;
}

/** The summary an invitation carries of `party` (as it was when sent). */
function summaryOf(party: Party): PartySummary {
  const { members, ...rest } = party;
  return { ...rest, memberCount: members.length };
}

/** The snapshot without its `type`, to compare a reply with a `party` inside an event. */
function body(reply: Inbound<'partyInfo'>): Party {
  const { type: _type, ...party } = reply;
  return party;
}

/** The expiry an invitation event carries: wall-clock Unix ms after the test began (the one thing a test can say of it). */
function expiryOf(events: Inbound[], since: number): bigint {
  const event = events.find((e) => e.type === 'partyInvitationSent' || e.type === 'partyInvited');
  assert.ok(event !== undefined, `an invitation event among ${events.map((e) => e.type).join(', ')}`);
  const at = event.type === 'partyInvitationSent' ? event.expiresAt : event.type === 'partyInvited' ? event.invitation.expiresAt : 0n;
  assert.ok(at > BigInt(since), `expiresAt ${at} is wall-clock Unix ms`);
  return at;
}

const CODE = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/;

test('invitations: invite, both sides hear it, list, accept from one session (the other told), reject, cancel', async (t) => {
  const since = Date.now();
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob1 = await player(t, server, 'bob');
  const bob2 = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const [aliceEvents, bob1Events, bob2Events, carolEvents] = [alice, bob1, bob2, carol].map(record);
  const party = await alice.partyCreate({ open: false, maxSize: 4 });
  const { partyId } = party;
  assert.equal(party.version, 1n);
  assert.deepEqual([party.joinStrategy, party.inviteStrategy], ['Public', 'AllMembers'], 'the defaults');

  assert.deepEqual(await alice.partyInvite({ partyId, userIds: ['bob'] }), { type: 'partyOk', partyId });
  const sent = await aliceEvents!.drain();
  const expiresAt = expiryOf(sent, since);
  assert.deepEqual(sent, [{ type: 'partyInvitationSent', partyId, invitee: 'bob', inviter: me(alice), expiresAt }], 'the members (the inviter too)');
  const invitation = { party: summaryOf(body(party)), inviter: me(alice), expiresAt };
  for (const bob of [bob1Events!, bob2Events!]) assert.deepEqual(await bob.drain(), [{ type: 'partyInvited', invitation }], 'every session of the invitee');
  assert.deepEqual(await bob1.partyInvitationList(), { type: 'partyInvitationListResult', invitations: [invitation] });
  assert.deepEqual((await bob2.partyInvitationList()).invitations, [invitation], 'the list is the user’s, from any session');

  // bob2 accepts: a member at once though the party is closed; bob1 learns how it ended.
  const joined = await bob2.partyInvitationAccept({ partyId });
  assert.equal(joined.type, 'partyInfo');
  assert.deepEqual(joined.members, [me(alice), me(bob2)]);
  assert.equal(joined.version, 2n);
  assert.deepEqual(await aliceEvents!.drain(), [{ type: 'partyPresence', partyId, joins: [me(bob2)], leaves: [], version: 2n }]);
  assert.deepEqual(await bob1Events!.drain(), [{ type: 'partyInvitationEnded', partyId, invitee: 'bob', reason: 'Accepted', reasonCode: 1 }]);
  assert.deepEqual(await bob2Events!.drain(), []);
  assert.deepEqual((await bob1.partyInvitationList()).invitations, [], 'consumed');

  // carol rejects: the members hear it; nothing changed in the party.
  await bob2.partyInvite({ partyId, userIds: ['carol'] });
  const carolInvited = await carolEvents!.drain();
  assert.equal(carolInvited.length, 1);
  assert.ok(carolInvited[0]!.type === 'partyInvited');
  assert.deepEqual(carolInvited[0]!.invitation.inviter, me(bob2), 'any member may invite');
  assert.equal(carolInvited[0]!.invitation.party.memberCount, 2);
  await aliceEvents!.drain();
  await bob2Events!.drain();
  assert.deepEqual(await carol.partyInvitationReject({ partyId }), { type: 'partyOk', partyId });
  for (const member of [aliceEvents!, bob2Events!]) assert.deepEqual(await member.drain(), [{ type: 'partyInvitationRejected', partyId, invitee: 'carol' }]);
  assert.deepEqual(await carolEvents!.drain(), [], 'the reply alone');
  await rejectsWith(carol.partyInvitationAccept({ partyId }), ErrorCode.InvitationNotFound, 'InvitationNotFound');
  assert.equal((await alice.partyGet({ partyId })).version, 2n, 'an invitation is not a change');

  // Cancel: by the inviter or the leader; the invitee and every member hear it.
  await bob2.partyInvite({ partyId, userIds: ['carol', 'dave'] });
  for (const r of [aliceEvents!, bob2Events!, carolEvents!]) await r.drain();
  await rejectsWith(carol.partyInvitationCancel({ partyId, userId: 'dave' }), ErrorCode.PartyNotMember, 'PartyNotMember');
  await alice.partyPromote({ partyId, presence: me(bob2) });
  await rejectsWith(alice.partyInvitationCancel({ partyId, userId: 'carol' }), ErrorCode.InvitationCancelNotAllowed, 'InvitationCancelNotAllowed');
  for (const r of [aliceEvents!, bob2Events!]) await r.drain();
  assert.deepEqual(await bob2.partyInvitationCancel({ partyId, userId: 'carol' }), { type: 'partyOk', partyId });
  const cancelled = { type: 'partyInvitationEnded', partyId, invitee: 'carol', reason: 'Cancelled', reasonCode: 3 };
  for (const r of [carolEvents!, aliceEvents!, bob2Events!]) assert.deepEqual(await r.drain(), [cancelled]);
  assert.deepEqual((await carol.partyInvitationList()).invitations, []);
  await rejectsWith(bob2.partyInvitationCancel({ partyId, userId: 'carol' }), ErrorCode.InvitationNotFound, 'InvitationNotFound');
});

test('bad invitations: each its own error (243, 244, 245, 246, 200, 300) and nothing changes', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const zed = await player(t, server, 'zed');
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 4 });
  await bob.partyJoin({ partyId });
  const recorders = [alice, bob, zed].map(record);
  for (const r of recorders) await r.drain(); // bob's join, heard by alice
  const before = await alice.partyGet({ partyId });

  await rejectsWith(alice.partyInvite({ partyId, userIds: ['dave', 'alice'] }), ErrorCode.InviteeIsSelf, 'InviteeIsSelf');
  const inParty = await rejectsWith(alice.partyInvite({ partyId, userIds: ['dave', 'bob'] }), ErrorCode.InviteeInParty, 'InviteeInParty');
  assert.match(inParty.message, /"bob"/, 'the error names the invitee');
  await rejectsWith(alice.partyInvite({ partyId, userIds: ['x'.repeat(129)] }), ErrorCode.InviteeInvalid, 'InviteeInvalid');
  await rejectsWith(alice.partyInvite({ partyId, userIds: [] }), ErrorCode.BadInput, 'BadInput');
  const many = Array.from({ length: 17 }, (_, i) => `u${i}`);
  await rejectsWith(alice.partyInvite({ partyId, userIds: many }), ErrorCode.LimitExceeded, 'LimitExceeded');
  await rejectsWith(zed.partyInvite({ partyId, userIds: ['carol'] }), ErrorCode.PartyNotMember, 'PartyNotMember');
  await rejectsWith(zed.partyInvitationAccept({ partyId }), ErrorCode.InvitationNotFound, 'InvitationNotFound');
  await rejectsWith(zed.partyInvitationReject({ partyId }), ErrorCode.InvitationNotFound, 'InvitationNotFound');
  await rejectsWith(zed.partyInvitationAccept({ partyId: '0'.repeat(32) }), ErrorCode.PartyNotFound, 'PartyNotFound');
  // The caller's bugs are TypeErrors: nothing sent.
  await assert.rejects(alice.partyInvite({ partyId, userIds: 'bob' as unknown as string[] }), TypeError);
  await assert.rejects(alice.partyJoinByCode({ code: 7 as unknown as string }), TypeError);

  for (const r of recorders) assert.deepEqual(await r.drain(), [], 'refused requests tell nobody');
  assert.deepEqual(await alice.partyGet({ partyId }), before, 'nothing changed');
  assert.deepEqual((await (await player(t, server, 'dave')).partyInvitationList()).invitations, [], 'no refused request invited dave');
});

test('an invitation expires after --invitation-ttl-ms: the invitee and the members are told, the accept is 246', async (t) => {
  const since = Date.now();
  const server = await startHuddle(t, { args: ['--invitation-ttl-ms', '300'] });
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const [aliceEvents, bobEvents] = [alice, bob].map(record);
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 4 });
  // A timer's effect: waited for with a deadline, listening before the invite.
  const expired = (client: HuddleClient) => client.next('partyInvitationEnded', { filter: (e) => e.reason === 'Expired', timeoutMs: 5_000 });
  const [aliceExpired, bobExpired] = [expired(alice), expired(bob)];
  await alice.partyInvite({ partyId, userIds: ['bob'] });
  await Promise.all([aliceExpired, bobExpired]);

  const ended = { type: 'partyInvitationEnded', partyId, invitee: 'bob', reason: 'Expired', reasonCode: 4 };
  const bobHeard = await bobEvents!.drain();
  const expiresAt = expiryOf(bobHeard, since);
  assert.deepEqual(bobHeard.map((e) => e.type), ['partyInvited', 'partyInvitationEnded']);
  assert.deepEqual(bobHeard[1], ended);
  assert.deepEqual(await aliceEvents!.drain(), [{ type: 'partyInvitationSent', partyId, invitee: 'bob', inviter: me(alice), expiresAt }, ended]);
  await rejectsWith(bob.partyInvitationAccept({ partyId }), ErrorCode.InvitationNotFound, 'InvitationNotFound');
  assert.deepEqual((await bob.partyInvitationList()).invitations, []);
  assert.deepEqual((await alice.partyGet({ partyId })).members, [me(alice)], 'nothing changed');
});

test('a session that connects while invited hears the invitation right after its welcome', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const party = await alice.partyCreate({ open: true, maxSize: 4 });
  await alice.partyInvite({ partyId: party.partyId, userIds: ['bob'] });

  const bob = new HuddleClient(server.url, server.token('bob'), FAST);
  t.after(() => bob.close());
  const heard: Inbound[] = [];
  bob.on('message', (e) => heard.push(e));
  const invited = bob.next('partyInvited');
  await bob.connect();
  assert.deepEqual((await invited).invitation.party, summaryOf(body(party)));
  assert.deepEqual(heard.map((e) => e.type), ['welcome', 'partyInvited']);
});

test('party codes: the leader reads and regenerates, anyone joins by code in any case, a dead code is 247', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const aliceEvents = record(alice);
  const { partyId } = await alice.partyCreate({ open: false, maxSize: 4 });

  const got = await alice.partyCodeGet({ partyId });
  assert.equal(got.type, 'partyCode');
  assert.equal(got.partyId, partyId);
  assert.match(got.code, CODE);
  assert.deepEqual(await alice.partyCodeGet({ partyId }), got, 'the same code until regenerated');
  await rejectsWith(bob.partyCodeGet({ partyId }), ErrorCode.PartyNotMember, 'PartyNotMember');

  // A closed party all the same, letter case and whitespace ignored: a member at once.
  const joined = await bob.partyJoinByCode({ code: ` ${got.code.toLowerCase()} ` });
  assert.equal(joined.type, 'partyInfo');
  assert.equal(joined.partyId, partyId);
  assert.deepEqual(joined.members, [me(alice), me(bob)]);
  assert.deepEqual(await aliceEvents.drain(), [{ type: 'partyPresence', partyId, joins: [me(bob)], leaves: [], version: 2n }]);
  assert.deepEqual(await bob.partyJoinByCode({ code: got.code }), joined, 'a member asking again: the snapshot, no change');
  await rejectsWith(bob.partyCodeGet({ partyId }), ErrorCode.PartyNotLeader, 'PartyNotLeader');
  await rejectsWith(bob.partyCodeRegenerate({ partyId }), ErrorCode.PartyNotLeader, 'PartyNotLeader');

  const fresh = await alice.partyCodeRegenerate({ partyId });
  assert.equal(fresh.type, 'partyCode');
  assert.match(fresh.code, CODE);
  assert.notEqual(fresh.code, got.code);
  assert.deepEqual(await aliceEvents.drain(), [], 'a code is no event and no version step');
  await rejectsWith(carol.partyJoinByCode({ code: got.code }), ErrorCode.PartyCodeNotFound, 'PartyCodeNotFound');
  assert.deepEqual((await carol.partyJoinByCode({ code: fresh.code })).members, [me(alice), me(bob), me(carol)]);
  assert.equal((await alice.partyGet({ partyId })).version, 3n);
});

test('strategies: set at create, changed by update (absent keeps them), in every snapshot; refusals 241, 242, 203', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const party = await alice.partyCreate({ open: true, maxSize: 4, joinStrategy: 'InvitedOnly', inviteStrategy: 'LeaderOnly' });
  const { partyId } = party;
  assert.deepEqual([party.joinStrategy, party.inviteStrategy], ['InvitedOnly', 'LeaderOnly']);
  const mine = (await alice.partyMyList()).parties[0]!;
  assert.deepEqual([mine.joinStrategy, mine.inviteStrategy, mine.version], ['InvitedOnly', 'LeaderOnly', 1n], 'summaries carry them');

  // InvitedOnly: a plain join is refused until invited; then the plain join accepts the invitation.
  await rejectsWith(bob.partyJoin({ partyId }), ErrorCode.PartyNotInvited, 'PartyNotInvited');
  await alice.partyInvite({ partyId, userIds: ['bob'] });
  const joined = await bob.partyJoin({ partyId });
  assert.ok(joined.type === 'partyInfo');
  assert.equal(joined.joinStrategy, 'InvitedOnly');
  // LeaderOnly: a member who is not the leader may not invite.
  await rejectsWith(bob.partyInvite({ partyId, userIds: ['carol'] }), ErrorCode.PartyNotLeader, 'PartyNotLeader');

  // An update of one strategy keeps the other and every other setting.
  const bobEvents = record(bob);
  await rejectsWith(bob.partyUpdate({ partyId, joinStrategy: 'Public' }), ErrorCode.PartyNotLeader, 'PartyNotLeader');
  await alice.partyUpdate({ partyId, joinStrategy: 'NotAllowed' });
  assert.deepEqual(await bobEvents.drain(), [
    { type: 'partyUpdated', partyId, open: true, hidden: false, maxSize: 4, label: '', joinStrategy: 'NotAllowed', inviteStrategy: 'LeaderOnly', version: 3n },
  ]);
  // NotAllowed refuses every way in: joins, codes, invitations.
  await rejectsWith(carol.partyJoin({ partyId }), ErrorCode.PartyJoinNotAllowed, 'PartyJoinNotAllowed');
  const { code } = await alice.partyCodeGet({ partyId });
  await rejectsWith(carol.partyJoinByCode({ code }), ErrorCode.PartyJoinNotAllowed, 'PartyJoinNotAllowed');
  await rejectsWith(alice.partyInvite({ partyId, userIds: ['carol'] }), ErrorCode.PartyJoinNotAllowed, 'PartyJoinNotAllowed');

  await alice.partyUpdate({ partyId, joinStrategy: 'Public', inviteStrategy: 'AllMembers' });
  const updated = (await bobEvents.drain())[0];
  assert.ok(updated?.type === 'partyUpdated');
  assert.deepEqual([updated.joinStrategy, updated.inviteStrategy, updated.open, updated.version], ['Public', 'AllMembers', true, 4n]);
  assert.equal((await carol.partyJoin({ partyId })).type, 'partyInfo');

  // A strategy the schema does not have is the caller's bug: a TypeError, nothing sent.
  await assert.rejects(alice.partyUpdate({ partyId, joinStrategy: 'Everyone' as never }), TypeError);
  await assert.rejects(alice.partyCreate({ open: true, maxSize: 2, inviteStrategy: 'Unset' as never }), TypeError);
});

test('one party per user (--one-party-per-user): 240, and an accept moves the user out (PartyRemoved Moved)', async (t) => {
  const server = await startHuddle(t, { args: ['--one-party-per-user'] });
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const first = await bob.partyCreate({ open: true, maxSize: 4 });
  await carol.partyJoin({ partyId: first.partyId });
  await rejectsWith(bob.partyCreate({ open: true, maxSize: 4 }), ErrorCode.PartyAlreadyInParty, 'PartyAlreadyInParty');
  const second = await alice.partyCreate({ open: true, maxSize: 4 });
  await rejectsWith(bob.partyJoin({ partyId: second.partyId }), ErrorCode.PartyAlreadyInParty, 'PartyAlreadyInParty');

  await alice.partyInvite({ partyId: second.partyId, userIds: ['bob'] });
  const [bobEvents, carolEvents] = [bob, carol].map(record);
  for (const r of [bobEvents!, carolEvents!]) await r.drain(); // carol's join, heard by bob
  const moved = await bob.partyInvitationAccept({ partyId: second.partyId });
  assert.deepEqual(moved.members, [me(alice), me(bob)]);
  assert.deepEqual(await bobEvents!.drain(), [{ type: 'partyRemoved', partyId: first.partyId, reason: 'Moved', reasonCode: 4, version: 3n }]);
  // carol's party lost its leader: she leads now, and sees bob leave, one version step.
  assert.deepEqual(await carolEvents!.drain(), [
    { type: 'partyLeader', partyId: first.partyId, leader: me(carol), version: 3n },
    { type: 'partyPresence', partyId: first.partyId, joins: [], leaves: [me(bob)], version: 3n },
  ]);
  assert.deepEqual((await bob.partyMyList()).parties.map((p) => p.partyId), [second.partyId]);
});

test('versions on replies and state events; snapshots: true adds a partySnapshot after every change', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice', { snapshots: true });
  const bob = await player(t, server, 'bob');
  const [aliceEvents, bobEvents] = [alice, bob].map(record);

  const created = await alice.partyCreate({ open: true, maxSize: 4, label: '{"mode":"ctf"}' });
  const { partyId } = created;
  assert.deepEqual(await aliceEvents!.drain(), [{ type: 'partySnapshot', party: body(created) }], 'its own change too');
  assert.equal((await bob.partySearch({ query: '+label.mode:ctf' })).parties[0]!.version, 1n, 'listings carry it');

  const joined = await bob.partyJoin({ partyId });
  assert.ok(joined.type === 'partyInfo');
  assert.equal(joined.version, 2n);
  const afterJoin = await alice.partyGet({ partyId });
  assert.deepEqual(await aliceEvents!.drain(), [
    { type: 'partyPresence', partyId, joins: [me(bob)], leaves: [], version: 2n },
    { type: 'partySnapshot', party: body(afterJoin) },
  ], 'the delta, then the snapshot equal to partyGet');
  assert.deepEqual(await bobEvents!.drain(), [], 'bob did not ask for snapshots');

  await alice.partyPromote({ partyId, presence: me(bob) });
  const afterPromote = await alice.partyGet({ partyId });
  assert.equal(afterPromote.version, 3n);
  assert.deepEqual(await aliceEvents!.drain(), [
    { type: 'partyLeader', partyId, leader: me(bob), version: 3n },
    { type: 'partySnapshot', party: body(afterPromote) },
  ]);
  assert.deepEqual(await bobEvents!.drain(), [{ type: 'partyLeader', partyId, leader: me(bob), version: 3n }]);

  // Reading or regenerating a code, inviting and party data are no changes: no version, no snapshot.
  await bob.partyCodeRegenerate({ partyId });
  await bob.partyInvite({ partyId, userIds: ['carol'] });
  await bob.partyDataSend({ partyId, opCode: 1, data: 'x' });
  assert.deepEqual((await aliceEvents!.drain()).map((e) => e.type), ['partyInvitationSent', 'partyData']);
  assert.equal((await alice.partyGet({ partyId })).version, 3n);

  const kicked = await bob.partyRemove({ partyId, presence: me(alice) });
  assert.equal(kicked.type, 'partyOk');
  assert.deepEqual(await aliceEvents!.drain(), [{ type: 'partyRemoved', partyId, reason: 'Kicked', reasonCode: 1, version: 4n }], 'no snapshot once out');
});
