// Internal: zkrpc's own MessagePack decoder. It reads exactly the subset of
// docs/protocol.md section 7.1 and nothing else (no msgpackr records, bundled
// strings, structures or extra extension types): every read is checked
// against the payload's own length, a length field is checked against the
// bytes left before anything is allocated, and every decoded Uint8Array is a
// copy of its bytes only, so nothing outside the payload is ever read or
// reachable from a decoded value. Errors name what was wrong, where (byte
// offset) and the limit, never a value read from the payload.

import {
  decodeBigInt,
  malformedValue,
  MAX_NESTING,
  setOwn,
  strictUtf8,
} from "./_values.ts";

/** Extension types of the subset (docs/protocol.md section 7.1). */
export const EXT_TIMESTAMP = -1;
/** `undefined`: fixext 1, type 0, data 0 (msgpackr's encoding). */
export const EXT_UNDEFINED = 0;
/** `-0`: empty data. */
export const EXT_NEGATIVE_ZERO = 90;
/** A bigint beyond 64 bits: its decimal digits (ASCII). */
export const EXT_BIG_DECIMAL = 91;
/**
 * A plain object with an own `__proto__` key: fixext 1, type 92, data 0,
 * followed by an array `key, value, ...`.
 */
export const EXT_PROTO_KEYED = 92;

// Float and 64-bit reads go through 8 scratch bytes: a DataView of the
// payload's buffer would be one allocation per payload.
const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);

// The decode in progress (decoding is synchronous and never re-entered).
let buf: Uint8Array = scratch;
let pos = 0;
let end = 0;
/** Where the payload starts in `buf`: positions in messages count from it. */
let base = 0;
let depth = 0;
let maxDigits = 0;

function malformed(what: string, at: number): never {
  return malformedValue(`${what} at byte ${at - base}`);
}

function need(n: number, what: string): void {
  if (n > end - pos) {
    malformed(`truncated ${what} (${n} bytes needed, ${end - pos} left)`, pos);
  }
}

function u8(): number {
  need(1, "value");
  return buf[pos++]!;
}

function u16(): number {
  need(2, "length");
  const b = buf;
  const p = pos;
  pos = p + 2;
  return (b[p]! << 8) | b[p + 1]!;
}

function u32(): number {
  need(4, "length");
  const b = buf;
  const p = pos;
  pos = p + 4;
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>>
    0;
}

function toScratch(n: number): void {
  need(n, "number");
  for (let i = 0; i < n; i++) scratch[i] = buf[pos + i]!;
  pos += n;
}

/**
 * Decodes one MessagePack value that fills `bytes` exactly (or the range
 * `start`..`stop` of it: the payload of a frame where it was read, without
 * a view; nothing outside the range is read, positions in messages count
 * from `start`).
 *
 * @param bytes The payload, or the buffer holding it (never kept).
 * @param digits Most decimal digits of an ext-91 bigint.
 * @param start Where the payload starts.
 * @param stop Where it ends (exclusive).
 * @returns The value.
 * @throws {SyntaxError} On malformed, truncated or out-of-subset data.
 * @throws {RangeError} On a value over a limit (bigint digits, nesting).
 */
export function decodeMsgpack(
  bytes: Uint8Array,
  digits: number,
  start = 0,
  stop: number = bytes.length,
): unknown {
  if (stop <= start) {
    throw new SyntaxError("Cannot decode value: empty payload");
  }
  buf = bytes;
  pos = start;
  base = start;
  end = stop;
  depth = 0;
  maxDigits = digits;
  try {
    const value = read();
    if (pos !== end) {
      malformed(`${end - pos} bytes after the value`, pos);
    }
    return value;
  } finally {
    buf = scratch; // keep no reference to the payload
  }
}

function read(): unknown {
  const at = pos;
  const b = u8();
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b < 0x90) return readMap(b & 0x0f, at);
  if (b < 0xa0) return readArray(b & 0x0f, at);
  if (b < 0xc0) return readString(b & 0x1f);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return readBin(u8());
    case 0xc5:
      return readBin(u16());
    case 0xc6:
      return readBin(u32());
    case 0xc7:
      return readExt(u8(), at);
    case 0xc8:
      return readExt(u16(), at);
    case 0xc9:
      return readExt(u32(), at);
    case 0xca:
      toScratch(4);
      return scratchView.getFloat32(0);
    case 0xcb:
      toScratch(8);
      return scratchView.getFloat64(0);
    case 0xcc:
      return u8();
    case 0xcd:
      return u16();
    case 0xce:
      return u32();
    case 0xcf:
      toScratch(8);
      return scratchView.getBigUint64(0);
    case 0xd0:
      return (u8() << 24) >> 24;
    case 0xd1:
      return (u16() << 16) >> 16;
    case 0xd2:
      return u32() | 0;
    case 0xd3:
      toScratch(8);
      return scratchView.getBigInt64(0);
    case 0xd4:
      return readExt(1, at);
    case 0xd5:
      return readExt(2, at);
    case 0xd6:
      return readExt(4, at);
    case 0xd7:
      return readExt(8, at);
    case 0xd8:
      return readExt(16, at);
    case 0xd9:
      return readString(u8());
    case 0xda:
      return readString(u16());
    case 0xdb:
      return readString(u32());
    case 0xdc:
      return readArray(u16(), at);
    case 0xdd:
      return readArray(u32(), at);
    case 0xde:
      return readMap(u16(), at);
    case 0xdf:
      return readMap(u32(), at);
  }
  return malformed(`unsupported format byte 0x${b.toString(16)}`, at); // 0xc1
}

function readString(n: number): string {
  need(n, "string");
  const b = buf;
  const start = pos;
  const stop = start + n;
  if (n <= 24) {
    let s = "";
    for (let i = start; i < stop; i++) {
      const c = b[i]!;
      if (c >= 0x80) return readUtf8(start, stop);
      s += String.fromCharCode(c);
    }
    pos = stop;
    return s;
  }
  return readUtf8(start, stop);
}

function readUtf8(start: number, stop: number): string {
  const s = strictUtf8(buf.subarray(start, stop));
  if (s === undefined) return malformed("string that is not UTF-8", start);
  pos = stop;
  return s;
}

function readBin(n: number): Uint8Array {
  need(n, "bin");
  // A copy of exactly these bytes: a view would expose the buffer around them.
  const out = buf.slice(pos, pos + n);
  pos += n;
  return out;
}

function enter(at: number): void {
  if (++depth > MAX_NESTING) {
    throw new RangeError(
      `Cannot decode value: nesting deeper than ${MAX_NESTING} levels at byte ${
        at - base
      }`,
    );
  }
}

function readArray(n: number, at: number): unknown[] {
  // Every element takes at least one byte: check before allocating.
  if (n > end - pos) malformed(`truncated array of ${n} elements`, at);
  enter(at);
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = read();
  depth--;
  return out;
}

function readKey(): string {
  const at = pos;
  const b = u8();
  if (b >= 0xa0 && b < 0xc0) return readString(b & 0x1f);
  if (b === 0xd9) return readString(u8());
  if (b === 0xda) return readString(u16());
  if (b === 0xdb) return readString(u32());
  return malformed("map key that is not a string", at);
}

function readMap(n: number, at: number): Record<string, unknown> {
  // Every entry takes at least two bytes.
  if (n > (end - pos) / 2) malformed(`truncated map of ${n} entries`, at);
  enter(at);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const key = readKey();
    setOwn(out, key, read());
  }
  depth--;
  return out;
}

function readExt(n: number, at: number): unknown {
  need(1, "extension type");
  const type = (buf[pos++]! << 24) >> 24;
  need(n, "extension data");
  const start = pos;
  pos += n;
  switch (type) {
    case EXT_TIMESTAMP:
      return readTimestamp(start, n, at);
    case EXT_UNDEFINED:
      if (n !== 1 || buf[start] !== 0) break;
      return undefined;
    case EXT_NEGATIVE_ZERO:
      if (n !== 0) break;
      return -0;
    case EXT_BIG_DECIMAL:
      return readBigDecimal(start, n, at);
    case EXT_PROTO_KEYED:
      if (n !== 1 || buf[start] !== 0) break;
      return readProtoKeyed(at);
    default:
      return malformed(`unsupported extension type ${type}`, at);
  }
  return malformed(`extension type ${type} with ${n} bytes of data`, at);
}

function readTimestamp(start: number, n: number, at: number): Date {
  const b = buf;
  const be32 = (p: number) =>
    ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  if (n === 4) return new Date(be32(start) * 1000);
  if (n === 8) {
    const hi = be32(start);
    const nanos = hi >>> 2;
    if (nanos > 999_999_999) {
      malformed("timestamp with nanoseconds \u2265 10\u2079", at);
    }
    const seconds = (hi & 3) * 0x100000000 + be32(start + 4);
    return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
  }
  if (n === 12) {
    const nanos = be32(start);
    if (nanos > 999_999_999) {
      malformed("timestamp with nanoseconds \u2265 10\u2079", at);
    }
    const hi = be32(start + 4) | 0;
    const seconds = hi * 0x100000000 + be32(start + 8);
    return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
  }
  // msgpackr writes an invalid date as fixext 1, type -1, data 0xff.
  if (n === 1 && b[start] === 0xff) return new Date(NaN);
  return malformed(`timestamp with ${n} bytes of data`, at);
}

function readBigDecimal(start: number, n: number, at: number): bigint {
  // The digit cap is checked on the length, before any text is made.
  const digits = n - (n > 0 && buf[start] === 0x2d ? 1 : 0);
  if (digits > maxDigits) {
    throw new RangeError(
      `Cannot decode value: bigint of ${digits} digits exceeds the limit of ${maxDigits} digits at byte ${
        at - base
      }`,
    );
  }
  let text = "";
  for (let i = start; i < start + n; i++) text += String.fromCharCode(buf[i]!);
  try {
    return decodeBigInt(text, maxDigits);
  } catch {
    return malformed("malformed bigint", at);
  }
}

function readProtoKeyed(at: number): Record<string, unknown> {
  // The array `key, value, ...` follows the extension (msgpackr's tag form).
  const b = u8();
  let count: number;
  if (b >= 0x90 && b < 0xa0) count = b & 0x0f;
  else if (b === 0xdc) count = u16();
  else if (b === 0xdd) count = u32();
  else return malformed("keyed object without an array", at);
  if (count % 2 !== 0) malformed("keyed object with an odd array", at);
  if (count > end - pos) malformed(`truncated keyed object`, at);
  enter(at);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < count; i += 2) {
    const key = readKey();
    setOwn(out, key, read());
  }
  depth--;
  return out;
}
