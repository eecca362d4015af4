// Lobby II against the real server (SPEC L-4 friend strategies and blocks, L-5 custom data, L-6
// chat, L-7 names with a deny-list, L-8 attributes): every request, reply and event the client
// knows for them, with the exact events each player receives (`record` + `drain`, see huddle.ts),
// and Lobby II's errors (260–265) by code and name. Friends, blocks and attributes are written as
// a game backend does, over the admin API with the server's admin key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ErrorCode, HuddleClient, type Presence } from '@huddle/client';
import { player, record, rejectsWith, startHuddle, type Huddle } from './huddle.js';

function me(client: HuddleClient): Presence {
  assert.ok(client.presence !== null);
  return client.presence;
}

/** `PUT path` on the admin API with the server's admin key (created beside its token key file). */
async function adminPut(server: Huddle, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  assert.ok(server.adminUrl !== null);
  const key = readFileSync(join(dirname(server.keyFile), 'admin.key'), 'utf8').trim();
  const response = await fetch(`${server.adminUrl}${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

test('custom data and names: the leader writes the global string, members their own, everyone hears it; names clear and are denied', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'huddle-ts-deny-'));
  const denyList = join(dir, 'deny.txt');
  writeFileSync(denyList, 'badword\n');
  const server = await startHuddle(t, { args: ['--name-deny-list', denyList] });
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const [aliceEvents, bobEvents] = [alice, bob].map(record);
  const party = await alice.partyCreate({ open: true, maxSize: 4, name: 'Friday squad' });
  const { partyId } = party;
  assert.deepEqual([party.name, party.chatEnabled, party.customData, party.memberCustomData], ['Friday squad', false, '', []]);
  assert.deepEqual([party.attributes, party.attributesTimestamp], ['{}', 0n], 'no attributes until the backend writes');
  await bob.partyJoin({ partyId });
  await aliceEvents!.drain();

  assert.deepEqual(await alice.partyCustomDataSet({ partyId, scope: 'Global', value: 'map:dust' }), { type: 'partyOk', partyId });
  const global = { type: 'partyCustomDataChanged', partyId, member: null, value: 'map:dust', version: 3n };
  for (const events of [aliceEvents!, bobEvents!]) assert.deepEqual(await events.drain(), [global], 'every member, the writer too');
  await bob.partyCustomDataSet({ partyId, scope: 'Member', value: 'ready' });
  const own = { type: 'partyCustomDataChanged', partyId, member: me(bob), value: 'ready', version: 4n };
  for (const events of [aliceEvents!, bobEvents!]) assert.deepEqual(await events.drain(), [own]);
  await rejectsWith(bob.partyCustomDataSet({ partyId, scope: 'Global', value: 'x' }), ErrorCode.PartyNotLeader, 'PartyNotLeader');
  await rejectsWith(alice.partyCustomDataSet({ partyId, scope: 'Global', value: 'x'.repeat(4097) }), ErrorCode.LimitExceeded, 'LimitExceeded');
  await assert.rejects(alice.partyCustomDataSet({ partyId, scope: 'Everyone' as 'Global', value: 'x' }), TypeError);
  const now = await alice.partyGet({ partyId });
  assert.deepEqual([now.customData, now.memberCustomData, now.version], ['map:dust', [{ sessionId: me(bob).sessionId, value: 'ready' }], 4n]);

  // L-7: the deny-list matches after NFKC case folding (full-width, other case); "" clears.
  await rejectsWith(alice.partyUpdate({ partyId, name: 'the ＢＡＤＷＯＲＤ crew' }), ErrorCode.PartyNameDenied, 'PartyNameDenied');
  await alice.partyUpdate({ partyId, name: '', chatEnabled: true });
  const [updated] = await bobEvents!.drain();
  assert.ok(updated?.type === 'partyUpdated');
  assert.deepEqual([updated.name, updated.chatEnabled, updated.version], ['', true, 5n]);
  await alice.partyUpdate({ partyId, name: 'Saturday' });
  const found = await bob.partySearch({ query: 'name:Saturday' });
  assert.deepEqual(
    found.parties.map((p) => [p.partyId, p.name]),
    [[partyId, 'Saturday']],
    'the name is the keyword field `name`',
  );
  const mine = await bob.partyMyList();
  assert.deepEqual(mine.parties.map((p) => [p.name, p.chatEnabled]), [['Saturday', true]]);
});

test('chat: the reply carries sequence and time, every other member gets the message, the sixth in the window is refused', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const [aliceEvents, bobEvents, carolEvents] = [alice, bob, carol].map(record);
  const { partyId } = await alice.partyCreate({ open: true, maxSize: 4 });
  await bob.partyJoin({ partyId });
  await rejectsWith(bob.partyChatSend({ partyId, body: 'hi' }), ErrorCode.PartyChatDisabled, 'PartyChatDisabled');
  await alice.partyUpdate({ partyId, chatEnabled: true });
  await rejectsWith(carol.partyChatSend({ partyId, body: 'hi' }), ErrorCode.PartyNotMember, 'PartyNotMember');
  for (const events of [aliceEvents!, bobEvents!, carolEvents!]) await events.drain();

  const before = BigInt(Date.now());
  const sent = await bob.partyChatSend({ partyId, body: 'gg' });
  assert.equal(sent.type, 'partyChatSent');
  const { message } = sent;
  assert.deepEqual([message.partyId, message.sender, message.kind, text(message.body), message.sequence], [partyId, me(bob), 'Text', 'gg', 1n]);
  assert.ok(message.sentAt >= before - 1000n, 'server time in Unix ms');
  const [event] = await aliceEvents!.drain();
  assert.ok(event?.type === 'partyChatMessage');
  assert.deepEqual({ ...event, body: text(event.body) }, { type: 'partyChatMessage', ...message, body: 'gg' }, 'the same message');
  assert.deepEqual(await bobEvents!.drain(), [], 'never echoed to the sender');
  assert.deepEqual(await carolEvents!.drain(), [], 'not to non-members');

  const custom = await alice.partyChatSend({ partyId, kind: 'Custom', body: new Uint8Array([1, 2, 255]) });
  assert.deepEqual([custom.message.kind, [...custom.message.body], custom.message.sequence], ['Custom', [1, 2, 255], 2n]);
  assert.ok(custom.message.sentAt >= message.sentAt, 'time never goes back within a party');
  // Bob sent one; four more fit his window, the sixth is refused (and does not count).
  for (let i = 0; i < 4; i++) assert.equal((await bob.partyChatSend({ partyId, body: `m${i}` })).message.sequence, BigInt(3 + i));
  const error = await rejectsWith(bob.partyChatSend({ partyId, body: 'one too many' }), ErrorCode.LimitExceeded, 'LimitExceeded');
  assert.match(error.message, /chat_messages_per_window_max/);
  await rejectsWith(alice.partyChatSend({ partyId, body: '' }), ErrorCode.BadInput, 'BadInput');
  const seen = (await aliceEvents!.drain()).map((e) => (e.type === 'partyChatMessage' ? text(e.body) : e.type));
  assert.deepEqual(seen, ['m0', 'm1', 'm2', 'm3'], 'refused messages reach nobody');
});

test('friends, blocks and attributes from the backend: strategies admit friends, blocks refuse, attributes reach every member', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const carol = await player(t, server, 'carol');
  const mallory = await player(t, server, 'mallory');
  const [aliceEvents, bobEvents] = [alice, bob].map(record);
  assert.equal((await adminPut(server, '/v1/users/alice/friends', { friends: ['bob'] })).status, 200);
  assert.equal((await adminPut(server, '/v1/users/mallory/blocks', { blocks: ['alice'] })).status, 200);
  const party = await alice.partyCreate({ open: true, maxSize: 4, joinStrategy: 'FriendsOfLeader' });
  const { partyId } = party;
  assert.equal((await bob.partyJoin({ partyId })).type, 'partyInfo', 'a friend of the leader joins');
  await rejectsWith(carol.partyJoin({ partyId }), ErrorCode.PartyNotFriendOfLeader, 'PartyNotFriendOfLeader');
  await alice.partyUpdate({ partyId, joinStrategy: 'FriendsOfMembers' });
  await rejectsWith(carol.partyJoin({ partyId }), ErrorCode.PartyNotFriendOfMembers, 'PartyNotFriendOfMembers');
  await alice.partyUpdate({ partyId, joinStrategy: 'Public' });
  await rejectsWith(mallory.partyJoin({ partyId }), ErrorCode.PartyJoinBlocked, 'PartyJoinBlocked');
  await rejectsWith(alice.partyInvite({ partyId, userIds: ['mallory'] }), ErrorCode.InviteeBlocked, 'InviteeBlocked');
  for (const events of [aliceEvents!, bobEvents!]) await events.drain();

  const written = await adminPut(server, `/v1/parties/${partyId}/attributes`, { attributes: { mode: 'ranked', mmr: 1200 }, timestamp: 1000 });
  assert.deepEqual([written.status, written.json.version], [200, 5]);
  const attributes = '{"mmr":1200,"mode":"ranked"}';
  const updated = { type: 'partyAttributesUpdated', partyId, attributes, timestamp: 1000n, version: 5n };
  for (const events of [aliceEvents!, bobEvents!]) assert.deepEqual(await events.drain(), [updated], 'every member');
  const stale = await adminPut(server, `/v1/parties/${partyId}/attributes`, { attributes: {}, timestamp: 1000 });
  assert.deepEqual([stale.status, stale.json.code], [409, 'conflict'], 'an older or equal timestamp changes nothing');
  const now = await bob.partyGet({ partyId });
  assert.deepEqual([now.attributes, now.attributesTimestamp, now.version], [attributes, 1000n, 5n]);
  assert.deepEqual(await bobEvents!.drain(), []);
});
