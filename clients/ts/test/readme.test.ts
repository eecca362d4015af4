// The quick start of clients/ts/README.md, line for line (the URL and tokens come from the test
// server, `console.log` is captured), so the README cannot drift from the API.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connect, HuddleError, type HuddleClient } from '@huddle/client';
import { startHuddle } from './huddle.js';

/** Resolves once `holds()` is true, checked after each event `client` receives; a deadline, no sleep. */
function until(client: HuddleClient, holds: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (holds()) return resolve();
    const timer = setTimeout(() => {
      off();
      reject(HuddleError.client('Timeout', `${what} did not happen within 5 s`));
    }, 5_000);
    const off = client.on('message', () => {
      if (!holds()) return;
      off();
      clearTimeout(timer);
      resolve();
    });
  });
}

test('the README quick start: create, search, join, data, status', async (t) => {
  const server = await startHuddle(t);
  const url = server.url;
  const [aliceToken, bobToken] = [server.token('alice'), server.token('bob')];
  const lines: string[] = [];
  const console = { log: (...parts: unknown[]) => lines.push(parts.join(' ')) };

  // ---- README begins ----
  const alice = await connect(url, aliceToken, { WebSocket, status: true });
  const bob = await connect(url, bobToken, { WebSocket });
  bob.on('partyData', (e) => console.log(e.sender.username, 'says', new TextDecoder().decode(e.data)));
  bob.on('statusPresenceEvent', (e) => e.joins.forEach((j) => console.log(j.presence.username, 'is', j.status)));

  const party = await alice.partyCreate({ open: true, maxSize: 4, label: JSON.stringify({ mode: 'ctf' }) });
  const found = await bob.partySearch({ query: '+label.mode:ctf' });
  await bob.partyJoin({ partyId: found.parties[0]!.partyId });
  alice.partyDataFireAndForget({ partyId: party.partyId, opCode: 1, data: 'gl hf' });
  await bob.statusFollow({ userIds: ['alice'] });
  await alice.statusUpdate({ status: 'in a party' });
  // ---- README ends ----
  t.after(() => Promise.all([alice.close(), bob.close()]));

  await until(bob, () => lines.includes('Alice says gl hf') && lines.includes('Alice is in a party'), 'the data and the status');
  assert.deepEqual(lines, ['Alice says gl hf', 'Alice is in a party']);
});

test('the README lobby example: strategies, invite and accept, a code join, a refusal, snapshots', async (t) => {
  const server = await startHuddle(t);
  const url = server.url;
  const aliceToken = server.token('alice');
  const [bob, carol, dave] = await Promise.all(['bob', 'carol', 'dave'].map((user) => connect(url, server.token(user), { WebSocket })));
  const lines: string[] = [];
  const console = { log: (...parts: unknown[]) => lines.push(parts.join(' ')) };

  // ---- README begins ----
  const alice = await connect(url, aliceToken, { WebSocket, snapshots: true });
  alice.on('partySnapshot', (e) => console.log(`v${e.party.version}`, e.party.members.map((m) => m.username).join(' ')));
  bob.on('partyInvited', (e) => console.log('Bob is invited by', e.invitation.inviter.username));

  const party = await alice.partyCreate({ open: false, maxSize: 4, joinStrategy: 'InvitedOnly' });
  await alice.partyInvite({ partyId: party.partyId, userIds: ['bob'] });
  const { invitations } = await bob.partyInvitationList();
  await bob.partyInvitationAccept({ partyId: invitations[0]!.party.partyId });
  const { code } = await alice.partyCodeGet({ partyId: party.partyId }); // six characters, e.g. "K7QH2M"
  await carol.partyJoinByCode({ code: code.toLowerCase() }); // codes ignore case and get past InvitedOnly
  await dave.partyJoin({ partyId: party.partyId }).catch((e) => console.log(e.code, e.name)); // 242 PartyNotInvited
  // ---- README ends ----
  t.after(() => Promise.all([alice, bob, carol, dave].map((c) => c.close())));

  // Two sockets: bob's line and alice's snapshots interleave as they arrive; each in its order.
  await until(alice, () => lines.includes('v3 Alice Bob Carol'), 'the third snapshot');
  assert.deepEqual(lines.filter((l) => l.startsWith('v')), ['v1 Alice', 'v2 Alice Bob', 'v3 Alice Bob Carol']);
  assert.deepEqual(lines.filter((l) => !l.startsWith('v')).sort(), ['242 PartyNotInvited', 'Bob is invited by Alice']);
});
