// Status (update, follow, unfollow, the presence events) and party search against the real server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, type Inbound } from '@huddle/client';
import { player, rejectsWith, startHuddle } from './huddle.js';

test('status: ?status=true, update, follow by id and username, events, offline, unfollow, disconnect', async (t) => {
  const server = await startHuddle(t);
  const bob = await player(t, server, 'bob');
  // With status: true the session is visible at once and hears its own join right after the welcome.
  const alice = await player(t, server, 'alice', { status: true });
  const aliceSelf = alice.presence!;
  assert.deepEqual(await alice.next('statusPresenceEvent'), { type: 'statusPresenceEvent', joins: [{ presence: aliceSelf, status: '' }], leaves: [] });

  const followed = await bob.statusFollow({ userIds: ['alice', 'nobody-yet'] });
  assert.deepEqual(followed, { type: 'statusFollowed', presences: [{ presence: aliceSelf, status: '' }] });

  let event = bob.next('statusPresenceEvent');
  assert.deepEqual(await alice.statusUpdate({ status: 'in lobby' }), { type: 'statusUpdated' });
  assert.deepEqual(await event, {
    type: 'statusPresenceEvent',
    joins: [{ presence: aliceSelf, status: 'in lobby' }],
    leaves: [{ presence: aliceSelf, status: '' }],
  });

  // Follow by username: resolved among connected users (carol's username is "Carol").
  const carol = await player(t, server, 'carol');
  await carol.statusUpdate({ status: 'afk' });
  assert.deepEqual((await bob.statusFollow({ usernames: ['Carol'] })).presences, [{ presence: carol.presence!, status: 'afk' }]);

  // No status (null) appears offline: followers see the leave with the last status.
  event = bob.next('statusPresenceEvent');
  await alice.statusUpdate({ status: null });
  assert.deepEqual(await event, { type: 'statusPresenceEvent', joins: [], leaves: [{ presence: aliceSelf, status: 'in lobby' }] });

  // After unfollow, alice's changes no longer reach bob. Proven without waiting: bob and alice
  // share a party, and alice's party data, sent after her status change, reaches bob after any
  // event her status change would have caused him.
  assert.deepEqual(await bob.statusUnfollow({ userIds: ['alice'] }), { type: 'statusUnfollowed' });
  const { partyId } = await bob.partyCreate({ open: true, maxSize: 2 });
  const bobSeesAlice = bob.next('partyPresence');
  await alice.partyJoin({ partyId });
  await bobSeesAlice;
  const heard: string[] = [];
  bob.on('message', (m) => heard.push(m.type));
  const data = bob.next('partyData');
  await alice.statusUpdate({ status: 'back' });
  await alice.partyDataSend({ partyId, opCode: 1, data: 'after the status' });
  await data;
  assert.deepEqual(heard, ['partyData']);

  // Carol is still followed: her disconnect is a leave with her last status.
  event = bob.next('statusPresenceEvent');
  await carol.close();
  assert.deepEqual(await event, { type: 'statusPresenceEvent', joins: [], leaves: [{ presence: carol.presence!, status: 'afk' }] });
});

test('status errors: too many names (300), bad ids (200), a status over the limit (300)', async (t) => {
  const server = await startHuddle(t);
  const bob = await player(t, server, 'bob');
  const many = Array.from({ length: 257 }, (_, i) => `user-${i}`);
  const error = await rejectsWith(bob.statusFollow({ userIds: many }), ErrorCode.LimitExceeded, 'LimitExceeded');
  assert.match(error.message, /follow_ids_per_request_max/);
  await rejectsWith(bob.statusFollow({ userIds: [''] }), ErrorCode.BadInput, 'BadInput');
  await rejectsWith(bob.statusUnfollow({ userIds: ['x'.repeat(129)] }), ErrorCode.BadInput, 'BadInput');
  await rejectsWith(bob.statusUpdate({ status: 's'.repeat(2049) }), ErrorCode.LimitExceeded, 'LimitExceeded');
});

test('search: queries, the open filter, pages with a cursor, hidden parties, and search errors', async (t) => {
  const server = await startHuddle(t);
  const alice = await player(t, server, 'alice');
  const bob = await player(t, server, 'bob');
  const ctfEu = await alice.partyCreate({ open: true, maxSize: 4, label: JSON.stringify({ mode: 'ctf', region: 'eu', skill: 1300 }) });
  const ctfUs = await alice.partyCreate({ open: false, maxSize: 4, label: JSON.stringify({ mode: 'ctf', region: 'us', skill: 900 }) });
  const dm = await alice.partyCreate({ open: true, maxSize: 8, label: JSON.stringify({ mode: 'dm', region: 'eu' }) });
  await alice.partyCreate({ open: true, maxSize: 4, hidden: true });

  const ids = (result: Inbound<'partySearchResult'>) => result.parties.map((p) => p.partyId).sort();

  const all = await bob.partySearch();
  assert.equal(all.type, 'partySearchResult');
  assert.deepEqual(ids(all), [ctfEu.partyId, ctfUs.partyId, dm.partyId].sort(), 'every party but the hidden one');
  assert.equal(all.cursor, null);

  const ctf = await bob.partySearch({ query: '+label.mode:ctf' });
  assert.deepEqual(ids(ctf), [ctfEu.partyId, ctfUs.partyId].sort());
  const listing = ctf.parties.find((p) => p.partyId === ctfEu.partyId)!;
  assert.deepEqual(listing, { partyId: ctfEu.partyId, open: true, maxSize: 4, memberCount: 1, label: ctfEu.label, version: 1n });

  assert.deepEqual(ids(await bob.partySearch({ query: '+label.mode:ctf', open: true })), [ctfEu.partyId]);
  assert.deepEqual(ids(await bob.partySearch({ query: '+label.mode:ctf', open: false })), [ctfUs.partyId]);
  assert.deepEqual(ids(await bob.partySearch({ query: '+label.skill:>=1000' })), [ctfEu.partyId]);

  // Pages of one: every party exactly once, then no cursor.
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: Inbound<'partySearchResult'> = await bob.partySearch({ query: 'label.region:eu label.region:us', limit: 1, cursor });
    assert.ok(page.parties.length <= 1);
    seen.push(...page.parties.map((p) => p.partyId));
    cursor = page.cursor;
  } while (cursor !== null);
  assert.deepEqual(seen.sort(), [ctfEu.partyId, ctfUs.partyId, dm.partyId].sort());

  const invalid = await rejectsWith(bob.partySearch({ query: 'label.mode:' }), ErrorCode.SearchQueryInvalid, 'SearchQueryInvalid');
  assert.match(invalid.message, /at byte \d+/);
  const first = await bob.partySearch({ query: 'label.region:eu', limit: 1 });
  assert.ok(first.cursor !== null);
  await rejectsWith(bob.partySearch({ query: 'label.region:us', limit: 1, cursor: first.cursor }), ErrorCode.SearchCursorMismatch, 'SearchCursorMismatch');
  await rejectsWith(bob.partySearch({ cursor: 'garbage' }), ErrorCode.SearchCursorInvalid, 'SearchCursorInvalid');
  await rejectsWith(bob.partySearch({ limit: 0 }), ErrorCode.BadInput, 'BadInput');
  await rejectsWith(bob.partySearch({ query: 'mode:ctf' }), ErrorCode.SearchQueryInvalid, 'SearchQueryInvalid');
});
