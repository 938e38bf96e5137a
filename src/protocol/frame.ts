/**
 * The zkrpc framing layer: preface, frame header and an incremental decoder
 * with a size limit. See `docs/protocol.md` for the byte-by-byte layout.
 *
 * @module
 */

import { ProtocolError } from "../errors.ts";

/**
 * The protocol version this module speaks. Version 2 added the settings
 * exchange and the request header (see `docs/protocol.md`).
 */
export const PROTOCOL_VERSION = 2;

/**
 * The 9-byte preface each side sends first: 8 magic bytes
 * (`0x89 "ZKRPC" CR LF`) then the protocol version (one byte).
 *
 * @example Check the preface length
 * ```ts
 * import { PREFACE } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(PREFACE.length, 9);
 * ```
 */
export const PREFACE: Uint8Array = new Uint8Array([
  0x89,
  0x5a,
  0x4b,
  0x52,
  0x50,
  0x43,
  0x0d,
  0x0a,
  PROTOCOL_VERSION,
]);

/** Length of {@linkcode PREFACE} in bytes. */
export const PREFACE_SIZE = 9;

/** Bytes before the payload: u32 length, u8 type, u32 request id. */
export const HEADER_SIZE = 9;

/** The smallest legal value of the length field (type + id, no payload). */
export const MIN_FRAME_LENGTH = 5;

/** Default maximum frame length (the value of the length field): 4 MiB. */
export const DEFAULT_MAX_FRAME_SIZE: number = 4 * 1024 * 1024;

/**
 * Largest ping (and so pong) payload either side accepts, in bytes; a larger
 * one is a protocol error. Pings are answered even by a peer that reads
 * nothing else, so their size is what a stranger can make a peer buffer.
 */
export const MAX_PING_PAYLOAD = 64;

/**
 * Flag bits of the first byte of a request payload (protocol version 2).
 *
 * @example Read the flags
 * ```ts
 * import { RequestFlag } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(RequestFlag.Deadline | RequestFlag.Metadata, 3);
 * ```
 */
export const RequestFlag = {
  /** A u32 follows: milliseconds left until the caller's deadline. */
  Deadline: 1,
  /** A u16 length and that many bytes of metadata follow (reserved). */
  Metadata: 2,
} as const;

/**
 * Throws when a ping or pong carries more than {@linkcode MAX_PING_PAYLOAD}
 * bytes.
 *
 * @param frame A ping or pong frame.
 * @throws {ProtocolError} When the payload is too large.
 *
 * @example Refuse a large ping
 * ```ts
 * import { checkPingSize, FrameType } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = { type: FrameType.Ping, id: 0, payload: new Uint8Array(65) };
 * assert.throws(() => checkPingSize(frame), /exceeds the limit of 64 bytes/);
 * ```
 */
export function checkPingSize(frame: Frame): void {
  if (frame.payload.length > MAX_PING_PAYLOAD) {
    throw new ProtocolError(
      `Cannot read frame: ${
        frame.type === FrameType.Ping ? "ping" : "pong"
      } payload of ${frame.payload.length} bytes exceeds the limit of ${MAX_PING_PAYLOAD} bytes`,
    );
  }
}

/** Setting keys of a settings frame. */
const SETTING_MAX_FRAME_SIZE = 1;
const SETTING_CODECS = 2;
const SETTING_MAX_IN_FLIGHT = 3;
const SETTING_STREAM_WINDOW = 4;

/**
 * What each side announces in its settings frame.
 */
export interface Settings {
  /** The largest frame the sender accepts (value of the length field). */
  maxFrameSize: number;
  /** Codec names the sender can use, in order of preference. */
  codecs: string[];
  /** Most requests the sender runs at once (servers; 0 when not told). */
  maxInFlight: number;
  /**
   * Streaming support (key 4): the items the sender accepts on one stream
   * before it grants more with a `window` frame. Absent (or 0): the sender
   * does not speak streams (see `src/protocol/stream_frames.ts`).
   */
  streamWindow?: number;
}

/**
 * Encodes a settings payload: entries of `u8 key | u8 length | value`.
 *
 * @param settings The sender's settings.
 * @returns The payload.
 *
 * @example Round-trip settings
 * ```ts
 * import { decodeSettings, encodeSettings } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const settings = { maxFrameSize: 1024, codecs: ["json"], maxInFlight: 8 };
 * assert.deepEqual(decodeSettings(encodeSettings(settings)), settings);
 * ```
 */
export function encodeSettings(settings: Settings): Uint8Array {
  const codecs = new TextEncoder().encode(settings.codecs.join(","));
  if (codecs.length > 255) {
    throw new RangeError(
      "Cannot encode settings: codec names are longer than 255 bytes",
    );
  }
  const stream = (settings.streamWindow ?? 0) > 0 ? 6 : 0;
  const out = new Uint8Array(6 + 2 + codecs.length + 6 + stream);
  const view = new DataView(out.buffer);
  out[0] = SETTING_MAX_FRAME_SIZE;
  out[1] = 4;
  view.setUint32(2, settings.maxFrameSize);
  out[6] = SETTING_CODECS;
  out[7] = codecs.length;
  out.set(codecs, 8);
  const o = 8 + codecs.length;
  out[o] = SETTING_MAX_IN_FLIGHT;
  out[o + 1] = 4;
  view.setUint32(o + 2, settings.maxInFlight);
  if (stream > 0) {
    out[o + 6] = SETTING_STREAM_WINDOW;
    out[o + 7] = 4;
    view.setUint32(o + 8, settings.streamWindow!);
  }
  return out;
}

/**
 * Decodes a settings payload. Unknown keys are skipped; a missing
 * `maxFrameSize` reads as the protocol minimum's safe default (4 MiB).
 *
 * @param payload The payload of a settings frame.
 * @returns The settings.
 * @throws {ProtocolError} On a truncated entry or an impossible value.
 *
 * @example Skip an unknown key
 * ```ts
 * import { decodeSettings } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const settings = decodeSettings(new Uint8Array([99, 1, 0, 1, 4, 0, 0, 4, 0]));
 * assert.equal(settings.maxFrameSize, 1024);
 * ```
 */
export function decodeSettings(payload: Uint8Array): Settings {
  const settings: Settings = {
    maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
    codecs: [],
    maxInFlight: 0,
  };
  let o = 0;
  while (o < payload.length) {
    if (o + 2 > payload.length || o + 2 + payload[o + 1]! > payload.length) {
      throw new ProtocolError(
        `Cannot read settings: truncated entry at byte ${o}`,
      );
    }
    const key = payload[o]!;
    const n = payload[o + 1]!;
    const value = payload.subarray(o + 2, o + 2 + n);
    o += 2 + n;
    if (key === SETTING_CODECS) {
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(value);
      } catch {
        throw new ProtocolError(
          "Cannot read settings: codec names are not UTF-8",
        );
      }
      settings.codecs = text === "" ? [] : text.split(",");
      continue;
    }
    if (
      key !== SETTING_MAX_FRAME_SIZE && key !== SETTING_MAX_IN_FLIGHT &&
      key !== SETTING_STREAM_WINDOW
    ) {
      continue; // a later version's setting
    }
    if (n !== 4) {
      throw new ProtocolError(
        `Cannot read settings: setting ${key} has ${n} bytes, expected 4`,
      );
    }
    const u32 = ((value[0]! << 24) | (value[1]! << 16) | (value[2]! << 8) |
      value[3]!) >>> 0;
    if (key === SETTING_MAX_FRAME_SIZE) {
      if (u32 < MIN_FRAME_LENGTH) {
        throw new ProtocolError(
          `Cannot read settings: maxFrameSize ${u32} is below the minimum of ${MIN_FRAME_LENGTH}`,
        );
      }
      settings.maxFrameSize = u32;
    } else if (key === SETTING_STREAM_WINDOW) {
      if (u32 > 0) settings.streamWindow = u32;
    } else settings.maxInFlight = u32;
  }
  return settings;
}

/**
 * Frame types.
 *
 * @example Name a type
 * ```ts
 * import { FrameType } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(FrameType.Request, 1);
 * ```
 */
export const FrameType = {
  /** Client to server: u8 method length, method (UTF-8), codec params array. */
  Request: 1,
  /** Server to client: codec value. */
  Result: 2,
  /** Server to client: codec `{ name, message, data? }`. */
  Error: 3,
  /** Client to server: stop request `id`; empty payload. */
  Cancel: 4,
  /** Either way: answer with a pong of the same id; payload echoed. */
  Ping: 5,
  /** Answer to a ping. */
  Pong: 6,
  /** Server to client: draining, send no new requests; payload UTF-8 reason. */
  Goaway: 7,
  /**
   * Either way, id 0, the first frame after the preface: the sender's limits
   * and codecs ({@linkcode encodeSettings}).
   */
  Settings: 8,
  /**
   * Client to server, right before the `request` of the same id: the call
   * is a stream; payload u8 mode ({@linkcode StreamMode}). Sent only to a
   * server whose settings announce `streamWindow`.
   */
  Open: 9,
  /** Either way: one stream item of call `id`; codec value. */
  Item: 10,
  /** Either way: the sender's items of call `id` are complete; empty. */
  End: 11,
  /** Either way: u32 more items the sender of this frame accepts on `id`. */
  Window: 12,
} as const;

/**
 * Bits of the payload of an `open` frame (protocol version 2 with
 * streaming).
 *
 * @example A bidirectional stream
 * ```ts
 * import { StreamMode } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(StreamMode.Output | StreamMode.Input, 3);
 * ```
 */
export const StreamMode = {
  /** The answer is a stream: `item` frames, then `end` or `error`. */
  Output: 1,
  /** The caller sends input: `item` frames, then `end`. */
  Input: 2,
} as const;

/** A frame type number. */
export type FrameType = typeof FrameType[keyof typeof FrameType];

/** One decoded frame. */
export interface Frame {
  /** The frame type. */
  type: FrameType;
  /** The request id (0 for connection-level frames). */
  id: number;
  /**
   * The payload. It may be a view into the decoder's buffer, valid only until
   * the decoder is written to again.
   */
  payload: Uint8Array;
}

/** Result of {@linkcode checkPreface}. */
export type PrefaceCheck = "ok" | "incomplete" | "version" | "http" | "bad";

/**
 * Checks the first bytes received against {@linkcode PREFACE}. A mismatch is
 * reported as soon as the first wrong byte arrives, so a wrong peer is
 * refused without waiting for 9 bytes.
 *
 * @param bytes The bytes received so far.
 * @returns `"ok"`, `"incomplete"`, `"version"` (magic right, version
 * wrong), `"http"` (looks like an HTTP request) or `"bad"`.
 *
 * @example Refuse an HTTP request
 * ```ts
 * import { checkPreface, PREFACE } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkPreface(PREFACE), "ok");
 * assert.equal(checkPreface(new TextEncoder().encode("GET / HTTP/1.1\r\n")), "http");
 * ```
 */
export function checkPreface(bytes: Uint8Array): PrefaceCheck {
  const n = Math.min(bytes.length, PREFACE_SIZE - 1);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== PREFACE[i]) {
      return /^[A-Z]{3,10} /.test(
          String.fromCharCode(...bytes.subarray(0, 11)),
        ) || (bytes.length < 11 && /^[A-Z]+$/.test(
          String.fromCharCode(...bytes.subarray(0, bytes.length)),
        ))
        ? "http"
        : "bad";
    }
  }
  if (bytes.length < PREFACE_SIZE) return "incomplete";
  return bytes[PREFACE_SIZE - 1] === PROTOCOL_VERSION ? "ok" : "version";
}

/**
 * Writes a frame header into `target` at `offset`.
 *
 * @param target The buffer.
 * @param offset Where the header starts.
 * @param type The frame type.
 * @param id The request id (u32).
 * @param payloadLength The payload length in bytes.
 *
 * @example Write a header
 * ```ts
 * import { FrameType, writeHeader } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const header = new Uint8Array(9);
 * writeHeader(header, 0, FrameType.Ping, 7, 0);
 * assert.deepEqual([...header], [0, 0, 0, 5, 5, 0, 0, 0, 7]);
 * ```
 */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  type: FrameType,
  id: number,
  payloadLength: number,
): void {
  const length = MIN_FRAME_LENGTH + payloadLength;
  target[offset] = length >>> 24;
  target[offset + 1] = length >>> 16;
  target[offset + 2] = length >>> 8;
  target[offset + 3] = length;
  target[offset + 4] = type;
  target[offset + 5] = id >>> 24;
  target[offset + 6] = id >>> 16;
  target[offset + 7] = id >>> 8;
  target[offset + 8] = id;
}

/**
 * Encodes one frame into a fresh buffer (the writers on the hot path write
 * straight into their batch buffer instead).
 *
 * @param type The frame type.
 * @param id The request id (u32).
 * @param payload The payload.
 * @returns The frame bytes.
 *
 * @example Encode and decode a ping
 * ```ts
 * import { encodeFrame, FrameDecoder, FrameType } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder();
 * decoder.push(encodeFrame(FrameType.Ping, 1));
 * assert.equal(decoder.next()?.type, FrameType.Ping);
 * ```
 */
export function encodeFrame(
  type: FrameType,
  id: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  writeHeader(out, 0, type, id, payload.length);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** Options of {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /**
   * Largest accepted value of a frame's length field. A larger prefix is a
   * {@linkcode ProtocolError} before any allocation.
   *
   * @default {4194304}
   */
  maxFrameSize?: number;
  /**
   * Initial buffer size in bytes. It doubles only when full with one
   * partial frame (so it holds at most twice the bytes a peer actually sent,
   * never what a length prefix merely claims), up to `maxFrameSize + 4`, and
   * shrinks back to this size once what is left fits in it after growing
   * past 1 MiB.
   *
   * @default {65536}
   */
  initialSize?: number;
}

const KNOWN_TYPES = 12;
const EMPTY = new Uint8Array(0);
const SHRINK_ABOVE = 1024 * 1024;

/**
 * Incremental frame decoder. Read straight into {@linkcode FrameDecoder.prototype.writable}
 * and {@linkcode FrameDecoder.prototype.commit} the count (no copy), or
 * {@linkcode FrameDecoder.prototype.push} a chunk; then call
 * {@linkcode FrameDecoder.prototype.next} until it returns `undefined`.
 * It never allocates more than `maxFrameSize + 4` bytes.
 *
 * @example Decode two frames split across chunks
 * ```ts
 * import { encodeFrame, FrameDecoder, FrameType } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([
 *   ...encodeFrame(FrameType.Result, 1, new Uint8Array([49])),
 *   ...encodeFrame(FrameType.Result, 2, new Uint8Array([50])),
 * ]);
 * const decoder = new FrameDecoder();
 * decoder.push(bytes.subarray(0, 5));
 * assert.equal(decoder.next(), undefined);
 * decoder.push(bytes.subarray(5));
 * assert.equal(decoder.next()?.id, 1);
 * assert.equal(decoder.next()?.id, 2);
 * ```
 */
export class FrameDecoder {
  #max: number;
  #initial: number;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;

  /**
   * Constructs a new decoder.
   *
   * @param options Size limits.
   */
  constructor(options: FrameDecoderOptions = {}) {
    this.#max = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    if (!(this.#max >= MIN_FRAME_LENGTH) || this.#max > 0xffffffff) {
      throw new RangeError(
        `Cannot create frame decoder: maxFrameSize must be between 5 and 4294967295, got ${this.#max}`,
      );
    }
    const initial = options.initialSize ?? 65536;
    this.#initial = Math.max(64, Math.min(initial, this.#max + 4));
    this.#buf = new Uint8Array(this.#initial);
  }

  /** Number of bytes received and not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Current buffer capacity in bytes (for tests and diagnostics). */
  get capacity(): number {
    return this.#buf.length;
  }

  /**
   * Free space to read into, compacting or growing the buffer when needed.
   *
   * @returns A view of the free space.
   */
  writable(): Uint8Array {
    if (
      this.#buf.length > SHRINK_ABOVE &&
      this.#end - this.#start <= this.#initial / 2
    ) {
      // Past a large frame: give the memory back.
      const small = new Uint8Array(this.#initial);
      small.set(this.#buf.subarray(this.#start, this.#end));
      this.#end -= this.#start;
      this.#start = 0;
      this.#buf = small;
    }
    const buf = this.#buf;
    if (buf.length - this.#end < 4096 && this.#start > 0) {
      buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buf.length) {
      // Full with one partial frame whose length was already checked by
      // next(): double, capped by what that frame needs. Never jump to the
      // claimed length: a peer that sends a 4 MiB header and stops would
      // make every connection hold 4 MiB.
      let need = this.#buf.length * 2;
      const length = this.#checkHead();
      if (length >= 0 && length + 4 > this.#end - this.#start) {
        need = Math.min(need, length + 4);
      }
      const size = Math.min(need, this.#max + 4);
      if (size <= this.#buf.length) {
        throw new ProtocolError("Cannot read frame: decoder buffer is full");
      }
      const grown = new Uint8Array(size);
      grown.set(this.#buf.subarray(0, this.#end));
      this.#buf = grown;
    }
    return this.#buf.subarray(this.#end);
  }

  /**
   * Records that `n` bytes were read into the view from
   * {@linkcode FrameDecoder.prototype.writable}.
   *
   * @param n The number of bytes read.
   */
  commit(n: number): void {
    this.#end += n;
  }

  /**
   * Copies a chunk into the decoder.
   *
   * @param chunk Received bytes.
   */
  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      const space = this.writable();
      const n = Math.min(space.length, chunk.length - offset);
      space.set(chunk.subarray(offset, offset + n));
      this.commit(n);
      offset += n;
      // Validate the length prefix early so a huge frame fails before growing.
      this.#checkHead();
    }
  }

  /**
   * Returns the first `n` buffered bytes without consuming them.
   *
   * @param n How many bytes.
   * @returns A view, or `undefined` when fewer bytes are buffered.
   */
  peek(n: number): Uint8Array | undefined {
    if (this.#end - this.#start < n) return undefined;
    return this.#buf.subarray(this.#start, this.#start + n);
  }

  /**
   * Returns every buffered byte without consuming it.
   *
   * @returns A view.
   */
  peekAll(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /**
   * Consumes `n` buffered bytes (e.g. the preface).
   *
   * @param n How many bytes.
   */
  skip(n: number): void {
    this.#start = Math.min(this.#start + n, this.#end);
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  #checkHead(): number {
    if (this.#end - this.#start < 4) return -1;
    const b = this.#buf;
    const s = this.#start;
    const length = ((b[s]! << 24) | (b[s + 1]! << 16) | (b[s + 2]! << 8) |
      b[s + 3]!) >>> 0;
    if (length < MIN_FRAME_LENGTH) {
      throw new ProtocolError(
        `Cannot read frame: length ${length} is below the minimum of ${MIN_FRAME_LENGTH}`,
      );
    }
    if (length > this.#max) {
      throw new ProtocolError(
        `Cannot read frame: length ${length} exceeds the limit of ${this.#max} bytes`,
      );
    }
    return length;
  }

  /**
   * Moves to the next complete frame without allocating: its type, id and
   * payload range are then {@linkcode FrameDecoder.prototype.type},
   * {@linkcode FrameDecoder.prototype.id},
   * {@linkcode FrameDecoder.prototype.start} and
   * {@linkcode FrameDecoder.prototype.end} of
   * {@linkcode FrameDecoder.prototype.bytes}, valid until the decoder is
   * written to again (the hot paths of connections read a frame there,
   * without a frame object or a payload view).
   *
   * @returns `true` when a frame is there, `false` when more bytes are
   * needed.
   * @throws {ProtocolError} On a length below 5 or above the limit, or an
   * unknown frame type.
   *
   * @example
   * ```ts
   * import { encodeFrame, FrameDecoder, FrameType } from "./frame.ts";
   * import assert from "node:assert/strict";
   *
   * const decoder = new FrameDecoder();
   * decoder.push(encodeFrame(FrameType.Result, 7, new Uint8Array([42])));
   * assert.equal(decoder.advance(), true);
   * assert.equal(decoder.type, FrameType.Result);
   * assert.equal(decoder.id, 7);
   * assert.deepEqual([...decoder.bytes.subarray(decoder.start, decoder.end)], [42]);
   * assert.equal(decoder.advance(), false);
   * ```
   */
  advance(): boolean {
    const length = this.#checkHead();
    if (length < 0 || this.#end - this.#start < length + 4) return false;
    const b = this.#buf;
    const s = this.#start;
    const type = b[s + 4]!;
    this.id = ((b[s + 5]! << 24) | (b[s + 6]! << 16) | (b[s + 7]! << 8) |
      b[s + 8]!) >>> 0;
    this.bytes = b;
    this.start = s + HEADER_SIZE;
    this.end = s + 4 + length;
    this.#start = s + 4 + length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (type < 1 || type > KNOWN_TYPES) {
      throw new ProtocolError(`Cannot read frame: unknown frame type ${type}`);
    }
    this.type = type as FrameType;
    return true;
  }

  /** The type of the frame {@linkcode FrameDecoder.prototype.advance} found. */
  type: FrameType = FrameType.Request;
  /** Its request id. */
  id = 0;
  /** The buffer holding its payload. */
  bytes: Uint8Array = EMPTY;
  /** Where its payload starts in {@linkcode FrameDecoder.prototype.bytes}. */
  start = 0;
  /** Where its payload ends (exclusive). */
  end = 0;

  /**
   * The frame {@linkcode FrameDecoder.prototype.advance} found, as an
   * object with a payload view.
   *
   * @returns The frame.
   */
  frame(): Frame {
    return {
      type: this.type,
      id: this.id,
      payload: this.bytes.subarray(this.start, this.end),
    };
  }

  /**
   * Decodes the next complete frame.
   *
   * @returns The frame, or `undefined` when more bytes are needed.
   * @throws {ProtocolError} On a length below 5 or above the limit, or an
   * unknown frame type.
   */
  next(): Frame | undefined {
    return this.advance() ? this.frame() : undefined;
  }
}
