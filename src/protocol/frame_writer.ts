/**
 * Internal: batches outgoing frames. The first frame queued on an idle
 * writer goes to the socket at once; frames queued while a write is in
 * progress go out together in the next `write` call.
 *
 * @module
 */

import { FrameType, HEADER_SIZE, writeHeader } from "./frame.ts";
import { requestSize, writeRequest } from "./request.ts";
import { copyBytes } from "./_copy.ts";

/**
 * Frames of a held turn ({@linkcode FrameWriter.holdForTurn}) that go out
 * at once, in a write of their own, before the rest of the turn is built:
 * the peer works on them while this side builds the rest, so the two
 * processes run side by side instead of taking turns on one batch. The rest
 * of the turn follows in one write. Costs one more write per turn; at 64 in
 * flight on two cores it took `Connection` from 0.61x to 1.04x of the raw
 * echo's calls/s (docs/performance.md).
 */
export const TURN_EARLY_FRAMES = 16;

/** Reads whose answers are waking their callers now (see holdWritesForTurn). */
let wakingReads = 0;

// A turn ends four microtask hops after the read: each step below is queued
// behind the continuations of the hop before it, so a caller that awaits
// its call through up to three async functions of its own (its next call
// four hops after the answer) still writes in the turn.
function endWakingRead(): void {
  wakingReads--;
}
function afterThirdHop(): void {
  queueMicrotask(endWakingRead);
}
function afterSecondHop(): void {
  queueMicrotask(afterThirdHop);
}
function afterFirstHop(): void {
  queueMicrotask(afterSecondHop);
}

/**
 * Called by a read that settled several calls, after settling them: until
 * the callers those answers woke have run (four microtask hops: callers that
 * await through up to three async functions of their own), every writer of
 * this process that starts a write holds it for its turn
 * ({@linkcode FrameWriter.prototype.holdForTurn}). Callers woken by one read
 * send their next requests on any connection, not only on the one that
 * read: a channel spreads them over its servers, and each of those writers
 * sends them in one write instead of a write for the first and one for the
 * rest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FrameType } from "./frame.ts";
 * import { FrameWriter, holdWritesForTurn } from "./frame_writer.ts";
 * const writes: number[] = [];
 * const writer = new FrameWriter({ write: (p) => (writes.push(p.length), Promise.resolve(p.length)) });
 * holdWritesForTurn();
 * writer.push(FrameType.Ping, 1); // held: the woken callers are still running
 * writer.push(FrameType.Ping, 2);
 * await Promise.resolve();
 * assert.deepEqual(writes, [18]);
 * ```
 */
export function holdWritesForTurn(): void {
  wakingReads++;
  queueMicrotask(afterFirstHop);
}

/** What {@linkcode FrameWriter} writes to (a `Deno.Conn` fits). */
export interface ByteSink {
  /** Writes some bytes, resolving to the count written. */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Double-buffered frame writer: frames are encoded straight into the pending
 * buffer. A frame queued while no write is in progress is written at once
 * (so that the peer can start on it while this side prepares the next
 * frames); frames queued during a write collect in the other buffer and go
 * out in one write when it completes. Every push returns the number of the
 * batch it joined; {@linkcode FrameWriter.prototype.started} tells which
 * batches were handed to the socket, so a caller can tell "never written"
 * from "maybe written".
 *
 * @example The first frame at once, the next two in one batch
 * ```ts
 * import { FrameWriter } from "./frame_writer.ts";
 * import { FrameType } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const writes: Uint8Array[] = [];
 * const writer = new FrameWriter({ write: (p) => { writes.push(p.slice()); return Promise.resolve(p.length); } });
 * writer.push(FrameType.Ping, 1); // written at once
 * writer.push(FrameType.Ping, 2); // waits for the first write
 * writer.push(FrameType.Ping, 3); // joins the second
 * await writer.drained();
 * assert.deepEqual(writes.map((w) => w.length), [9, 18]);
 * ```
 */
export class FrameWriter {
  #sink: ByteSink;
  #pending: Uint8Array;
  #spare: Uint8Array;
  #len = 0;
  #batch = 1;
  #started = 0;
  #flushing = false;
  #held = false;
  /** Frames a held turn still sends at once (see TURN_EARLY_FRAMES). */
  #early = 0;
  #releaseHeld = () => this.release();
  #failed: unknown = undefined;
  #idle: Array<() => void> = [];
  #low: Array<{ limit: number; resolve: () => void }> = [];
  #onError: (error: unknown) => void;

  /**
   * Constructs a new writer.
   *
   * @param sink Where bytes go.
   * @param onError Called once when a write fails.
   */
  constructor(sink: ByteSink, onError: (error: unknown) => void = () => {}) {
    this.#sink = sink;
    this.#pending = new Uint8Array(16384);
    this.#spare = new Uint8Array(16384);
    this.#onError = onError;
  }

  /** Number of the last batch handed to the socket (0 before any). */
  get started(): number {
    return this.#started;
  }

  /** Bytes queued and not yet handed to the socket. */
  get buffered(): number {
    return this.#len;
  }

  /** Whether a write failed; nothing more is written after that. */
  get failed(): boolean {
    return this.#failed !== undefined;
  }

  /**
   * Queues a frame.
   *
   * @param type Frame type.
   * @param id Request id.
   * @param payload Payload bytes.
   * @param prefix Bytes written before `payload` inside the same payload.
   * @returns The batch number the frame joined.
   */
  push(
    type: FrameType,
    id: number,
    payload?: Uint8Array,
    prefix?: Uint8Array,
  ): number {
    if (this.#failed !== undefined) return this.#batch;
    const pl = payload?.length ?? 0;
    const px = prefix?.length ?? 0;
    const need = this.#len + HEADER_SIZE + px + pl;
    const buf = this.#reserve(need);
    writeHeader(buf, this.#len, type, id, px + pl);
    let o = this.#len + HEADER_SIZE;
    if (px) {
      copyBytes(buf, o, prefix!);
      o += px;
    }
    if (pl) copyBytes(buf, o, payload!);
    return this.#commit(need);
  }

  /**
   * Queues a request frame: its body as `writeRequest` of `request.ts`
   * lays it out.
   *
   * @param id Request id.
   * @param timeout The u32 of ms left until the caller's deadline, or
   * `undefined` for none (`toWire` of `_deadline.ts`).
   * @param prefix The method, from `methodPrefix`.
   * @param payload The encoded params.
   * @param metadata Encoded metadata entries (at most 65535 bytes), if any.
   * @returns The batch number the frame joined.
   */
  pushRequest(
    id: number,
    timeout: number | undefined,
    prefix: Uint8Array,
    payload: Uint8Array,
    metadata?: Uint8Array,
  ): number {
    if (this.#failed !== undefined) return this.#batch;
    const size = requestSize(timeout, prefix, payload.length, metadata);
    const need = this.#len + HEADER_SIZE + size;
    const buf = this.#reserve(need);
    writeHeader(buf, this.#len, FrameType.Request, id, size);
    writeRequest(
      buf,
      this.#len + HEADER_SIZE,
      timeout,
      prefix,
      payload,
      metadata,
    );
    return this.#commit(need);
  }

  #reserve(need: number): Uint8Array {
    if (need > this.#pending.length) {
      const grown = new Uint8Array(Math.max(need, this.#pending.length * 2));
      grown.set(this.#pending.subarray(0, this.#len));
      this.#pending = grown;
    }
    return this.#pending;
  }

  #commit(need: number): number {
    this.#len = need;
    const batch = this.#batch;
    if (wakingReads > 0) this.holdForTurn();
    if (
      !this.#flushing &&
      (!this.#held || (this.#early > 0 && --this.#early === 0))
    ) {
      this.#flush();
    }
    return batch;
  }

  /**
   * Holds frames pushed from now on until {@linkcode FrameWriter.release}:
   * a reader answering one read's requests sends all the answers in one
   * write instead of the first alone and the rest after it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { FrameType } from "./frame.ts";
   * import { FrameWriter } from "./frame_writer.ts";
   * const writes: number[] = [];
   * const writer = new FrameWriter({ write: (p) => (writes.push(p.length), Promise.resolve(p.length)) });
   * writer.hold();
   * writer.push(FrameType.Ping, 1);
   * writer.push(FrameType.Ping, 2);
   * assert.deepEqual(writes, []);
   * writer.release();
   * assert.deepEqual(writes, [18]);
   * ```
   */
  hold(): void {
    this.#held = true;
    this.#early = 0;
  }

  /**
   * Holds frames until the microtasks queued so far have run: callers woken
   * by one read that each send their next request send them in two writes,
   * the first {@linkcode TURN_EARLY_FRAMES} at once (the peer starts on
   * them) and the rest when the turn ends or that write completes. Does
   * nothing while a write is in progress (frames already wait for it) or
   * frames are held.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { FrameType } from "./frame.ts";
   * import { FrameWriter } from "./frame_writer.ts";
   * const writes: number[] = [];
   * const writer = new FrameWriter({ write: (p) => (writes.push(p.length), Promise.resolve(p.length)) });
   * queueMicrotask(() => writer.push(FrameType.Ping, 2)); // already queued
   * writer.holdForTurn();
   * writer.push(FrameType.Ping, 1);
   * await Promise.resolve();
   * assert.deepEqual(writes, [18]);
   * ```
   */
  holdForTurn(): void {
    if (this.#held || this.#flushing) return;
    this.#held = true;
    this.#early = TURN_EARLY_FRAMES;
    queueMicrotask(this.#releaseHeld);
  }

  /** Ends a {@linkcode FrameWriter.hold}: what it held goes out now. */
  release(): void {
    this.#held = false;
    this.#early = 0;
    if (this.#len > 0 && !this.#flushing) this.#flush();
  }

  /**
   * Queues raw bytes (the preface, or a refusal to a wrong peer).
   *
   * @param bytes The bytes.
   * @returns The batch number.
   */
  pushRaw(bytes: Uint8Array): number {
    if (this.#failed !== undefined) return this.#batch;
    const need = this.#len + bytes.length;
    this.#reserve(need).set(bytes, this.#len);
    return this.#commit(need);
  }

  /**
   * Resolves once at most `limit` bytes wait behind the write in progress:
   * at once when that is so already, else when the next write takes them
   * (or writing failed). A producer that waits for this keeps at most one
   * write in progress and `limit` bytes more, without waiting for the
   * socket to go idle (as {@linkcode FrameWriter.prototype.drained} does).
   *
   * @param limit Bytes that may wait.
   * @returns A promise.
   */
  below(limit: number): Promise<void> {
    if (this.#len <= limit || this.#failed !== undefined) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#low.push({ limit, resolve }));
  }

  #wakeLow(): void {
    if (this.#low.length === 0) return;
    const waiting = this.#low;
    this.#low = [];
    for (const waiter of waiting) {
      if (this.#len <= waiter.limit || this.#failed !== undefined) {
        waiter.resolve();
      } else this.#low.push(waiter);
    }
  }

  /**
   * Resolves when everything queued so far was written (or writing failed).
   *
   * @returns A promise.
   */
  drained(): Promise<void> {
    if (!this.#flushing) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  // Runs synchronously up to the first write: `push` starts it.
  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#len > 0 && this.#failed === undefined) {
        const buf = this.#pending;
        const len = this.#len;
        this.#pending = this.#spare;
        this.#spare = buf;
        this.#len = 0;
        this.#started = this.#batch++;
        this.#wakeLow();
        let off = 0;
        while (off < len) {
          off += await this.#sink.write(buf.subarray(off, len));
        }
        if (buf.length > 1 << 20) this.#spare = new Uint8Array(16384);
      }
    } catch (error) {
      this.#failed = error ?? new Error("write failed");
      this.#len = 0;
      // Never from inside `push` (a sink that throws at once): the caller
      // is mid-way through its own bookkeeping.
      queueMicrotask(() => this.#onError(error));
    } finally {
      this.#flushing = false;
      this.#wakeLow();
      if (this.#len === 0 || this.#failed !== undefined) {
        const idle = this.#idle;
        this.#idle = [];
        for (const resolve of idle) resolve();
      }
    }
  }
}
