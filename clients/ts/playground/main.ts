// The lobby playground (SPEC K-3): a page served by `huddle serve --playground` at /playground on
// the admin listener. It connects with a pasted or minted token through the TypeScript client and
// drives the lobby with forms (actions.ts), shows this session's parties, members and followed
// statuses (lobby.ts), and logs every request, reply and event (log.ts).

import { HuddleClient, HuddleError, type Inbound, type RequestArgs, type RequestName, type RequestReply } from '../src/index.js';
import { ACTIONS, GROUPS, type Action, type ActionContext, type Field, type Values } from './actions.js';
import { byId, h } from './dom.js';
import { errorText, toJson, who } from './format.js';
import { Lobby, type Session } from './lobby.js';
import { EventLog, summarize } from './log.js';

/** Where the page connects when it was not served by huddle (opened as a file). */
const DEFAULT_WS_URL = 'ws://127.0.0.1:7350/ws';

function meta(name: string): string | null {
  const content = document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? null;
  // An unfilled slot (`%…%`): the page was not served by huddle.
  return content === null || content.startsWith('%') ? null : content;
}

const log = new EventLog(byId<HTMLOListElement>('log'), byId<HTMLInputElement>('log-filter'), byId<HTMLButtonElement>('log-clear'));
let client: HuddleClient | null = null;
/** The user the token field's token was minted for (the client re-mints when it is refused). */
let mintedFor: { userId: string; username: string } | null = null;

const session: Session = {
  async request<K extends RequestName>(name: K, args: RequestArgs<K>): Promise<RequestReply<K>> {
    log.add('out', name, args === undefined ? '' : oneLine(args), args);
    try {
      if (client === null) throw HuddleError.client('NotConnected', `${name}: connect first`);
      const reply = await client.request(name, args);
      log.add('reply', reply.type, summarize(reply), reply);
      return reply;
    } catch (error) {
      log.add('error', name, errorText(error));
      throw error;
    }
  },
  me: () => client?.presence ?? null,
};

const lobby = new Lobby(session, {
  parties: byId('parties'),
  notices: byId('notices'),
  invitations: byId('invitations'),
  results: byId('results'),
  following: byId('following'),
});

const context: ActionContext = {
  request: session.request,
  fireAndForget(args) {
    const sent = client?.partyDataFireAndForget(args) ?? false;
    log.add(sent ? 'out' : 'error', 'partyDataSend', `${sent ? '' : 'not sent (not connected): '}fire and forget ${oneLine(args)}`);
    return sent;
  },
  lobby,
};

function oneLine(value: unknown): string {
  return toJson(value).replace(/\s+/g, ' ');
}

// --- connection -------------------------------------------------------------------------------

const stateBadge = byId('state');
const connectOutput = byId<HTMLOutputElement>('connect-output');
const disconnectButton = byId<HTMLButtonElement>('disconnect-button');

function showState(): void {
  const state = client?.state ?? 'idle';
  stateBadge.textContent = state;
  stateBadge.dataset['state'] = state;
  disconnectButton.disabled = client === null || state === 'closed';
  const me = client?.presence ?? null;
  byId('me').textContent = me === null || state !== 'open' ? '' : `${who(me)} · session ${me.sessionId}`;
  byId('server-version').textContent = client?.serverVersion ? `huddle ${client.serverVersion}` : '';
  document.title = me === null ? 'huddle playground' : `${me.username} · huddle playground`;
}

function show(output: HTMLOutputElement, text: string, ok: boolean): void {
  output.className = ok ? 'result ok' : 'result error';
  output.textContent = text;
}

async function connect(url: string, token: string, status: boolean, snapshots: boolean): Promise<void> {
  if (client !== null) await client.close();
  lobby.reset();
  const next = new HuddleClient(url, token, {
    status,
    snapshots,
    refreshToken: async () => (mintedFor === null ? null : (await mint(mintedFor.userId, mintedFor.username)).token),
  });
  client = next;
  let welcomes = 0;
  next.on('welcome', () => {
    if (welcomes++ > 0) lobby.reset(); // a reconnect is a new session
    showState();
  });
  next.on('message', (message: Inbound) => {
    if (client !== next) return;
    log.add(message.type === 'error' ? 'error' : 'event', message.type, summarize(message), message);
    lobby.apply(message);
  });
  next.on('disconnected', (d) => {
    log.add('info', 'disconnected', `close ${d.code}${d.reason ? ` ${d.reason}` : ''}; reconnecting in ${d.reconnectInMs} ms`, d);
    showState();
  });
  next.on('closed', (c) => {
    log.add(c.byClient ? 'info' : 'error', 'closed', c.error === null ? `close ${c.code}${c.reason ? ` ${c.reason}` : ''}` : errorText(c.error), c);
    if (client === next && !c.byClient) show(connectOutput, `stopped: ${c.error === null ? `close ${c.code} ${c.reason}` : errorText(c.error)}`, false);
    showState();
  });
  next.on('skipped', (s) => log.add('info', 'skipped', s.reason, s));
  showState();
  log.add('info', 'connect', next.url);
  try {
    const welcome = await next.connect();
    show(connectOutput, `connected as ${who(welcome.presence)}`, true);
    document.querySelector<HTMLInputElement>('#action-create input')?.focus();
  } catch (error) {
    show(connectOutput, errorText(error), false);
  }
  showState();
}

const connectForm = byId<HTMLFormElement>('connect');
const urlInput = byId<HTMLInputElement>('connect-url');
const tokenInput = byId<HTMLTextAreaElement>('connect-token');
urlInput.value = meta('huddle-ws-url') ?? DEFAULT_WS_URL;
connectForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const checked = (id: string) => byId<HTMLInputElement>(id).checked;
  void connect(urlInput.value.trim(), tokenInput.value.trim(), checked('connect-status'), checked('connect-snapshots'));
});
tokenInput.addEventListener('keydown', (event) => {
  // Tokens have no line breaks: Enter submits here as in any other field.
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    connectForm.requestSubmit();
  }
});
tokenInput.addEventListener('input', () => (mintedFor = null));
disconnectButton.addEventListener('click', async () => {
  await client?.close();
  show(connectOutput, 'disconnected', true);
  showState();
});

// --- the token mint (POST /playground/token; the server allows it only on loopback) -------------

interface Minted {
  token: string;
  user_id: string;
  username: string;
  expires_at_s: number;
}

async function mint(userId: string, username: string): Promise<Minted> {
  const response = await fetch('/playground/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId, ...(username === '' ? {} : { username }) }),
  });
  const body = (await response.json().catch(() => ({}))) as Partial<Minted> & { code?: string; message?: string };
  if (!response.ok || typeof body.token !== 'string') {
    throw new Error(`${response.status} ${body.code ?? response.statusText}: ${body.message ?? 'no token in the answer'}`);
  }
  return body as Minted;
}

const mintForm = byId<HTMLFormElement>('mint');
const mintOutput = byId<HTMLOutputElement>('mint-output');
const mintState = meta('huddle-mint');
if (mintState !== 'on') {
  byId<HTMLFieldSetElement>('mint-fields').disabled = true;
  const note = byId('mint-note');
  note.hidden = false;
  note.textContent = mintState ?? 'Open this page from `huddle serve --playground` to mint tokens; paste one meanwhile.';
}
const wanted = new URLSearchParams(location.search);
byId<HTMLInputElement>('mint-user-id').value = wanted.get('user') ?? '';
mintForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const userId = byId<HTMLInputElement>('mint-user-id').value.trim();
  const username = byId<HTMLInputElement>('mint-username').value.trim();
  try {
    const minted = await mint(userId, username);
    tokenInput.value = minted.token;
    mintedFor = { userId, username };
    show(mintOutput, `token for ${minted.username} (${minted.user_id}), valid until ${new Date(minted.expires_at_s * 1000).toLocaleString()}`, true);
    byId('connect-button').focus();
  } catch (error) {
    show(mintOutput, errorText(error), false);
  }
});

// --- the action forms ---------------------------------------------------------------------------

const pickers: HTMLSelectElement[] = [];

function fieldInput(action: Action, field: Field): HTMLElement {
  const id = `action-${action.id}-${field.name}`;
  const attrs: Record<string, string> = { name: field.name, id };
  if (field.placeholder !== undefined) attrs['placeholder'] = field.placeholder;
  if (field.required) attrs['required'] = '';
  if (field.mono) attrs['spellcheck'] = 'false';
  switch (field.kind) {
    case 'checkbox': {
      const input = h('input', { attrs: { ...attrs, type: 'checkbox' } });
      input.checked = field.value === true;
      return h('label', { class: 'check' }, input, field.label);
    }
    case 'select':
    case 'party': {
      const select = h('select', { attrs }, ...(field.options ?? []).map(([value, label]) => h('option', { text: label, attrs: { value } })));
      if (field.kind === 'party') pickers.push(select);
      if (typeof field.value === 'string') select.value = field.value;
      return h('label', {}, field.label, select);
    }
    case 'number':
    case 'text': {
      if (field.kind === 'number') {
        attrs['type'] = 'number';
        if (field.min !== undefined) attrs['min'] = String(field.min);
        if (field.max !== undefined) attrs['max'] = String(field.max);
      }
      const input = h('input', { class: field.mono ? 'mono' : '', attrs });
      if (typeof field.value === 'string') input.value = field.value;
      return h('label', {}, field.label, input);
    }
  }
}

function values(form: HTMLFormElement): Values {
  const out: Values = {};
  for (const element of Array.from(form.elements)) {
    if (element instanceof HTMLInputElement) out[element.name] = element.type === 'checkbox' ? element.checked : element.value;
    else if (element instanceof HTMLSelectElement) out[element.name] = element.value;
  }
  return out;
}

function actionForm(action: Action): HTMLFormElement {
  if (action.run === undefined) {
    // A slot: the title and what brings it, nothing to fill in yet.
    const fieldset = h('fieldset', {}, h('legend', { text: action.title }), h('p', { class: 'slot', text: `Slot: ${action.slot ?? 'not in this server yet'}` }));
    fieldset.disabled = true;
    return h('form', { class: 'form action', attrs: { id: `action-${action.id}` }, data: { slot: action.id } }, fieldset);
  }
  const run = action.run;
  const output = h('output', { class: 'result', attrs: { 'aria-live': 'polite' } });
  const submit = h('button', { text: action.submit, attrs: { type: 'submit' } });
  const inputs = action.fields.filter((f) => f.kind !== 'checkbox').map((f) => {
    const label = fieldInput(action, f);
    if (!f.narrow) label.classList.add('wide');
    return label;
  });
  const checks = action.fields.filter((f) => f.kind === 'checkbox').map((f) => fieldInput(action, f));
  const fieldset = h(
    'fieldset',
    {},
    h('legend', { text: action.title }),
    inputs.length > 0 ? h('div', { class: 'fields' }, ...inputs) : null,
    checks.length > 0 ? h('div', { class: 'row checks' }, ...checks) : null,
    h('div', { class: 'buttons' }, submit, output),
    action.hint === undefined ? null : h('p', { class: 'hint', text: action.hint }),
  );
  const form = h('form', { class: 'form action', attrs: { id: `action-${action.id}`, autocomplete: 'off' } }, fieldset);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    output.textContent = '';
    submit.disabled = true;
    try {
      const result = await run(context, values(form));
      show(output, typeof result === 'string' ? result : 'done', true);
    } catch (error) {
      show(output, errorText(error), false);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** Every group of forms, in its place (see `GROUPS`). */
function renderActions(): void {
  const places = { controls: byId('actions'), party: byId('party-actions'), status: byId('status-actions') };
  for (const place of Object.values(places)) place.replaceChildren();
  for (const group of GROUPS) {
    const actions = ACTIONS.filter((a) => a.group === group.name);
    const details = h('details', { class: 'group panel', attrs: { open: '' } }, h('summary', { text: group.name }), ...actions.map(actionForm));
    places[group.place].append(details);
  }
  const lost = ACTIONS.filter((a) => !GROUPS.some((g) => g.name === a.group));
  if (lost.length > 0) throw new Error(`forms in no group of GROUPS: ${lost.map((a) => a.id).join(', ')}`);
}

/** Keeps every party picker's options on this session's parties, the selected one chosen. */
function refreshPickers(): void {
  const ids = lobby.partyIds;
  for (const select of pickers) {
    select.replaceChildren(...(ids.length === 0 ? [h('option', { text: '(not in a party)', attrs: { value: '' } })] : ids.map((id) => h('option', { text: id, attrs: { value: id } }))));
    select.value = lobby.current ?? '';
  }
}

renderActions();
lobby.onPartiesChanged = refreshPickers;
refreshPickers();
showState();
log.add('info', 'ready', `game listener ${urlInput.value}; token mint ${mintState === 'on' ? 'on' : 'off'}`);
