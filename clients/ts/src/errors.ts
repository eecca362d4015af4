// The one error type a request's promise rejects with: the server's `Error { code, message }`
// mapped once to a name from the generated `ErrorCode` enum (so codes appended to the schema get
// their names by regeneration alone), or a failure the client itself detected.

import { ErrorCode } from './generated/huddle/fb/error-code.js';

/** Names of the server's error codes, as in the README's error table (`PartyNotFound`, …). */
export type ServerErrorName = keyof typeof ErrorCode;

/**
 * Failures the client detects itself; their `code` is 0 (`Unspecified`).
 * - `Timeout`: no reply within the request timeout (the request may still have been executed).
 * - `NotConnected`: the request was made while the client was not connected; nothing was sent.
 * - `ConnectionLost`: the connection closed before the reply came (it may have been executed).
 * - `Closed`: the client was closed by `close()` or gave up reconnecting.
 * - `HandshakeFailed`: the connection could not be (re)established (a refused upgrade: HTTP 401,
 *   403, 429 … are invisible to browsers and look like close 1006; or no server at the address).
 * - `UnexpectedReply`: the server answered with a message this request does not expect, or one
 *   that did not decode (a server/client version mismatch).
 */
export type ClientErrorName = 'Timeout' | 'NotConnected' | 'ConnectionLost' | 'Closed' | 'HandshakeFailed' | 'UnexpectedReply';

/** A code a newer server sent that this client's schema does not know. */
export type UnknownErrorName = 'Unknown';

export type HuddleErrorName = ServerErrorName | ClientErrorName | UnknownErrorName;

/** The name of a server error code: its `ErrorCode` member, or `Unknown` for codes newer than this client. */
export function errorCodeName(code: number): ServerErrorName | UnknownErrorName {
  const name = (ErrorCode as unknown as Record<number, string | undefined>)[code];
  return name === undefined ? 'Unknown' : (name as ServerErrorName);
}

const PARTY_IN_MESSAGE = /\bparty ([0-9a-f]{32})\b/;

/** The party a server error message names, as refused fire-and-forget data does (README, P-9). */
export function partyNamedIn(message: string): string | undefined {
  return PARTY_IN_MESSAGE.exec(message)?.[1];
}

export class HuddleError extends Error {
  /** The server's `ErrorCode` (compare with `ErrorCode.PartyNotFound` …); 0 for client-side failures. */
  readonly code: number;
  override readonly name: HuddleErrorName;
  /** True when the server sent it (an `Error` reply), false when the client detected it. */
  readonly fromServer: boolean;
  /** The request's correlation id; 0n for errors that answer no request. */
  readonly cid: bigint;

  constructor(code: number, name: HuddleErrorName, message: string, fromServer: boolean, cid: bigint) {
    super(message);
    this.code = code;
    this.name = name;
    this.fromServer = fromServer;
    this.cid = cid;
  }

  /** An error the server sent in reply to the request with `cid`. */
  static fromServerReply(code: number, message: string, cid: bigint): HuddleError {
    return new HuddleError(code, errorCodeName(code), message, true, cid);
  }

  /** A failure the client detected (its code is 0, `Unspecified`). */
  static client(name: ClientErrorName, message: string, cid = 0n): HuddleError {
    return new HuddleError(ErrorCode.Unspecified, name, message, false, cid);
  }
}
