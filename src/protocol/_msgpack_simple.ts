/**
 * Internal: MessagePack of the usual small values — a finite number (not
 * -0), an ASCII string, a boolean, `null`, or a flat array of at most 64 of
 * them, as `isSimple` of `_values.ts` admits them — written into one
 * scratch buffer without msgpackr: the scratch encode of a connection that
 * copies the bytes into its frame batch at once. The bytes are those
 * msgpackr writes for the same value (integers in the smallest of
 * fixint/uint/int 8–32, other numbers as float 64, fixstr/str 8/str 16,
 * fixarray/array 16).
 *
 * @module
 */

const SCRATCH_SIZE = 1024;
const scratch = new Uint8Array(SCRATCH_SIZE);
const scratchView = new DataView(scratch.buffer);
/** One view per length, made once: no view allocated per encode. */
const views: (Uint8Array | undefined)[] = [];

/**
 * Encodes `value` into the shared scratch buffer when it is a simple value
 * that fits there.
 *
 * @param value The value (`isSimple` already returned `true` for it).
 * @returns A view of the bytes, valid until the next encode, or `undefined`
 * when the value is not one this encoder writes (non-ASCII text, over 1 KiB):
 * the caller encodes it as usual.
 *
 * @example
 * ```ts
 * import { encodeSimple } from "./_msgpack_simple.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...encodeSimple([10, 2])!], [0x92, 10, 2]);
 * assert.deepEqual([...encodeSimple("é") ?? []], []);
 * ```
 */
export function encodeSimple(value: unknown): Uint8Array | undefined {
  let o: number;
  if (Array.isArray(value)) {
    const n = value.length;
    if (n < 16) {
      scratch[0] = 0x90 | n;
      o = 1;
    } else {
      scratch[0] = 0xdc;
      scratch[1] = n >>> 8;
      scratch[2] = n;
      o = 3;
    }
    for (let i = 0; i < n; i++) {
      o = writeOne(value[i], o);
      if (o < 0) return undefined;
    }
  } else {
    o = writeOne(value, 0);
    if (o < 0) return undefined;
  }
  return views[o] ??= scratch.subarray(0, o);
}

/** Writes one primitive at `o`; returns the offset after it, or -1. */
function writeOne(v: unknown, o: number): number {
  if (SCRATCH_SIZE - o < 9) return -1;
  switch (typeof v) {
    case "number":
      return writeNumber(v, o);
    case "string":
      return writeAscii(v, o);
    case "boolean":
      scratch[o] = v ? 0xc3 : 0xc2;
      return o + 1;
    default: // null (isSimple admitted nothing else)
      scratch[o] = 0xc0;
      return o + 1;
  }
}

function writeNumber(v: number, o: number): number {
  if (v >>> 0 === v) {
    if (v < 0x80) {
      scratch[o] = v;
      return o + 1;
    }
    if (v < 0x100) {
      scratch[o] = 0xcc;
      scratch[o + 1] = v;
      return o + 2;
    }
    if (v < 0x10000) {
      scratch[o] = 0xcd;
      scratch[o + 1] = v >>> 8;
      scratch[o + 2] = v;
      return o + 3;
    }
    scratch[o] = 0xce;
    scratchView.setUint32(o + 1, v);
    return o + 5;
  }
  if (v >> 0 === v) {
    if (v >= -0x20) {
      scratch[o] = v & 0xff;
      return o + 1;
    }
    if (v >= -0x80) {
      scratch[o] = 0xd0;
      scratch[o + 1] = v & 0xff;
      return o + 2;
    }
    if (v >= -0x8000) {
      scratch[o] = 0xd1;
      scratchView.setInt16(o + 1, v);
      return o + 3;
    }
    scratch[o] = 0xd2;
    scratchView.setInt32(o + 1, v);
    return o + 5;
  }
  scratch[o] = 0xcb;
  scratchView.setFloat64(o + 1, v);
  return o + 9;
}

function writeAscii(s: string, o: number): number {
  const n = s.length;
  const head = n < 32 ? 1 : n < 0x100 ? 2 : 3;
  if (o + head + n > SCRATCH_SIZE) return -1;
  let p = o + head;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    scratch[p++] = c;
  }
  if (head === 1) scratch[o] = 0xa0 | n;
  else if (head === 2) {
    scratch[o] = 0xd9;
    scratch[o + 1] = n;
  } else {
    scratch[o] = 0xda;
    scratch[o + 1] = n >>> 8;
    scratch[o + 2] = n;
  }
  return p;
}
