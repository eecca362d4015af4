// Party ids and the 64-bit numbers of the protocol, checked where they enter the client so a wrong
// value is a TypeError at the call site instead of a silently wrapped number on the wire.

/** A party id as the README shows it: 32 lowercase hex digits, the `hi` half first. */
export type PartyIdHex = string;

const PARTY_ID_HEX = /^[0-9a-fA-F]{32}$/;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const U32_MAX = 0xffff_ffff;

/** The hex form of the wire's `PartyId { hi, lo }`. */
export function partyIdToHex(hi: bigint, lo: bigint): PartyIdHex {
  return hi.toString(16).padStart(16, '0') + lo.toString(16).padStart(16, '0');
}

/** The wire halves of a hex party id; upper-case digits are accepted, anything else is a TypeError. */
export function partyIdFromHex(id: PartyIdHex): { hi: bigint; lo: bigint } {
  if (typeof id !== 'string' || !PARTY_ID_HEX.test(id)) {
    throw new TypeError(`a party id is 32 hex digits, got ${describe(id)}`);
  }
  return { hi: BigInt('0x' + id.slice(0, 16)), lo: BigInt('0x' + id.slice(16)) };
}

/** Whether `id` has the form of a party id (says nothing about whether the party exists). */
export function isPartyId(id: unknown): id is PartyIdHex {
  return typeof id === 'string' && PARTY_ID_HEX.test(id);
}

/** A session id or other `ulong` from the caller: a bigint in 0..2^64-1. */
export function checkU64(field: string, value: bigint): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new TypeError(`${field} must be a bigint in 0..2^64-1, got ${describe(value)}`);
  }
  return value;
}

/** An op code (`long`): a safe integer number or a bigint in the i64 range; returned as bigint. */
export function checkI64(field: string, value: number | bigint): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'bigint' && value >= I64_MIN && value <= I64_MAX) return value;
  throw new TypeError(`${field} must be a safe integer or a bigint in the i64 range, got ${describe(value)}`);
}

/** A `uint` field: an integer in 0..2^32-1 (the server checks its own, narrower range). */
export function checkU32(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new TypeError(`${field} must be an integer in 0..4294967295, got ${describe(value)}`);
  }
  return value;
}

/** A required boolean (undefined would be written as NaN by the generated builders). */
export function checkBool(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${field} must be a boolean, got ${describe(value)}`);
  return value;
}

/** A string field, or a list of them. */
export function checkString(field: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string, got ${describe(value)}`);
  return value;
}

export function checkStrings(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw new TypeError(`${field} must be an array of strings, got ${describe(value)}`);
  value.forEach((item, index) => checkString(`${field}[${index}]`, item));
  return value as string[];
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  return String(value);
}
