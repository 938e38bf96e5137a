/**
 * Internal: how a client connection's read loop reads its socket.
 *
 * `Deno.Conn.read()` is the cheaper read, but it keeps each pending read's
 * promise in a per-connection `Set`, and V8 rebuilds the emptied set's table
 * on every read in the generation the old table is in. Once that table is in
 * the old generation (after any full collection of the process, or after
 * the connection idled through young collections), every read leaves ~115 B
 * there, and a busy connection's reads become mark-compact collections
 * (docs/performance.md, fifth round). The connection's byte stream
 * (`conn.readable`, read with a BYOB reader into the same buffer) keeps no
 * such set, and costs a few microseconds more per read.
 *
 * So a read that is likely to carry several answers (more than one call
 * waits for its answer) goes through the byte stream, where that cost is
 * shared; a lone answer is read with `read()`, where it would add to the
 * call's latency.
 *
 * @module
 */

import type { FrameDecoder } from "../protocol/frame.ts";

/** What the reader reads (a `Deno.Conn` fits; `readable` is optional). */
export interface ReadSource {
  /** Reads into `p`, resolving to the count read or `null` at the end. */
  read(p: Uint8Array): Promise<number | null>;
  /** The same bytes as a byte stream, if the source has one. */
  readonly readable?: ReadableStream<Uint8Array>;
}

/**
 * Reads a socket into a {@linkcode FrameDecoder}, through the byte stream
 * when several answers are due and through `read()` otherwise. The two
 * never overlap: each read completes before the next one starts.
 *
 * @example
 * ```ts
 * import { SocketReader } from "./_socket_reader.ts";
 * import { encodeFrame, FrameDecoder, FrameType } from "../protocol/frame.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrame(FrameType.Result, 1, new Uint8Array([42]));
 * const source = {
 *   read(p: Uint8Array) {
 *     p.set(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const decoder = new FrameDecoder();
 * assert.equal(await new SocketReader(source).read(decoder, 1), true);
 * assert.equal(decoder.next()?.id, 1);
 * ```
 */
export class SocketReader {
  #source: ReadSource;
  #stream: ReadableStreamBYOBReader | undefined;

  /**
   * @param source The socket.
   */
  constructor(source: ReadSource) {
    this.#source = source;
  }

  /**
   * Reads once into `decoder`'s writable space.
   *
   * @param decoder Where the bytes go.
   * @param due How many calls wait for an answer.
   * @returns `false` at the end of the stream.
   */
  async read(decoder: FrameDecoder, due: number): Promise<boolean> {
    if (due > 1 && this.#source.readable !== undefined) {
      this.#stream ??= this.#source.readable.getReader({ mode: "byob" });
      const { value, done } = await this.#stream.read(decoder.writable());
      // At the end the view is empty, but the buffer moved all the same.
      if (value !== undefined) decoder.commitTransferred(value);
      return !done;
    }
    const n = await this.#source.read(decoder.writable());
    if (n === null) return false;
    decoder.commit(n);
    return true;
  }
}
