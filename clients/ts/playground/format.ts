// How the page shows the protocol's values: presences, party ids, bytes, errors, and any message
// as JSON (bigints as numbers, bytes as text when they are UTF-8, else hex).

import { HuddleError, type Presence } from '../src/index.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text when they are printable UTF-8, else as hex (`0x…`). */
export function bytesText(data: Uint8Array): string {
  try {
    const text = utf8.decode(data);
    // eslint-disable-next-line no-control-regex
    if (!/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) return text;
  } catch {
    // not UTF-8: hex below
  }
  return '0x' + Array.from(data, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A message as indented JSON. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
      if (v instanceof Uint8Array) return bytesText(v);
      return v;
    },
    2,
  );
}

/** `Alice (alice)`, or just the id when the name is the id. */
export function who(p: Presence): string {
  return p.username === p.userId ? p.userId : `${p.username} (${p.userId})`;
}

/** The first 8 hex digits of a party id, enough to tell parties apart on a page. */
export function shortId(id: string): string {
  return id.slice(0, 8) + '…';
}

/** An error as a developer wants to read it: the server's code and name first. */
export function errorText(error: unknown): string {
  if (error instanceof HuddleError) {
    return error.fromServer ? `${error.code} ${error.name}: ${error.message}` : `${error.name}: ${error.message}`;
  }
  if (error instanceof TypeError) return `bad input: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** A schema name as words: `InvitedOnly` → "invited only", `AllMembers` → "all members". */
export function spaced(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

/** A wall-clock Unix-ms time as the local time of day (an invitation's expiry). */
export function timeOfDay(unixMs: bigint): string {
  return new Date(Number(unixMs)).toLocaleTimeString();
}
