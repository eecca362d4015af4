// The single-file browser bundle (dist/huddle-client.bundle.js, esbuild, flatbuffers inside) is the
// same client: loaded as a plain ES module, it connects and answers requests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { startHuddle } from './huddle.js';

const bundlePath = join(dirname(fileURLToPath(import.meta.url)), '../../dist/huddle-client.bundle.js');

test('the browser bundle connects, creates a party and maps errors like the package', async (t) => {
  const bundle = (await import(pathToFileURL(bundlePath).href)) as typeof import('@huddle/client');
  const server = await startHuddle(t);
  const client = await bundle.connect(server.url, server.token('alice'), { WebSocket });
  t.after(() => client.close());
  assert.deepEqual(await client.ping(), { type: 'pong' });
  const party = await client.partyCreate({ open: true, maxSize: 2 });
  assert.ok(bundle.isPartyId(party.partyId));
  await assert.rejects(client.partyJoin({ partyId: '0'.repeat(32) }), (error: Error) => {
    assert.ok(error instanceof bundle.HuddleError);
    assert.equal(error.name, 'PartyNotFound');
    return true;
  });
});
