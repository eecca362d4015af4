// What the server sends, decoded into plain objects: one row per message of the schema's `Message`
// union that the server writes (replies and events). Every decoded message carries `type`, the
// schema's name in lowerCamelCase, so replies and events are discriminated unions.
//
// To add a message the schema appended (a lobby reply or event): regenerate (schema/generate.sh),
// add its body to `InboundBodies` and a row to `INBOUND`; requests.ts names it among a request's
// replies, and the client emits it as an event when it arrives with cid 0. The type checker holds
// the two tables together, and a test checks that every union member is claimed exactly once.

import { ByteBuffer } from 'flatbuffers';
import * as fb from './generated/huddle/fb.js';
import { errorCodeName, partyNamedIn, type ServerErrorName, type UnknownErrorName } from './errors.js';
import { partyIdToHex, type PartyIdHex } from './ids.js';

/** A session of a user: the unit of membership and status. */
export interface Presence {
  userId: string;
  /** Server-assigned, unique for the server's lifetime. */
  sessionId: bigint;
  username: string;
}

/** A full party: reply to create, open join and get; inside `partyJoined`. */
export interface Party {
  partyId: PartyIdHex;
  open: boolean;
  hidden: boolean;
  maxSize: number;
  /** A JSON object, or "" for none. */
  label: string;
  leader: Presence;
  /** In join order (longest tenure first); the leader is among them. */
  members: Presence[];
  /** SPEC L-9: 1 at create, +1 per change of what this snapshot shows; a gap means ask `partyGet`. */
  version: bigint;
  joinStrategy: JoinStrategyName;
  inviteStrategy: InviteStrategyName;
}

/** A party without its members (the `partyMyList` reply; the party an invitation is for). */
export interface PartySummary {
  partyId: PartyIdHex;
  open: boolean;
  hidden: boolean;
  maxSize: number;
  memberCount: number;
  label: string;
  leader: Presence;
  version: bigint;
  joinStrategy: JoinStrategyName;
  inviteStrategy: InviteStrategyName;
}

/** One party in a search result. */
export interface PartyListing {
  partyId: PartyIdHex;
  open: boolean;
  maxSize: number;
  memberCount: number;
  label: string;
  version: bigint;
}

/** A pending invitation as the invitee sees it (SPEC L-2). */
export interface PartyInvitation {
  /** The party as it was when the invitation was (last) sent. */
  party: PartySummary;
  /** The member who sent it last. */
  inviter: Presence;
  /** Wall-clock Unix milliseconds (`new Date(Number(expiresAt))`). */
  expiresAt: bigint;
}

/** A presence with its status ("" is a valid online status). */
export interface StatusPresence {
  presence: Presence;
  status: string;
}

/** A value of one of the schema's enums by its name; `Unknown` for a value newer than this client. */
export type EnumName<E> = keyof E | 'Unknown';

/** Why a session stopped being a member or requester: the schema's `PartyRemovedReason` names. */
export type PartyRemovedReasonName = EnumName<typeof fb.PartyRemovedReason>;
/** How a pending invitation ended: `Accepted`, `Rejected`, `Cancelled`, `Expired`, `PartyGone`. */
export type InvitationEndReasonName = EnumName<typeof fb.PartyInvitationEndReason>;
/** Who may join without an invitation or a code (SPEC L-4): `Public`, …, `InvitedOnly`, `NotAllowed`. */
export type JoinStrategyName = EnumName<typeof fb.PartyJoinStrategy>;
/** Who may invite (SPEC L-4): `AllMembers` or `LeaderOnly`. */
export type InviteStrategyName = EnumName<typeof fb.PartyInviteStrategy>;

/** The body of every message the server sends, by its `type`. */
export interface InboundBodies {
  /** Event: the first frame of every connection (also after each reconnect: a new session). */
  welcome: { presence: Presence; serverVersion: string };
  /**
   * As an event (cid 0): an error answering no request, e.g. refused fire-and-forget party data,
   * whose `partyId` is then set. As a reply it rejects the request's promise with a `HuddleError`.
   */
  error: { code: number; name: ServerErrorName | UnknownErrorName; message: string; partyId?: PartyIdHex };
  pong: Record<string, never>;
  partyInfo: Party;
  partyJoinPending: { partyId: PartyIdHex };
  partyJoinRequestList: { partyId: PartyIdHex; presences: Presence[] };
  partyOk: { partyId: PartyIdHex };
  partyMyListResult: { parties: PartySummary[] };
  partyPresence: { partyId: PartyIdHex; joins: Presence[]; leaves: Presence[]; version: bigint };
  partyJoinRequest: { partyId: PartyIdHex; presences: Presence[] };
  partyLeader: { partyId: PartyIdHex; leader: Presence; version: bigint };
  /** `version`: the party's after the removal (its last one when the party ended). */
  partyRemoved: { partyId: PartyIdHex; reason: PartyRemovedReasonName; reasonCode: number; version: bigint };
  /** `data` is a view of the received frame (no copy). */
  partyData: { partyId: PartyIdHex; sender: Presence; opCode: bigint; data: Uint8Array };
  partyUpdated: {
    partyId: PartyIdHex;
    open: boolean;
    hidden: boolean;
    maxSize: number;
    label: string;
    joinStrategy: JoinStrategyName;
    inviteStrategy: InviteStrategyName;
    version: bigint;
  };
  partyJoined: { party: Party };
  statusUpdated: Record<string, never>;
  statusFollowed: { presences: StatusPresence[] };
  statusUnfollowed: Record<string, never>;
  statusPresenceEvent: { joins: StatusPresence[]; leaves: StatusPresence[] };
  /** `cursor` is null on the last page. */
  partySearchResult: { parties: PartyListing[]; cursor: string | null };
  /** The user's pending invitations, first sent first. */
  partyInvitationListResult: { invitations: PartyInvitation[] };
  /** 6 characters of `23456789ABCDEFGHJKMNPQRSTUVWXYZ`. */
  partyCode: { partyId: PartyIdHex; code: string };
  /** To every session of the invitee (again when the invitation is refreshed). */
  partyInvited: { invitation: PartyInvitation };
  /** To every member session: `inviter` invited `invitee` (a user id). */
  partyInvitationSent: { partyId: PartyIdHex; invitee: string; inviter: Presence; expiresAt: bigint };
  /** To every member session: the invitee rejected. */
  partyInvitationRejected: { partyId: PartyIdHex; invitee: string };
  /** An invitation ended (see the main README's Lobby section for who hears which reason). */
  partyInvitationEnded: { partyId: PartyIdHex; invitee: string; reason: InvitationEndReasonName; reasonCode: number };
  /** With `snapshots: true`: the whole party after the delta events of every change (L-9). */
  partySnapshot: { party: Party };
}

export type InboundName = keyof InboundBodies;

/** A decoded server message; `Inbound<'partyData'>` is one kind, `Inbound` any of them. */
export type Inbound<K extends InboundName = InboundName> = K extends InboundName ? { type: K } & InboundBodies[K] : never;

/** A server frame that does not decode as the schema says (a server/client version mismatch). */
export class DecodeError extends Error {}

interface InboundSpec<B> {
  readonly message: fb.Message;
  decode(envelope: fb.Envelope): B;
}

/** A row: the union member and how to turn its table into the plain body. */
function inbound<T, B>(message: fb.Message, Table: new () => T, decode: (table: T) => B): InboundSpec<B> {
  return {
    message,
    decode(envelope) {
      const table = envelope.message(new Table()) as T | null;
      if (table === null) throw new DecodeError(`${fb.Message[message]} without a body`);
      return decode(table);
    },
  };
}

function required<T>(value: T | null, field: string): T {
  if (value === null) throw new DecodeError(`required field ${field} is missing`);
  return value;
}

function partyId(id: fb.PartyId | null): PartyIdHex {
  const present = required(id, 'party_id');
  return partyIdToHex(present.hi(), present.lo());
}

function presence(value: fb.Presence | null, field = 'presence'): Presence {
  const p = required(value, field);
  return { userId: p.userId() ?? '', sessionId: p.sessionId(), username: p.username() ?? '' };
}

function list<T, R>(length: number, at: (index: number) => T | null, map: (item: T | null) => R): R[] {
  const out = new Array<R>(length);
  for (let index = 0; index < length; index++) out[index] = map(at(index));
  return out;
}

function presences(length: number, at: (index: number) => fb.Presence | null): Presence[] {
  return list(length, at, (p) => presence(p));
}

function statusPresences(length: number, at: (index: number) => fb.StatusPresence | null): StatusPresence[] {
  return list(length, at, (item) => {
    const sp = required(item, 'status presence');
    return { presence: presence(sp.presence()), status: sp.status() ?? '' };
  });
}

/** The name of an enum value as the generated enum spells it, or `Unknown` (a newer server). */
function enumName<E extends object>(values: E, code: number): EnumName<E> {
  return ((values as unknown as Record<number, string | undefined>)[code] ?? 'Unknown') as EnumName<E>;
}

/** The strategies every snapshot, summary and update carries (the server always sends a set value). */
function strategies(m: { joinStrategy(): fb.PartyJoinStrategy; inviteStrategy(): fb.PartyInviteStrategy }) {
  return { joinStrategy: enumName(fb.PartyJoinStrategy, m.joinStrategy()), inviteStrategy: enumName(fb.PartyInviteStrategy, m.inviteStrategy()) };
}

function party(p: fb.PartyInfo): Party {
  return {
    partyId: partyId(p.partyId()),
    open: p.open(),
    hidden: p.hidden(),
    maxSize: p.maxSize(),
    label: p.label() ?? '',
    leader: presence(p.leader(), 'leader'),
    members: presences(p.membersLength(), (i) => p.members(i)),
    version: p.version(),
    ...strategies(p),
  };
}

function summary(item: fb.PartySummary | null, field: string): PartySummary {
  const s = required(item, field);
  return {
    partyId: partyId(s.partyId()),
    open: s.open(),
    hidden: s.hidden(),
    maxSize: s.maxSize(),
    memberCount: s.memberCount(),
    label: s.label() ?? '',
    leader: presence(s.leader(), 'leader'),
    version: s.version(),
    ...strategies(s),
  };
}

function invitation(item: fb.PartyInvitation | null): PartyInvitation {
  const i = required(item, 'invitation');
  return { party: summary(i.party(), 'invitation.party'), inviter: presence(i.inviter(), 'inviter'), expiresAt: i.expiresAt() };
}

const empty = (): Record<string, never> => ({});

/** Every message the server sends, by the name of its decoded `type`. */
export const INBOUND: { readonly [K in InboundName]: InboundSpec<InboundBodies[K]> } = {
  welcome: inbound(fb.Message.Welcome, fb.Welcome, (m) => ({ presence: presence(m.presence()), serverVersion: m.serverVersion() ?? '' })),
  error: inbound(fb.Message.Error, fb.Error, (m) => {
    const message = m.message() ?? '';
    const partyId = partyNamedIn(message);
    return { code: m.code(), name: errorCodeName(m.code()), message, ...(partyId === undefined ? {} : { partyId }) };
  }),
  pong: inbound(fb.Message.Pong, fb.Pong, empty),
  partyInfo: inbound(fb.Message.PartyInfo, fb.PartyInfo, party),
  partyJoinPending: inbound(fb.Message.PartyJoinPending, fb.PartyJoinPending, (m) => ({ partyId: partyId(m.partyId()) })),
  partyJoinRequestList: inbound(fb.Message.PartyJoinRequestList, fb.PartyJoinRequestList, (m) => ({
    partyId: partyId(m.partyId()),
    presences: presences(m.presencesLength(), (i) => m.presences(i)),
  })),
  partyOk: inbound(fb.Message.PartyOk, fb.PartyOk, (m) => ({ partyId: partyId(m.partyId()) })),
  partyMyListResult: inbound(fb.Message.PartyMyListResult, fb.PartyMyListResult, (m) => ({
    parties: list(m.partiesLength(), (i) => m.parties(i), (item) => summary(item, 'parties[]')),
  })),
  partyPresence: inbound(fb.Message.PartyPresence, fb.PartyPresence, (m) => ({
    partyId: partyId(m.partyId()),
    joins: presences(m.joinsLength(), (i) => m.joins(i)),
    leaves: presences(m.leavesLength(), (i) => m.leaves(i)),
    version: m.version(),
  })),
  partyJoinRequest: inbound(fb.Message.PartyJoinRequest, fb.PartyJoinRequest, (m) => ({
    partyId: partyId(m.partyId()),
    presences: presences(m.presencesLength(), (i) => m.presences(i)),
  })),
  partyLeader: inbound(fb.Message.PartyLeader, fb.PartyLeader, (m) => ({
    partyId: partyId(m.partyId()),
    leader: presence(m.leader(), 'leader'),
    version: m.version(),
  })),
  partyRemoved: inbound(fb.Message.PartyRemoved, fb.PartyRemoved, (m) => ({
    partyId: partyId(m.partyId()),
    reason: enumName(fb.PartyRemovedReason, m.reason()),
    reasonCode: m.reason(),
    version: m.version(),
  })),
  partyData: inbound(fb.Message.PartyData, fb.PartyData, (m) => ({
    partyId: partyId(m.partyId()),
    sender: presence(m.sender(), 'sender'),
    opCode: m.opCode(),
    data: m.dataArray() ?? new Uint8Array(0),
  })),
  partyUpdated: inbound(fb.Message.PartyUpdated, fb.PartyUpdated, (m) => ({
    partyId: partyId(m.partyId()),
    open: m.open(),
    hidden: m.hidden(),
    maxSize: m.maxSize(),
    label: m.label() ?? '',
    ...strategies(m),
    version: m.version(),
  })),
  partyJoined: inbound(fb.Message.PartyJoined, fb.PartyJoined, (m) => ({ party: party(required(m.party(), 'party')) })),
  statusUpdated: inbound(fb.Message.StatusUpdated, fb.StatusUpdated, empty),
  statusFollowed: inbound(fb.Message.StatusFollowed, fb.StatusFollowed, (m) => ({
    presences: statusPresences(m.presencesLength(), (i) => m.presences(i)),
  })),
  statusUnfollowed: inbound(fb.Message.StatusUnfollowed, fb.StatusUnfollowed, empty),
  statusPresenceEvent: inbound(fb.Message.StatusPresenceEvent, fb.StatusPresenceEvent, (m) => ({
    joins: statusPresences(m.joinsLength(), (i) => m.joins(i)),
    leaves: statusPresences(m.leavesLength(), (i) => m.leaves(i)),
  })),
  partySearchResult: inbound(fb.Message.PartySearchResult, fb.PartySearchResult, (m) => ({
    parties: list(m.partiesLength(), (i) => m.parties(i), (item) => {
      const l = required(item, 'parties[]');
      return { partyId: partyId(l.partyId()), open: l.open(), maxSize: l.maxSize(), memberCount: l.memberCount(), label: l.label() ?? '', version: l.version() };
    }),
    cursor: m.cursor() || null,
  })),
  partyInvitationListResult: inbound(fb.Message.PartyInvitationListResult, fb.PartyInvitationListResult, (m) => ({
    invitations: list(m.invitationsLength(), (i) => m.invitations(i), invitation),
  })),
  partyCode: inbound(fb.Message.PartyCode, fb.PartyCode, (m) => ({ partyId: partyId(m.partyId()), code: m.code() ?? '' })),
  partyInvited: inbound(fb.Message.PartyInvited, fb.PartyInvited, (m) => ({ invitation: invitation(m.invitation()) })),
  partyInvitationSent: inbound(fb.Message.PartyInvitationSent, fb.PartyInvitationSent, (m) => ({
    partyId: partyId(m.partyId()),
    invitee: m.invitee() ?? '',
    inviter: presence(m.inviter(), 'inviter'),
    expiresAt: m.expiresAt(),
  })),
  partyInvitationRejected: inbound(fb.Message.PartyInvitationRejected, fb.PartyInvitationRejected, (m) => ({
    partyId: partyId(m.partyId()),
    invitee: m.invitee() ?? '',
  })),
  partyInvitationEnded: inbound(fb.Message.PartyInvitationEnded, fb.PartyInvitationEnded, (m) => ({
    partyId: partyId(m.partyId()),
    invitee: m.invitee() ?? '',
    reason: enumName(fb.PartyInvitationEndReason, m.reason()),
    reasonCode: m.reason(),
  })),
  partySnapshot: inbound(fb.Message.PartySnapshot, fb.PartySnapshot, (m) => ({ party: party(required(m.party(), 'party')) })),
};

const BY_MESSAGE = new Map<number, InboundName>();
for (const name of Object.keys(INBOUND) as InboundName[]) {
  const message = INBOUND[name].message;
  if (BY_MESSAGE.has(message)) throw new Error(`INBOUND claims ${fb.Message[message]} twice`);
  BY_MESSAGE.set(message, name);
}

/** One frame from the server, read far enough to route it. */
export type Frame =
  | { kind: 'message'; cid: bigint; message: Inbound }
  /** A union member this client does not know (a newer server): skipped, as the README says. */
  | { kind: 'unknown'; cid: bigint; messageType: number }
  /** The frame did not decode; `cid` is 0n when even the envelope did not read. */
  | { kind: 'malformed'; cid: bigint; messageType: number; reason: string };

/** Decodes one binary frame. Never throws: a frame that does not decode is reported as such. */
export function decodeFrame(bytes: Uint8Array): Frame {
  let cid = 0n;
  let messageType: number = fb.Message.NONE;
  try {
    const envelope = fb.Envelope.getRootAsEnvelope(new ByteBuffer(bytes));
    cid = envelope.cid();
    messageType = envelope.messageType();
    const name = BY_MESSAGE.get(messageType);
    if (name === undefined) return { kind: 'unknown', cid, messageType };
    const body = INBOUND[name].decode(envelope);
    return { kind: 'message', cid, message: { type: name, ...body } as Inbound };
  } catch (error) {
    // The generated readers throw RangeError on offsets outside the frame; DecodeError on missing
    // required fields.
    return { kind: 'malformed', cid, messageType, reason: error instanceof Error ? error.message : String(error) };
  }
}

/** The union members the server sends, for the test that every member is claimed exactly once. */
export function inboundMessageTypes(): number[] {
  return [...BY_MESSAGE.keys()];
}
