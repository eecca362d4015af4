// huddle's TypeScript client: `connect(url, token, options)` and the types of everything it sends
// and receives. The generated FlatBuffers code is re-exported as `fb` for callers that need the
// raw protocol (a custom codec, a test), and `ErrorCode` / `Toggle` for comparisons.

export { connect, HuddleClient, closePolicy } from './client.js';
export type {
  ClientEventName,
  ClientEvents,
  ClientOptions,
  ClientState,
  Closed,
  Disconnected,
  ReconnectOptions,
  RequestMethods,
  RequestOptions,
  Skipped,
} from './client.js';
export { HuddleError, errorCodeName } from './errors.js';
export type { ClientErrorName, HuddleErrorName, ServerErrorName } from './errors.js';
export { isPartyId, partyIdFromHex, partyIdToHex } from './ids.js';
export type { PartyIdHex } from './ids.js';
export { decodeFrame, INBOUND } from './messages.js';
export type {
  EnumName,
  Frame,
  Inbound,
  InboundBodies,
  InboundName,
  InvitationEndReasonName,
  InviteStrategyName,
  JoinStrategyName,
  Party,
  PartyInvitation,
  PartyListing,
  PartyRemovedReasonName,
  PartySummary,
  Presence,
  StatusPresence,
} from './messages.js';
export { REQUESTS } from './requests.js';
export type {
  InviteStrategy,
  JoinStrategy,
  PartyCreateArgs,
  PartyDataArgs,
  PartyInvitationCancelArgs,
  PartyInviteArgs,
  PartyJoinByCodeArgs,
  PartyPresenceArgs,
  PartyRef,
  PartySearchArgs,
  PartyUpdateArgs,
  RequestArgs,
  RequestName,
  RequestReply,
  StatusFollowArgs,
  StatusUnfollowArgs,
  StatusUpdateArgs,
  StrategyArgs,
} from './requests.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export { ErrorCode } from './generated/huddle/fb/error-code.js';
export * as fb from './generated/huddle/fb.js';
