/**
 * Hostile MessagePack payloads, a raw peer that sends them and collects the
 * replies, and the "nothing of the secret comes back" check, shared by the
 * decoder's unit tests (value_model_test.ts), the cross-connection
 * disclosure tests (decoder_disclosure_test.ts) and the wire tests of the
 * value model (codec_wire_test.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeFrame,
  encodeSettings,
  FrameDecoder,
  FrameType,
  PREFACE,
} from "../src/protocol/frame.ts";
import { concat, requestPayload, within, writeAll } from "./_core_helpers.ts";

/** Bytes from numbers. */
export const u8 = (...bytes: number[]): Uint8Array => new Uint8Array(bytes);

/** A victim's secret, unique per test run. */
export const SECRET = `Bearer-TOPSECRET-${crypto.randomUUID()}`;

/** {@linkcode SECRET} as UTF-8. */
export const SECRET_BYTES: Uint8Array = new TextEncoder().encode(SECRET);

/**
 * Asserts that `text` holds no 8-character piece of {@linkcode SECRET}.
 *
 * @param text What came back (an error message, a decoded reply).
 * @param what What it is, for the failure message.
 */
export function assertNoSecret(text: string, what: string): void {
  for (let i = 0; i + 8 <= SECRET.length; i++) {
    const piece = SECRET.slice(i, i + 8);
    assert.ok(!text.includes(piece), `${what} holds the secret: ${text}`);
  }
}

/**
 * The header of a MessagePack extension of `n` data bytes in the shortest
 * format (fixext 1/2/4/8/16, ext 8/16/32), with its type byte.
 */
export function extHeader(type: number, n: number): Uint8Array {
  const t = type & 0xff;
  const fixed: Record<number, number> = {
    1: 0xd4,
    2: 0xd5,
    4: 0xd6,
    8: 0xd7,
    16: 0xd8,
  };
  if (fixed[n] !== undefined) return u8(fixed[n]!, t);
  if (n < 256) return u8(0xc7, n, t);
  if (n < 65536) return u8(0xc8, n >> 8, n & 0xff, t);
  return u8(0xc9, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff, t);
}

/**
 * msgpackr's bundled-strings extension (0x62) with a signed offset, then a
 * bundled-string reference of 127 characters: what read other connections'
 * bytes out of the shared decode slab (issue 21, finding 1).
 */
export function bundledStrings(offset: number, tail = u8()): Uint8Array {
  const head = u8(0xd6, 0x62, 0, 0, 0, 0, 0xc1, 0x7f);
  new DataView(head.buffer).setInt32(2, offset);
  return concat(head, tail);
}

/** Payload bytes biased towards the decoder's edge cases. */
export const hostileBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  // An extension of any type (-128..127) with any data, maybe in a container.
  fc.tuple(
    fc.integer({ min: -128, max: 127 }),
    fc.uint8Array({ maxLength: 20 }),
    fc.constantFrom(u8(), u8(0x91), u8(0x92, 0xc0), u8(0x81, 0xa1, 0x6b)),
    fc.uint8Array({ maxLength: 8 }),
  ).map(([type, data, prefix, tail]) =>
    concat(prefix, extHeader(type, data.length), data, tail)
  ),
  fc.tuple(
    fc.oneof(fc.integer({ min: -4096, max: 0 }), fc.integer()),
    fc.uint8Array({ maxLength: 4 }),
  ).map((
    [offset, tail],
  ) => bundledStrings(offset, tail)),
  // msgpackr's bigint extension (0x42) and large claimed lengths.
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((data) =>
    concat(u8(0x91), extHeader(0x42, data.length), data)
  ),
  fc.tuple(
    fc.constantFrom(0xc6, 0xc9, 0xdb, 0xdd, 0xdf),
    fc.integer({ min: 0, max: 0xffffffff }),
  ).map(([head, n]) =>
    u8(head, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff, 0xa1)
  ),
);

/** A reply frame (result or error) of a raw peer. */
export interface Reply {
  type: number;
  id: number;
  payload: Uint8Array;
}

/**
 * A raw client: sends its preface and settings offering one codec, then
 * request frames; collects every result and error frame the server sends.
 */
export class RawPeer implements AsyncDisposable {
  readonly replies: Reply[] = [];
  #conn: Deno.Conn;
  #reading: Promise<void>;
  #closed = false;
  #changed = Promise.withResolvers<void>();
  #nextId = 1;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reading = this.#read();
  }

  /**
   * Connects to a server on 127.0.0.1.
   *
   * @param port The server's port.
   * @param codec The one codec name offered.
   */
  static async open(port: number, codec: string): Promise<RawPeer> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const settings = encodeSettings({
      maxFrameSize: 4 * 1024 * 1024,
      codecs: [codec],
      maxInFlight: 0,
    });
    await writeAll(
      conn,
      concat(PREFACE, encodeFrame(FrameType.Settings, 0, settings)),
    );
    return new RawPeer(conn);
  }

  async #read(): Promise<void> {
    const decoder = new FrameDecoder();
    const buf = new Uint8Array(65536);
    let prefaceLeft = PREFACE.length;
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        const skip = Math.min(prefaceLeft, n);
        prefaceLeft -= skip;
        decoder.push(buf.subarray(skip, n));
        for (let f = decoder.next(); f; f = decoder.next()) {
          if (f.type === FrameType.Result || f.type === FrameType.Error) {
            this.replies.push({ ...f, payload: f.payload.slice() });
          }
        }
        this.#changed.resolve();
        this.#changed = Promise.withResolvers<void>();
      }
    } catch {
      // closed by us or reset: the replies so far are what we check
    }
    this.#closed = true;
    this.#changed.resolve();
  }

  /** Sends one `echo` request per params payload; returns their ids. */
  async send(params: Uint8Array[], method = "echo"): Promise<number[]> {
    const ids = params.map(() => this.#nextId++);
    await writeAll(
      this.#conn,
      concat(
        ...params.map((p, i) =>
          encodeFrame(FrameType.Request, ids[i]!, requestPayload(method, p))
        ),
      ),
    );
    return ids;
  }

  /** Waits until `count` replies arrived in total (fails if closed first). */
  async until(count: number, what: string): Promise<void> {
    await within(
      (async () => {
        while (this.replies.length < count && !this.#closed) {
          await this.#changed.promise;
        }
      })(),
      10_000,
      what,
    );
    assert.ok(
      this.replies.length >= count,
      `the server closed the connection after ${this.replies.length} of ${count} replies`,
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    await this.#reading;
  }
}
