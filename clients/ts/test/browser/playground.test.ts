// The lobby playground (SPEC K-3) in a real browser: the huddle binary started with --playground
// (admin listener on 127.0.0.1:0), Debian's chromium driven headless by playwright-core, two
// browser contexts as two players. One mints a token through the page and creates a party (its
// code and version on the card); the other pastes a token, finds the party by search and joins;
// the member list marks the leader; party data and statuses reach the other page; an error shows
// its code and name; a kick shows on the kicked page. Then the lobby: the leader regenerates the
// code and the kicked player joins by code (the old one refused with 247); a strategy changed
// through the update form shows on both cards and refuses a plain join (242); an invitation goes
// from one page to the other and is accepted there; another is cancelled. The slots still waiting
// for Lobby II (chat, names) are checked to be there and disabled. Screenshots end up in target/
// for review: playground.png (Alice's page at the end), playground-bob.png (Bob's, back in the
// party by invitation), playground-invited.png (Bob's with the invitation pending),
// playground-party.png (Alice's with both players in the party and an invitation out).
//
// Needs /usr/bin/chromium (or $CHROMIUM): without it the test is skipped, unless
// HUDDLE_BROWSER_REQUIRED=1 (CI) makes that a failure. Every wait is a locator with a deadline.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startHuddle, type Huddle } from '../huddle.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const REQUIRED = process.env.HUDDLE_BROWSER_REQUIRED === '1';
const SKIP = !existsSync(CHROMIUM) && !REQUIRED ? `${CHROMIUM} not found: apt-get install chromium (or set CHROMIUM) to run the browser tests` : false;
/** The repository's target/, where the screenshots go. */
const TARGET = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../../target');
/** Longest any one wait on a page may take. */
const WAIT_MS = 10_000;
/** A party code as the card shows it. */
const CODE = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/;

async function launch(t: TestContext): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found (HUDDLE_BROWSER_REQUIRED=1): apt-get install chromium`);
  // playwright-core starts the browser with a fresh temporary profile (its own --user-data-dir,
  // removed on close) and talks to it over a pipe: no port, no download.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  t.after(() => browser.close());
  return browser;
}

/** A player's page on the playground; page errors fail the test. */
async function open(browser: Browser, server: Huddle, query = ''): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} ${message.location().url}`);
  });
  (page as Page & { errors: string[] }).errors = errors;
  const response = await page.goto(`${server.adminUrl}/playground${query}`);
  assert.equal(response?.status(), 200);
  return page;
}

function errorsOf(page: Page): string[] {
  return (page as Page & { errors: string[] }).errors;
}

async function waitForState(page: Page, state: string): Promise<void> {
  await page.locator(`#state[data-state="${state}"]`).waitFor();
}

/** A full-page screenshot in target/, taken from the top (the sticky log follows the scroll). */
async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(TARGET, { recursive: true });
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(TARGET, name), fullPage: true });
}

/** The log line of `type` that contains `text`. */
function logLine(page: Page, type: string, text: string) {
  return page.locator(`#log li[data-type="${type}"]`, { hasText: text });
}

test('two players in the playground: mint, create, search, join, data, status, errors, kick, codes, strategies, invitations', { skip: SKIP, timeout: 120_000 }, async (t) => {
  const server = await startHuddle(t, { args: ['--playground'] });
  const browser = await launch(t);
  const alice = await open(browser, server, '?user=alice');
  const bob = await open(browser, server);

  // The server wrote its game listener into the page.
  assert.equal(await alice.locator('#connect-url').inputValue(), server.url);

  // Alice mints a token through the page (loopback, so the mint works) and connects.
  assert.equal(await alice.locator('#mint-user-id').inputValue(), 'alice', '?user= fills the user id');
  await alice.locator('#mint-username').fill('Alice');
  await alice.getByRole('button', { name: 'Mint token' }).click();
  await alice.locator('#mint-output.ok', { hasText: 'token for Alice (alice)' }).waitFor();
  await alice.getByRole('button', { name: 'Connect', exact: true }).click();
  await waitForState(alice, 'open');
  await alice.locator('#me', { hasText: 'Alice (alice)' }).waitFor();

  // Bob pastes a token, asks for snapshot events, and connects from the keyboard (Enter in the token field).
  await bob.locator('#connect-snapshots').check();
  await bob.locator('#connect-token').fill(server.token('bob'));
  await bob.locator('#connect-token').press('Enter');
  await waitForState(bob, 'open');

  // Alice creates an open party with a label, submitting with Enter.
  await alice.locator('#action-create-label').fill('{"mode":"ctf","region":"eu"}');
  await alice.locator('#action-create-maxSize').fill('4');
  await alice.locator('#action-create-label').press('Enter');
  await alice.locator('#action-create output.ok', { hasText: 'created party' }).waitFor();
  const card = alice.locator('#parties article.party');
  const partyId = await card.getAttribute('data-party-id');
  assert.match(partyId ?? '', /^[0-9a-f]{32}$/);
  await card.locator('li[data-user-id="alice"] .badge.leader').waitFor();
  assert.equal(await card.locator('.party-id').textContent(), partyId);
  // The leader's card shows the party code (read at once), the version and the strategies.
  const code = card.locator('.party-code');
  await code.filter({ hasText: CODE }).waitFor();
  const firstCode = (await code.textContent()) ?? '';
  await logLine(alice, 'partyCode', `code ${firstCode}`).waitFor();
  assert.equal(await card.getAttribute('data-version'), '1');
  assert.equal(await card.locator('.tag.version').textContent(), 'v1');
  assert.equal(await card.locator('[data-strategy="join"]').textContent(), 'public');
  assert.equal(await card.locator('[data-strategy="invite"]').textContent(), 'all members');

  // Bob finds it by search and joins from the results.
  await bob.locator('#action-search-query').fill('+label.mode:ctf');
  await bob.locator('#action-search-query').press('Enter');
  const row = bob.locator(`#results tr[data-party-id="${partyId}"]`);
  await row.waitFor();
  assert.match((await row.textContent()) ?? '', /open.*1\/4/);
  await row.getByRole('button', { name: 'Join' }).click();
  await bob.locator(`#parties article[data-party-id="${partyId}"] li[data-user-id="bob"] .badge.you`).waitFor();

  // Both member lists show both players, the leader marked on Alice only, both at version 2.
  for (const page of [alice, bob]) {
    const members = page.locator(`#parties article[data-party-id="${partyId}"] ul.members li`);
    await members.filter({ hasText: 'Bob (bob)' }).waitFor();
    assert.equal(await members.count(), 2);
    assert.equal(await members.filter({ has: page.locator('.badge.leader') }).getAttribute('data-user-id'), 'alice');
    await page.locator(`#parties article[data-party-id="${partyId}"][data-version="2"] .tag.version`, { hasText: 'v2' }).waitFor();
  }
  await logLine(alice, 'partyPresence', 'v2: joins Bob (bob)').waitFor();
  await logLine(bob, 'partySnapshot', 'v2: 2/4, leader Alice (alice)').waitFor();
  assert.equal(await bob.locator(`#parties article[data-party-id="${partyId}"] dd.muted`).first().textContent(), 'only the leader can read it');

  // Party data, with a reply and fire-and-forget, arrives on the other page.
  await alice.locator('#action-data-data').fill('gl hf');
  await alice.locator('#action-data-data').press('Enter');
  await alice.locator('#action-data output.ok', { hasText: 'sent' }).waitFor();
  await logLine(bob, 'partyData', 'Alice (alice) → op 1: gl hf').waitFor();
  await bob.locator('#action-data-opCode').fill('7');
  await bob.locator('#action-data-data').fill('pos 3,4');
  await bob.locator('#action-data-fireAndForget').check();
  await bob.locator('#action-data').getByRole('button', { name: 'Send' }).click();
  await logLine(alice, 'partyData', 'Bob (bob) → op 7: pos 3,4').waitFor();

  // Alice follows Bob; Bob's status shows on Alice's page.
  await alice.locator('#action-follow-userIds').fill('bob');
  await alice.locator('#action-follow-userIds').press('Enter');
  await alice.locator('#following li[data-user-id="bob"]', { hasText: 'online' }).waitFor();
  await bob.locator('#action-status-status').fill('in a party');
  await bob.locator('#action-status-status').press('Enter');
  await alice.locator('#following li[data-user-id="bob"]', { hasText: '“in a party”' }).waitFor();

  // A refused request shows the server's code and name under its form and in the log.
  await bob.locator('#action-join-partyId').fill('0'.repeat(32));
  await bob.locator('#action-join-partyId').press('Enter');
  await bob.locator('#action-join output.error', { hasText: '201 PartyNotFound' }).waitFor();
  await logLine(bob, 'partyJoin', '201 PartyNotFound').waitFor();

  // The slots still waiting for Lobby II are on the page, disabled; Lobby I's forms are live.
  for (const slot of ['chat', 'create-lobby']) {
    const form = bob.locator(`form[data-slot="${slot}"]`);
    await form.locator('fieldset[disabled] .slot', { hasText: 'Slot:' }).waitFor();
  }
  for (const form of ['join-code', 'invite']) assert.equal(await bob.locator(`#action-${form}:not([data-slot]) button[type="submit"]`).count(), 1, form);

  // The leader kicks Bob: Bob's page says so and drops the party; Alice's list loses him.
  await alice.locator(`#parties article[data-party-id="${partyId}"] li[data-user-id="bob"] button[data-action="kick"]`).click();
  await bob.locator('#notices .notice[data-removed="Kicked"]', { hasText: 'you were kicked by the leader' }).waitFor();
  await bob.locator(`#parties article[data-party-id="${partyId}"]`).waitFor({ state: 'detached' });
  await logLine(bob, 'partyRemoved', 'Kicked').waitFor();
  await alice.locator(`#parties article[data-party-id="${partyId}"] li[data-user-id="bob"]`).waitFor({ state: 'detached' });
  await logLine(alice, 'partyPresence', 'leaves Bob (bob)').waitFor();

  // Party codes: Alice regenerates (the old code dies at once); Bob joins with the new one, in
  // lower case, and the old one is refused.
  await card.getByRole('button', { name: 'Regenerate' }).click();
  await code.filter({ hasText: CODE }).filter({ hasNotText: firstCode }).waitFor();
  const secondCode = (await code.textContent()) ?? '';
  await bob.locator('#action-join-code-code').fill(firstCode);
  await bob.locator('#action-join-code-code').press('Enter');
  await bob.locator('#action-join-code output.error', { hasText: '247 PartyCodeNotFound' }).waitFor();
  await bob.locator('#action-join-code-code').fill(secondCode.toLowerCase());
  await bob.locator('#action-join-code').getByRole('button', { name: 'Join' }).click();
  await bob.locator('#action-join-code output.ok', { hasText: `joined ${partyId}` }).waitFor();
  await bob.locator(`#parties article[data-party-id="${partyId}"] li[data-user-id="bob"] .badge.you`).waitFor();
  await card.locator('li[data-user-id="bob"]').waitFor();
  await alice.locator(`#parties article[data-party-id="${partyId}"][data-version="4"]`).waitFor();

  // Strategies through the update form: only invited users (and codes) get in; both cards say so.
  await alice.locator('#action-update-joinStrategy').selectOption('InvitedOnly');
  await alice.locator('#action-update').getByRole('button', { name: 'Update' }).click();
  for (const page of [alice, bob]) {
    await page.locator(`#parties article[data-party-id="${partyId}"][data-version="5"] [data-strategy="join"]`, { hasText: 'invited only' }).waitFor();
  }
  await logLine(bob, 'partyUpdated', 'joins: invited only, invites: all members').waitFor();
  await bob.locator(`#parties article[data-party-id="${partyId}"] button[data-action="leave"]`).click();
  await card.locator('li[data-user-id="bob"]').waitFor({ state: 'detached' });
  await bob.locator('#action-join-partyId').fill(partyId!);
  await bob.locator('#action-join-partyId').press('Enter');
  await bob.locator('#action-join output.error', { hasText: '242 PartyNotInvited' }).waitFor();

  // An invitation from Alice's page to Bob's: listed on both, accepted on Bob's.
  await alice.locator('#action-invite-userIds').fill('bob');
  await alice.locator('#action-invite-userIds').press('Enter');
  await alice.locator('#action-invite output.ok', { hasText: 'invited bob' }).waitFor();
  await card.locator('ul.invited li[data-user-id="bob"]', { hasText: 'by Alice (alice)' }).waitFor();
  await logLine(alice, 'partyInvitationSent', 'Alice (alice) invited bob').waitFor();
  const invitation = bob.locator(`#invitations li[data-party-id="${partyId}"]`);
  await invitation.filter({ hasText: 'from Alice (alice)' }).waitFor();
  await logLine(bob, 'partyInvited', 'Alice (alice) invites you to party').waitFor();
  await screenshot(bob, 'playground-invited.png');
  await invitation.getByRole('button', { name: 'Accept' }).click();
  await bob.locator(`#parties article[data-party-id="${partyId}"] li[data-user-id="bob"] .badge.you`).waitFor();
  await bob.locator('#invitations li.empty', { hasText: 'No pending invitations.' }).waitFor();
  await card.locator('li[data-user-id="bob"]').waitFor();
  await card.locator('ul.invited').waitFor({ state: 'detached' });
  for (const page of [alice, bob]) await page.locator(`#parties article[data-party-id="${partyId}"][data-version="7"]`).waitFor();

  // An invitation to someone offline, cancelled by the leader: every member's card drops it.
  await alice.locator('#action-invite-userIds').fill('carol');
  await alice.locator('#action-invite-userIds').press('Enter');
  const carolInvited = bob.locator(`#parties article[data-party-id="${partyId}"] ul.invited li[data-user-id="carol"]`);
  await carolInvited.waitFor();
  assert.equal(await carolInvited.locator('button').count(), 0, 'only the inviter or the leader may cancel');
  await screenshot(alice, 'playground-party.png');
  await card.locator('ul.invited li[data-user-id="carol"] button[data-action="cancel-invitation"]').click();
  await carolInvited.waitFor({ state: 'detached' });
  await logLine(bob, 'partyInvitationEnded', "carol's invitation ended: cancelled").waitFor();

  await screenshot(alice, 'playground.png');
  await screenshot(bob, 'playground-bob.png');
  assert.deepEqual(errorsOf(alice), [], 'no script errors on Alice\'s page');
  assert.deepEqual(errorsOf(bob), [], 'no script errors on Bob\'s page');
});

test('the playground shows why it cannot mint when the admin listener is not on loopback', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const server = await startHuddle(t, { adminListen: '0.0.0.0:0', args: ['--playground'] });
  const browser = await launch(t);
  // Reached through loopback all the same: the bind, not the caller, decides.
  const page = await open(browser, { ...server, adminUrl: server.adminUrl!.replace('0.0.0.0', '127.0.0.1') });
  await page.locator('#mint-note', { hasText: 'only while the admin listener is bound to loopback' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Mint token' }).isDisabled(), true);
  // A pasted token still connects.
  await page.locator('#connect-token').fill(server.token('carol'));
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await waitForState(page, 'open');
  assert.deepEqual(errorsOf(page), []);
});
