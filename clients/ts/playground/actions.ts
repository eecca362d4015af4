// The forms of the page, one row each: the fields it shows and what submitting it does. The page
// renders every row the same way (labels, Enter submits, the reply or the error with its code and
// name under the form). A row without `run` is a slot: a feature the server does not have yet,
// shown disabled with what brings it. Growing the page with a request the schema gains is one row
// here (and, for a new event that changes the lobby, a case in lobby.ts).

import { fb, type InviteStrategy, type JoinStrategy, type PartySearchArgs, type RequestArgs, type RequestName, type RequestReply, type StrategyArgs } from '../src/index.js';
import { spaced } from './format.js';
import type { Lobby } from './lobby.js';

export type FieldKind = 'text' | 'number' | 'checkbox' | 'select' | 'party';

export interface Field {
  name: string;
  label: string;
  kind: FieldKind;
  /** Initial value: text for text, number and select fields, a boolean for checkboxes. */
  value?: string | boolean;
  placeholder?: string;
  /** `select`: [value, label] pairs. */
  options?: readonly (readonly [string, string])[];
  required?: boolean;
  mono?: boolean;
  /** Half the form's width (short numbers and choices); others take a whole line. */
  narrow?: boolean;
  min?: number;
  max?: number;
}

/** A form's values by field name: strings, and booleans for checkboxes. */
export type Values = Record<string, string | boolean>;

export interface ActionContext {
  /** Sends a request (logged with its reply or error). */
  request<K extends RequestName>(name: K, args: RequestArgs<K>): Promise<RequestReply<K>>;
  /** Party data without a reply (SPEC P-9); false when not connected. */
  fireAndForget(args: RequestArgs<'partyDataSend'>): boolean;
  lobby: Lobby;
}

/** Where a group of forms goes: the left column, under the party cards, or above the followed
 *  statuses. */
export type Place = 'controls' | 'party' | 'status';

/** The groups in page order; a form's `group` must be one of them. */
export const GROUPS: readonly { name: string; place: Place }[] = [
  { name: 'Create', place: 'controls' },
  { name: 'Find and join', place: 'controls' },
  { name: 'Session', place: 'controls' },
  { name: 'In a party', place: 'party' },
  { name: 'Status', place: 'status' },
];

export interface Action {
  /** The form's DOM id is `action-<id>`, each field's `action-<id>-<name>`. */
  id: string;
  group: string;
  title: string;
  fields: readonly Field[];
  submit: string;
  /** What the form does; its result (a string) is shown under the form. */
  run?: (ctx: ActionContext, values: Values) => Promise<string | void> | string | void;
  /** For a slot (no `run`): what brings the feature. A slot shows its title and this only; its
   *  fields are the intended form, drawn once `run` exists. */
  slot?: string;
  hint?: string;
}

const text = (values: Values, name: string): string => String(values[name] ?? '').trim();
const flag = (values: Values, name: string): boolean => values[name] === true;

/** A number field's value, or undefined when empty. */
function integer(values: Values, name: string): number | undefined {
  const raw = text(values, name);
  if (raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new TypeError(`${name} must be an integer, got ${raw}`);
  return value;
}

/** A comma- or space-separated list. */
function words(values: Values, name: string): string[] {
  return text(values, name).split(/[\s,]+/).filter((w) => w !== '');
}

/** `keep` / `yes` / `no` → undefined / true / false. */
function tristate(values: Values, name: string): boolean | undefined {
  const value = text(values, name);
  return value === 'yes' ? true : value === 'no' ? false : undefined;
}

const TRISTATE = [
  ['keep', 'keep'],
  ['yes', 'yes'],
  ['no', 'no'],
] as const;

/** A schema enum's names as [value, label] options (`InvitedOnly` → "invited only"), `Unset` left
 *  out: the names come from the generated code, so a strategy the schema gains shows up by itself. */
function enumOptions(values: object): [string, string][] {
  return Object.keys(values)
    .filter((name) => Number.isNaN(Number(name)) && name !== 'Unset')
    .map((name) => [name, spaced(name)]);
}

const JOIN_STRATEGIES = enumOptions(fb.PartyJoinStrategy);
const INVITE_STRATEGIES = enumOptions(fb.PartyInviteStrategy);
const KEEP: [string, string] = ['keep', 'keep'];

/** The strategies a form chose; `keep` (update) leaves one out. */
function strategies(values: Values): StrategyArgs {
  const join = text(values, 'joinStrategy');
  const invite = text(values, 'inviteStrategy');
  return {
    ...(join === '' || join === 'keep' ? {} : { joinStrategy: join as JoinStrategy }),
    ...(invite === '' || invite === 'keep' ? {} : { inviteStrategy: invite as InviteStrategy }),
  };
}

const party = (required = true): Field => ({ name: 'partyId', label: 'Party', kind: 'party', required });

export const ACTIONS: readonly Action[] = [
  {
    id: 'create',
    group: 'Create',
    title: 'Create a party',
    fields: [
      { name: 'label', label: 'Label (JSON object, searchable)', kind: 'text', placeholder: '{"mode":"ctf","region":"eu"}', mono: true },
      { name: 'joinStrategy', label: 'Who may join', kind: 'select', options: JOIN_STRATEGIES, value: 'Public', narrow: true },
      { name: 'inviteStrategy', label: 'Who may invite', kind: 'select', options: INVITE_STRATEGIES, value: 'AllMembers', narrow: true },
      { name: 'maxSize', label: 'Max size', kind: 'number', value: '4', min: 1, max: 256, required: true, narrow: true },
      { name: 'open', label: 'open (join without asking)', kind: 'checkbox', value: true },
      { name: 'hidden', label: 'hidden from search', kind: 'checkbox', value: false },
    ],
    submit: 'Create',
    hint: 'Invitations and codes get past every join strategy but "not allowed".',
    async run(ctx, v) {
      const label = text(v, 'label');
      const reply = await ctx.request('partyCreate', {
        open: flag(v, 'open'),
        maxSize: integer(v, 'maxSize') ?? 0,
        hidden: flag(v, 'hidden'),
        ...(label === '' ? {} : { label }),
        ...strategies(v),
      });
      ctx.lobby.upsert(reply);
      return `created party ${reply.partyId}`;
    },
  },
  {
    id: 'create-lobby',
    group: 'Create',
    title: 'Name and chat',
    fields: [
      { name: 'name', label: 'Name', kind: 'text' },
      { name: 'chat', label: 'chat enabled', kind: 'checkbox', value: false },
    ],
    submit: 'Create',
    slot: 'Party names and chat arrive with Lobby II (SPEC L-6, L-7).',
  },
  {
    id: 'search',
    group: 'Find and join',
    title: 'Search',
    fields: [
      { name: 'query', label: 'Query', kind: 'text', placeholder: '+label.mode:ctf', mono: true },
      { name: 'open', label: 'Open', kind: 'select', options: [['any', 'any'], ['yes', 'open only'], ['no', 'closed only']], narrow: true },
      { name: 'limit', label: 'Limit', kind: 'number', min: 1, max: 100, placeholder: 'default', narrow: true },
    ],
    submit: 'Search',
    hint: 'Empty query: every party. Results appear under "Search results".',
    async run(ctx, v) {
      const open = text(v, 'open');
      const limit = integer(v, 'limit');
      const args: PartySearchArgs = { query: text(v, 'query'), ...(open === 'any' ? {} : { open: open === 'yes' }), ...(limit === undefined ? {} : { limit }) };
      const reply = await ctx.request('partySearch', args);
      ctx.lobby.showSearch(args, reply);
      return `${reply.parties.length} found`;
    },
  },
  {
    id: 'join',
    group: 'Find and join',
    title: 'Join by id',
    fields: [{ name: 'partyId', label: 'Party id (32 hex digits)', kind: 'text', required: true, mono: true }],
    submit: 'Join',
    async run(ctx, v) {
      const reply = await ctx.lobby.join(text(v, 'partyId'));
      return reply.type === 'partyInfo' ? `joined ${reply.partyId}` : 'join requested: the party is closed, its leader decides';
    },
  },
  {
    id: 'join-code',
    group: 'Find and join',
    title: 'Join by code',
    fields: [{ name: 'code', label: 'Party code (any case)', kind: 'text', placeholder: 'K7QH2M', required: true, mono: true }],
    submit: 'Join',
    hint: 'The leader sees the code on the party card. A code joins closed parties too.',
    async run(ctx, v) {
      const reply = await ctx.request('partyJoinByCode', { code: text(v, 'code') });
      ctx.lobby.upsert(reply);
      return `joined ${reply.partyId}`;
    },
  },
  {
    id: 'data',
    group: 'In a party',
    title: 'Send party data',
    fields: [
      party(),
      { name: 'opCode', label: 'Op code', kind: 'number', value: '1', required: true, narrow: true },
      { name: 'data', label: 'Data (sent as UTF-8)', kind: 'text', placeholder: 'gl hf' },
      { name: 'fireAndForget', label: 'fire and forget (no reply)', kind: 'checkbox', value: false },
    ],
    submit: 'Send',
    async run(ctx, v) {
      const args = { partyId: text(v, 'partyId'), opCode: integer(v, 'opCode') ?? 0, data: String(v['data'] ?? '') };
      if (flag(v, 'fireAndForget')) return ctx.fireAndForget(args) ? 'sent (a refusal would arrive as an error event)' : 'not connected: nothing sent';
      await ctx.request('partyDataSend', args);
      return 'sent';
    },
  },
  {
    id: 'chat',
    group: 'In a party',
    title: 'Chat',
    fields: [party(false), { name: 'body', label: 'Message', kind: 'text' }],
    submit: 'Send',
    slot: 'Party chat arrives with Lobby II (SPEC L-6).',
  },
  {
    id: 'invite',
    group: 'In a party',
    title: 'Invite',
    fields: [party(), { name: 'userIds', label: 'User ids (1 to 16; offline users too)', kind: 'text', placeholder: 'bob, carol', required: true, mono: true }],
    submit: 'Invite',
    hint: 'They see it under "Invitations"; the party card lists it until it ends.',
    async run(ctx, v) {
      const userIds = words(v, 'userIds');
      await ctx.request('partyInvite', { partyId: text(v, 'partyId'), userIds });
      return `invited ${userIds.join(', ')}`;
    },
  },
  {
    id: 'update',
    group: 'In a party',
    title: 'Update settings (leader)',
    fields: [
      party(),
      { name: 'open', label: 'Open', kind: 'select', options: TRISTATE, narrow: true },
      { name: 'hidden', label: 'Hidden', kind: 'select', options: TRISTATE, narrow: true },
      { name: 'joinStrategy', label: 'Who may join', kind: 'select', options: [KEEP, ...JOIN_STRATEGIES], narrow: true },
      { name: 'inviteStrategy', label: 'Who may invite', kind: 'select', options: [KEEP, ...INVITE_STRATEGIES], narrow: true },
      { name: 'label', label: 'New label (empty: keep)', kind: 'text', mono: true },
      { name: 'clearLabel', label: 'clear the label', kind: 'checkbox', value: false },
    ],
    submit: 'Update',
    async run(ctx, v) {
      const open = tristate(v, 'open');
      const hidden = tristate(v, 'hidden');
      const label = flag(v, 'clearLabel') ? '' : text(v, 'label') || undefined;
      await ctx.request('partyUpdate', {
        partyId: text(v, 'partyId'),
        ...(open === undefined ? {} : { open }),
        ...(hidden === undefined ? {} : { hidden }),
        ...(label === undefined ? {} : { label }),
        ...strategies(v),
      });
      return 'updated';
    },
  },
  {
    id: 'status',
    group: 'Status',
    title: 'Set my status',
    fields: [
      { name: 'status', label: 'Status', kind: 'text', placeholder: 'in the lobby' },
      { name: 'offline', label: 'appear offline', kind: 'checkbox', value: false },
    ],
    submit: 'Set',
    async run(ctx, v) {
      await ctx.request('statusUpdate', { status: flag(v, 'offline') ? null : String(v['status'] ?? '') });
      return flag(v, 'offline') ? 'appearing offline' : 'status set';
    },
  },
  {
    id: 'follow',
    group: 'Status',
    title: 'Follow',
    fields: [
      { name: 'userIds', label: 'User ids', kind: 'text', placeholder: 'bob, carol', narrow: true },
      { name: 'usernames', label: 'or usernames (online)', kind: 'text', placeholder: 'Bob', narrow: true },
    ],
    submit: 'Follow',
    async run(ctx, v) {
      const reply = await ctx.request('statusFollow', { userIds: words(v, 'userIds'), usernames: words(v, 'usernames') });
      ctx.lobby.followed(reply.presences);
      return `${reply.presences.length} ${reply.presences.length === 1 ? 'session' : 'sessions'} online`;
    },
  },
  {
    id: 'unfollow',
    group: 'Status',
    title: 'Unfollow',
    fields: [{ name: 'userIds', label: 'User ids', kind: 'text', placeholder: 'bob', required: true }],
    submit: 'Unfollow',
    async run(ctx, v) {
      const userIds = words(v, 'userIds');
      await ctx.request('statusUnfollow', { userIds });
      ctx.lobby.unfollowed(userIds);
      return 'unfollowed';
    },
  },
  {
    id: 'my-parties',
    group: 'Session',
    title: 'My parties (from the server)',
    fields: [],
    submit: 'Refresh',
    async run(ctx) {
      const reply = await ctx.request('partyMyList', undefined);
      for (const summary of reply.parties) ctx.lobby.upsert(await ctx.request('partyGet', { partyId: summary.partyId }));
      return `${reply.parties.length} parties`;
    },
  },
  {
    id: 'ping',
    group: 'Session',
    title: 'Ping',
    fields: [],
    submit: 'Ping',
    async run(ctx) {
      const started = performance.now();
      await ctx.request('ping', undefined);
      return `pong in ${(performance.now() - started).toFixed(1)} ms`;
    },
  },
];
