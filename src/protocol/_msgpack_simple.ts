/**
 * Internal: MessagePack of the usual values - a number, an ASCII string, a
 * boolean, `null`, a `Uint8Array`, or a flat array of at most 64 of them -
 * written into one scratch buffer without msgpackr: the scratch encode of a
 * connection that copies the bytes into its frame batch at once. The bytes
 * are those msgpackr writes for the same value (integers in the smallest of
 * fixint/uint/int 8-32, other numbers as float 64, fixstr/str 8/str 16,
 * bin 8/16/32, fixarray/array 16); anything else (-0, `undefined`, a
 * bigint, non-ASCII text, other objects, holes) is left to msgpackr.
 *
 * @module
 */

/** The largest encoding written here; larger values go to msgpackr. */
const MAX_SIZE = 64 * 1024;
/** Lengths up to this get a view made once; longer ones a view per encode. */
const CACHED_VIEWS = 1024;
let scratch = new Uint8Array(1024);
let scratchView = new DataView(scratch.buffer);
/** One view per length, made once: no view allocated per encode. */
let views: (Uint8Array | undefined)[] = [];

/** Makes room for `n` bytes in all; `false` past {@linkcode MAX_SIZE}. */
function room(n: number): boolean {
  if (n <= scratch.length) return true;
  if (n > MAX_SIZE) return false;
  let size = scratch.length * 2;
  while (size < n) size *= 2;
  const grown = new Uint8Array(size);
  grown.set(scratch);
  scratch = grown;
  scratchView = new DataView(grown.buffer);
  views = [];
  return true;
}

/**
 * Encodes `value` into the shared scratch buffer when it is a value this
 * encoder writes.
 *
 * @param value The value.
 * @returns A view of the bytes, valid until the next encode, or `undefined`
 * when the value is not one this encoder writes: the caller encodes it as
 * usual.
 *
 * @example
 * ```ts
 * import { encodeSimple } from "./_msgpack_simple.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...encodeSimple([10, 2])!], [0x92, 10, 2]);
 * assert.deepEqual([...encodeSimple(new Uint8Array([7]))!], [0xc4, 1, 7]);
 * assert.equal(encodeSimple("\u00e9"), undefined);
 * assert.equal(encodeSimple(-0), undefined);
 * ```
 */
export function encodeSimple(value: unknown): Uint8Array | undefined {
  let o: number;
  if (Array.isArray(value)) {
    const n = value.length;
    if (n > 64) return undefined;
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
      if (!(i in value)) return undefined;
      o = writeOne(value[i], o);
      if (o < 0) return undefined;
    }
  } else {
    o = writeOne(value, 0);
    if (o < 0) return undefined;
  }
  return o <= CACHED_VIEWS
    ? views[o] ??= scratch.subarray(0, o)
    : scratch.subarray(0, o);
}

/** Writes one value at `o`; returns the offset after it, or -1. */
function writeOne(v: unknown, o: number): number {
  if (!room(o + 9)) return -1;
  switch (typeof v) {
    case "number":
      return v === 0 && 1 / v < 0 ? -1 : writeNumber(v, o);
    case "string":
      return writeAscii(v, o);
    case "boolean":
      scratch[o] = v ? 0xc3 : 0xc2;
      return o + 1;
    case "object":
      if (v === null) {
        scratch[o] = 0xc0;
        return o + 1;
      }
      return (v as { constructor?: unknown }).constructor === Uint8Array &&
          v instanceof Uint8Array
        ? writeBin(v, o)
        : -1;
  }
  return -1;
}

function writeBin(v: Uint8Array, o: number): number {
  const n = v.length;
  const head = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  if (!room(o + head + n)) return -1;
  if (head === 2) {
    scratch[o] = 0xc4;
    scratch[o + 1] = n;
  } else if (head === 3) {
    scratch[o] = 0xc5;
    scratch[o + 1] = n >>> 8;
    scratch[o + 2] = n;
  } else {
    scratch[o] = 0xc6;
    scratchView.setUint32(o + 1, n);
  }
  scratch.set(v, o + head);
  return o + head + n;
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
  const head = n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  if (head === 5 || !room(o + head + n)) return -1;
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
