// What the client sends: one row per request of the schema's `Message` union, with the arguments
// it takes, how they are written, and which replies answer it. The client turns every row into a
// method of the same name (`client.partyCreate(args)`), so a request the schema appends (a lobby
// feature) is one row here plus, for a new reply, one row in messages.ts.
//
// Arguments are objects because the schema only ever appends fields: a new optional field is a new
// optional property, and every existing call keeps compiling. A field the wire leaves out when
// unset (a `Toggle`, a `UintValue`, an absent string) is an optional property; `undefined` leaves
// it out.

import { Builder } from 'flatbuffers';
import * as fb from './generated/huddle/fb.js';
import { checkBool, checkI64, checkString, checkStrings, checkU32, checkU64, partyIdFromHex, type PartyIdHex } from './ids.js';
import type { Inbound, InboundName, Presence } from './messages.js';

type Offset = number;

export interface RequestSpec<A, R extends InboundName> {
  readonly message: fb.Message;
  /** Writes the request's table into `builder` (already cleared) and returns its offset. */
  encode(builder: Builder, args: A): Offset;
  /** The replies that answer it (besides `error`, which always may). */
  readonly replies: readonly R[];
}

function request<A, const R extends InboundName>(message: fb.Message, encode: (builder: Builder, args: A) => Offset, replies: readonly R[]): RequestSpec<A, R> {
  return { message, encode, replies };
}

/** A join strategy (SPEC L-4) by its schema name: `Public`, `FriendsOfLeader`, `FriendsOfMembers`, `InvitedOnly`, `NotAllowed`. */
export type JoinStrategy = Exclude<keyof typeof fb.PartyJoinStrategy, 'Unset'>;
/** An invite strategy (SPEC L-4) by its schema name: `AllMembers` or `LeaderOnly`. */
export type InviteStrategy = Exclude<keyof typeof fb.PartyInviteStrategy, 'Unset'>;

/** The strategies a create or an update may set; absent = the default at create, unchanged in an update. */
export interface StrategyArgs {
  joinStrategy?: JoinStrategy;
  inviteStrategy?: InviteStrategy;
}

export interface PartyCreateArgs extends StrategyArgs {
  open: boolean;
  /** 1..=party_members_max (256 by default), the leader included. */
  maxSize: number;
  /** A JSON object (searchable, see the README's Search section), or "" / absent for none. */
  label?: string;
  /** Hidden parties never appear in search; they cannot have a label. */
  hidden?: boolean;
}

export interface PartyRef {
  partyId: PartyIdHex;
}

/** A member or requester, as the events and replies gave it (matched by `sessionId`). */
export interface PartyPresenceArgs extends PartyRef {
  presence: Presence;
}

export interface PartyDataArgs extends PartyRef {
  /** A number or bigint in the i64 range; received as a bigint. */
  opCode: number | bigint;
  /** Bytes, or a string sent as its UTF-8 bytes. */
  data: Uint8Array | string;
}

/** Absent properties (strategies included) keep their value. */
export interface PartyUpdateArgs extends PartyRef, StrategyArgs {
  /** Absent keeps the current value. */
  open?: boolean;
  /** Absent keeps the current value. */
  hidden?: boolean;
  /** Absent keeps the label, "" clears it. */
  label?: string;
}

export interface PartySearchArgs {
  /** The query language of the README's Search section; absent or "" = every party. */
  query?: string;
  /** Absent: open and closed parties. */
  open?: boolean;
  /** Parties per page, 1..=search_page_limit_max; absent = the server's default page. */
  limit?: number;
  /** The previous page's cursor; pass it with the same query, open filter and limit. */
  cursor?: string | null;
}

export interface PartyInviteArgs extends PartyRef {
  /** 1..=invitees_per_request_max (16) user ids, all or nothing; offline and unknown users are valid. */
  userIds: string[];
}

export interface PartyInvitationCancelArgs extends PartyRef {
  /** The invitee. */
  userId: string;
}

export interface PartyJoinByCodeArgs {
  /** The party's code; letter case and surrounding whitespace are ignored. */
  code: string;
}

export interface StatusUpdateArgs {
  /** The status to show; "" is online with an empty status; null or absent appears offline. */
  status?: string | null;
}

export interface StatusFollowArgs {
  userIds?: string[];
  /** Resolved among connected users at the moment of the follow. */
  usernames?: string[];
}

export interface StatusUnfollowArgs {
  userIds: string[];
}

const utf8 = new TextEncoder();

function partyIdStruct(builder: Builder, id: { hi: bigint; lo: bigint }): Offset {
  return fb.PartyId.createPartyId(builder, id.hi, id.lo);
}

function presenceTable(builder: Builder, p: Presence): Offset {
  if (p === null || typeof p !== 'object') throw new TypeError('presence must be a Presence object');
  const sessionId = checkU64('presence.sessionId', p.sessionId);
  const userId = builder.createString(checkString('presence.userId', p.userId));
  const username = builder.createString(checkString('presence.username', p.username));
  return fb.Presence.createPresence(builder, userId, sessionId, username);
}

function toggle(field: string, value: boolean | undefined): fb.Toggle {
  if (value === undefined) return fb.Toggle.Unset;
  return checkBool(field, value) ? fb.Toggle.Yes : fb.Toggle.No;
}

/** A strategy's wire value; absent is `Unset` (0, the field's default, so not written). */
function strategy<E extends Record<string, string | number>>(field: string, values: E, name: string | undefined): number {
  if (name === undefined) return 0;
  const value = typeof name === 'string' && name !== 'Unset' ? values[name] : undefined;
  if (typeof value !== 'number') {
    const known = Object.keys(values).filter((k) => Number.isNaN(Number(k)) && k !== 'Unset');
    throw new TypeError(`${field} must be one of ${known.join(', ')}, got ${JSON.stringify(name)}`);
  }
  return value;
}

/** Both strategies of a create or an update, checked before anything is written. */
function strategies(args: StrategyArgs): { join: fb.PartyJoinStrategy; invite: fb.PartyInviteStrategy } {
  return {
    join: strategy('joinStrategy', fb.PartyJoinStrategy, args.joinStrategy),
    invite: strategy('inviteStrategy', fb.PartyInviteStrategy, args.inviteStrategy),
  };
}

function strings(builder: Builder, values: string[]): Offset[] {
  return values.map((value) => builder.createString(value));
}

/** Requests that name only a party: every one is `start, add party id, end`. */
function partyOnly(start: (b: Builder) => void, addPartyId: (b: Builder, id: Offset) => void, end: (b: Builder) => Offset) {
  return (builder: Builder, args: PartyRef): Offset => {
    const id = partyIdFromHex(args.partyId);
    start(builder);
    addPartyId(builder, partyIdStruct(builder, id));
    return end(builder);
  };
}

/** Requests that name a party and a presence (accept, remove, promote). */
function partyAndPresence(
  start: (b: Builder) => void,
  addPartyId: (b: Builder, id: Offset) => void,
  addPresence: (b: Builder, presence: Offset) => void,
  end: (b: Builder) => Offset,
) {
  return (builder: Builder, args: PartyPresenceArgs): Offset => {
    const id = partyIdFromHex(args.partyId);
    const presence = presenceTable(builder, args.presence);
    start(builder);
    addPartyId(builder, partyIdStruct(builder, id));
    addPresence(builder, presence);
    return end(builder);
  };
}

/** Party data, with a cid (`partyDataSend`) or fire-and-forget (`partyDataFireAndForget`). */
export function encodePartyData(builder: Builder, args: PartyDataArgs): Offset {
  const id = partyIdFromHex(args.partyId);
  const opCode = checkI64('opCode', args.opCode);
  let bytes: Uint8Array;
  if (typeof args.data === 'string') bytes = utf8.encode(args.data);
  else if (args.data instanceof Uint8Array) bytes = args.data;
  else throw new TypeError('data must be a Uint8Array or a string');
  const data = fb.PartyDataSend.createDataVector(builder, bytes);
  fb.PartyDataSend.startPartyDataSend(builder);
  fb.PartyDataSend.addPartyId(builder, partyIdStruct(builder, id));
  fb.PartyDataSend.addOpCode(builder, opCode);
  fb.PartyDataSend.addData(builder, data);
  return fb.PartyDataSend.endPartyDataSend(builder);
}

/** Every request of the schema, by method name (the schema's name in lowerCamelCase). */
export const REQUESTS = {
  /** Application-level liveness check. */
  ping: request(
    fb.Message.Ping,
    (b, _args: void) => {
      fb.Ping.startPing(b);
      return fb.Ping.endPing(b);
    },
    ['pong'],
  ),

  /** P-1, L-4: create a party (strategies absent: `Public`, `AllMembers`); the caller is its leader and only member. */
  partyCreate: request(
    fb.Message.PartyCreate,
    (b, args: PartyCreateArgs) => {
      const open = checkBool('open', args.open);
      const maxSize = checkU32('maxSize', args.maxSize);
      const hidden = args.hidden === undefined ? false : checkBool('hidden', args.hidden);
      const { join, invite } = strategies(args);
      const label = args.label ? b.createString(checkString('label', args.label)) : 0;
      fb.PartyCreate.startPartyCreate(b);
      fb.PartyCreate.addOpen(b, open);
      fb.PartyCreate.addMaxSize(b, maxSize);
      if (label) fb.PartyCreate.addLabel(b, label);
      fb.PartyCreate.addHidden(b, hidden);
      fb.PartyCreate.addJoinStrategy(b, join);
      fb.PartyCreate.addInviteStrategy(b, invite);
      return fb.PartyCreate.endPartyCreate(b);
    },
    ['partyInfo'],
  ),

  /** P-2: join an open party (`partyInfo`) or ask to join a closed one (`partyJoinPending`). */
  partyJoin: request(fb.Message.PartyJoin, partyOnly(fb.PartyJoin.startPartyJoin, fb.PartyJoin.addPartyId, fb.PartyJoin.endPartyJoin), [
    'partyInfo',
    'partyJoinPending',
  ]),

  /** P-3 (leader): the pending join requests in arrival order. */
  partyJoinRequestListGet: request(
    fb.Message.PartyJoinRequestListGet,
    partyOnly(fb.PartyJoinRequestListGet.startPartyJoinRequestListGet, fb.PartyJoinRequestListGet.addPartyId, fb.PartyJoinRequestListGet.endPartyJoinRequestListGet),
    ['partyJoinRequestList'],
  ),

  /** P-3 (leader): turn a pending request into a membership. */
  partyAccept: request(
    fb.Message.PartyAccept,
    partyAndPresence(fb.PartyAccept.startPartyAccept, fb.PartyAccept.addPartyId, fb.PartyAccept.addPresence, fb.PartyAccept.endPartyAccept),
    ['partyOk'],
  ),

  /** P-3/P-4 (leader): kick a member or reject a pending request. */
  partyRemove: request(
    fb.Message.PartyRemove,
    partyAndPresence(fb.PartyRemove.startPartyRemove, fb.PartyRemove.addPartyId, fb.PartyRemove.addPresence, fb.PartyRemove.endPartyRemove),
    ['partyOk'],
  ),

  /** P-5: leave (also withdraws a pending request; succeeds when not a member). */
  partyLeave: request(fb.Message.PartyLeave, partyOnly(fb.PartyLeave.startPartyLeave, fb.PartyLeave.addPartyId, fb.PartyLeave.endPartyLeave), ['partyOk']),

  /** P-7 (leader): make another member the leader. */
  partyPromote: request(
    fb.Message.PartyPromote,
    partyAndPresence(fb.PartyPromote.startPartyPromote, fb.PartyPromote.addPartyId, fb.PartyPromote.addPresence, fb.PartyPromote.endPartyPromote),
    ['partyOk'],
  ),

  /** P-8 (leader): end the party for every member and requester. */
  partyClose: request(fb.Message.PartyClose, partyOnly(fb.PartyClose.startPartyClose, fb.PartyClose.addPartyId, fb.PartyClose.endPartyClose), ['partyOk']),

  /** P-9 (members): party data with a reply; see `partyDataFireAndForget` for game state. */
  partyDataSend: request(fb.Message.PartyDataSend, encodePartyData, ['partyOk']),

  /** P-10, L-4 (leader): change settings and strategies; absent properties keep their value. */
  partyUpdate: request(
    fb.Message.PartyUpdate,
    (b, args: PartyUpdateArgs) => {
      const id = partyIdFromHex(args.partyId);
      const open = toggle('open', args.open);
      const hidden = toggle('hidden', args.hidden);
      const { join, invite } = strategies(args);
      const label = args.label === undefined ? 0 : b.createString(checkString('label', args.label));
      fb.PartyUpdate.startPartyUpdate(b);
      fb.PartyUpdate.addPartyId(b, partyIdStruct(b, id));
      fb.PartyUpdate.addOpen(b, open);
      fb.PartyUpdate.addHidden(b, hidden);
      if (args.label !== undefined) fb.PartyUpdate.addLabel(b, label);
      fb.PartyUpdate.addJoinStrategy(b, join);
      fb.PartyUpdate.addInviteStrategy(b, invite);
      return fb.PartyUpdate.endPartyUpdate(b);
    },
    ['partyOk'],
  ),

  /** P-11 (members): the party's snapshot. */
  partyGet: request(fb.Message.PartyGet, partyOnly(fb.PartyGet.startPartyGet, fb.PartyGet.addPartyId, fb.PartyGet.endPartyGet), ['partyInfo']),

  /** P-11: this session's parties, in join order. */
  partyMyList: request(
    fb.Message.PartyMyList,
    (b, _args: void) => {
      fb.PartyMyList.startPartyMyList(b);
      return fb.PartyMyList.endPartyMyList(b);
    },
    ['partyMyListResult'],
  ),

  /** search the non-hidden parties. */
  partySearch: request(
    fb.Message.PartySearch,
    (b, given: PartySearchArgs | void) => {
      const args = given ?? {};
      const open = toggle('open', args.open);
      const limit = args.limit === undefined ? undefined : checkU32('limit', args.limit);
      const query = args.query === undefined ? 0 : b.createString(checkString('query', args.query));
      const cursor = args.cursor == null ? 0 : b.createString(checkString('cursor', args.cursor));
      fb.PartySearch.startPartySearch(b);
      if (query) fb.PartySearch.addQuery(b, query);
      fb.PartySearch.addOpen(b, open);
      if (limit !== undefined) fb.PartySearch.addLimit(b, fb.UintValue.createUintValue(b, limit));
      if (cursor) fb.PartySearch.addCursor(b, cursor);
      return fb.PartySearch.endPartySearch(b);
    },
    ['partySearchResult'],
  ),

  /** S-1: set this session's status (null or absent: appear offline). */
  statusUpdate: request(
    fb.Message.StatusUpdate,
    (b, args: StatusUpdateArgs) => {
      const status = args.status == null ? undefined : b.createString(checkString('status', args.status));
      fb.StatusUpdate.startStatusUpdate(b);
      if (status !== undefined) fb.StatusUpdate.addStatus(b, status);
      return fb.StatusUpdate.endStatusUpdate(b);
    },
    ['statusUpdated'],
  ),

  /** S-2: follow users by id and/or username; the reply has their current statuses. */
  statusFollow: request(
    fb.Message.StatusFollow,
    (b, args: StatusFollowArgs) => {
      const userIds = fb.StatusFollow.createUserIdsVector(b, strings(b, checkStrings('userIds', args.userIds ?? [])));
      const usernames = fb.StatusFollow.createUsernamesVector(b, strings(b, checkStrings('usernames', args.usernames ?? [])));
      return fb.StatusFollow.createStatusFollow(b, userIds, usernames);
    },
    ['statusFollowed'],
  ),

  /** S-2: stop following users. */
  statusUnfollow: request(
    fb.Message.StatusUnfollow,
    (b, args: StatusUnfollowArgs) => {
      const userIds = fb.StatusUnfollow.createUserIdsVector(b, strings(b, checkStrings('userIds', args.userIds)));
      return fb.StatusUnfollow.createStatusUnfollow(b, userIds);
    },
    ['statusUnfollowed'],
  ),

  /** L-2 (members; the leader alone under `LeaderOnly`): invite users, all or nothing. */
  partyInvite: request(
    fb.Message.PartyInvite,
    (b, args: PartyInviteArgs) => {
      const id = partyIdFromHex(args.partyId);
      const userIds = fb.PartyInvite.createUserIdsVector(b, strings(b, checkStrings('userIds', args.userIds)));
      fb.PartyInvite.startPartyInvite(b);
      fb.PartyInvite.addPartyId(b, partyIdStruct(b, id));
      fb.PartyInvite.addUserIds(b, userIds);
      return fb.PartyInvite.endPartyInvite(b);
    },
    ['partyOk'],
  ),

  /** L-2 (the inviter or the leader): cancel a pending invitation. */
  partyInvitationCancel: request(
    fb.Message.PartyInvitationCancel,
    (b, args: PartyInvitationCancelArgs) => {
      const id = partyIdFromHex(args.partyId);
      const userId = b.createString(checkString('userId', args.userId));
      fb.PartyInvitationCancel.startPartyInvitationCancel(b);
      fb.PartyInvitationCancel.addPartyId(b, partyIdStruct(b, id));
      fb.PartyInvitationCancel.addUserId(b, userId);
      return fb.PartyInvitationCancel.endPartyInvitationCancel(b);
    },
    ['partyOk'],
  ),

  /** L-2 (the invitee): join the party; the reply is its snapshot (closed parties too). */
  partyInvitationAccept: request(
    fb.Message.PartyInvitationAccept,
    partyOnly(fb.PartyInvitationAccept.startPartyInvitationAccept, fb.PartyInvitationAccept.addPartyId, fb.PartyInvitationAccept.endPartyInvitationAccept),
    ['partyInfo'],
  ),

  /** L-2 (the invitee): decline; the members are told. */
  partyInvitationReject: request(
    fb.Message.PartyInvitationReject,
    partyOnly(fb.PartyInvitationReject.startPartyInvitationReject, fb.PartyInvitationReject.addPartyId, fb.PartyInvitationReject.endPartyInvitationReject),
    ['partyOk'],
  ),

  /** L-2: this user's pending invitations, first sent first. */
  partyInvitationList: request(
    fb.Message.PartyInvitationList,
    (b, _args: void) => {
      fb.PartyInvitationList.startPartyInvitationList(b);
      return fb.PartyInvitationList.endPartyInvitationList(b);
    },
    ['partyInvitationListResult'],
  ),

  /** L-3 (leader): the party's code. */
  partyCodeGet: request(fb.Message.PartyCodeGet, partyOnly(fb.PartyCodeGet.startPartyCodeGet, fb.PartyCodeGet.addPartyId, fb.PartyCodeGet.endPartyCodeGet), ['partyCode']),

  /** L-3 (leader): a new code; the old one stops working at once. */
  partyCodeRegenerate: request(
    fb.Message.PartyCodeRegenerate,
    partyOnly(fb.PartyCodeRegenerate.startPartyCodeRegenerate, fb.PartyCodeRegenerate.addPartyId, fb.PartyCodeRegenerate.endPartyCodeRegenerate),
    ['partyCode'],
  ),

  /** L-3: join by code, as an accepted invitation would (closed parties too). */
  partyJoinByCode: request(
    fb.Message.PartyJoinByCode,
    (b, args: PartyJoinByCodeArgs) => {
      const code = b.createString(checkString('code', args.code));
      fb.PartyJoinByCode.startPartyJoinByCode(b);
      fb.PartyJoinByCode.addCode(b, code);
      return fb.PartyJoinByCode.endPartyJoinByCode(b);
    },
    ['partyInfo'],
  ),
};

export type RequestName = keyof typeof REQUESTS;
export type RequestArgs<K extends RequestName> = (typeof REQUESTS)[K] extends RequestSpec<infer A, InboundName> ? A : never;
export type RequestReplyName<K extends RequestName> = (typeof REQUESTS)[K] extends RequestSpec<unknown, infer R> ? R : never;
/** What a request's promise resolves with: one of its replies, discriminated by `type`. */
export type RequestReply<K extends RequestName> = Inbound<RequestReplyName<K>>;

/** The union members the client sends, for the test that every member is claimed exactly once. */
export function requestMessageTypes(): number[] {
  return Object.values(REQUESTS).map((spec) => spec.message);
}
