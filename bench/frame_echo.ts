/**
 * The ceiling's wire format: `u32 length | u8 type | u32 id | payload`, where
 * length counts the bytes after the length field, and a minimal multiplexed
 * client for it.
 *
 * @module
 */

/** Bytes of `u32 length | u8 type | u32 id`. */
export const HEADER_BYTES = 9;

/**
 * Builds a request frame template of `frameBytes` total bytes.
 *
 * @param frameBytes Total frame size including the 9-byte header.
 * @returns The frame; bytes 5..9 are overwritten with the id per call.
 */
export function makeFrame(frameBytes: number): Uint8Array {
  const size = Math.max(HEADER_BYTES, frameBytes);
  const frame = new Uint8Array(size);
  const view = new DataView(frame.buffer);
  view.setUint32(0, size - 4);
  frame[4] = 1;
  for (let i = HEADER_BYTES; i < size; i++) frame[i] = 97 + (i % 26);
  return frame;
}

/**
 * Builds a frame whose payload is `value` as JSON (the hand-written JSON RPC
 * baseline).
 *
 * @param type Frame type (1 request, 2 response).
 * @param id Frame id.
 * @param value The payload value.
 * @returns The frame.
 */
export function jsonFrame(
  type: number,
  id: number,
  value: unknown,
): Uint8Array {
  const json = textEncoder.encode(JSON.stringify(value));
  const frame = new Uint8Array(HEADER_BYTES + json.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, json.length + 5);
  frame[4] = type;
  view.setUint32(5, id);
  frame.set(json, HEADER_BYTES);
  return frame;
}

const textEncoder = new TextEncoder();

/**
 * Runs a bench server process on 127.0.0.1: accepts connections and hands
 * each to `serveConn` (with Nagle off; closed when it returns or throws),
 * prints `{"port", "pid"}`, answers
 * `{"cmd":"stats"}` on stdin with usage and `calls()`, and exits when stdin
 * closes.
 *
 * @param serveConn Serves one connection until it ends.
 * @param calls Calls served so far.
 */
export async function runFrameServer(
  serveConn: (conn: Deno.TcpConn) => Promise<void>,
  calls: () => number,
): Promise<never> {
  const { serveControl, writeJsonLine } = await import("./child.ts");
  const { usageSnapshot } = await import("./usage.ts");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections = new Set<Deno.Conn>();
  const serveOne = async (conn: Deno.TcpConn): Promise<void> => {
    connections.add(conn);
    conn.setNoDelay(true);
    try {
      await serveConn(conn);
    } catch {
      // peer went away
    } finally {
      connections.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) serveOne(conn);
    } catch {
      // listener closed
    }
  })();
  writeJsonLine({ port: (listener.addr as Deno.NetAddr).port, pid: Deno.pid });
  await serveControl((command) => {
    if (command.cmd === "stats") return { ...usageSnapshot(), calls: calls() };
    return { error: `Unknown command: ${String(command.cmd)}` };
  });
  listener.close();
  for (const conn of connections) {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
  await accepting;
  Deno.exit(0);
}

/**
 * Writes all of `bytes` to `conn`.
 *
 * @param conn The connection.
 * @param bytes Bytes to write.
 */
export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

/** Grows-on-demand read buffer that yields complete frames. */
export class FrameBuffer {
  #buffer: Uint8Array = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  /**
   * Reads once from `conn` into the buffer.
   *
   * @param conn Source connection.
   * @returns false on EOF.
   */
  async fill(conn: Deno.Conn): Promise<boolean> {
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
    }
    if (this.#buffer.length - this.#end < 16 * 1024) this.#makeRoom(16 * 1024);
    const n = await conn.read(this.#buffer.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /**
   * Returns the bytes of all complete frames at the front and consumes them,
   * calling `onFrame(id)` for each; makes room for a partial frame.
   *
   * @param onFrame Called with each frame's id.
   * @returns A view of the consumed bytes (valid until the next fill).
   */
  takeFrames(onFrame?: (id: number) => void): Uint8Array {
    const from = this.#start;
    const view = new DataView(this.#buffer.buffer);
    while (this.#end - this.#start >= HEADER_BYTES) {
      const length = view.getUint32(this.#start);
      if (this.#end - this.#start < length + 4) {
        if (length + 4 > this.#buffer.length - this.#start) {
          const consumed = this.#buffer.slice(from, this.#start);
          this.#makeRoom(length + 4);
          return consumed;
        }
        break;
      }
      onFrame?.(view.getUint32(this.#start + 5));
      this.#start += length + 4;
    }
    return this.#buffer.subarray(from, this.#start);
  }

  #makeRoom(need: number): void {
    const used = this.#end - this.#start;
    const size = Math.max(this.#buffer.length, used + need);
    const next = size > this.#buffer.length
      ? new Uint8Array(Math.max(size, this.#buffer.length * 2))
      : this.#buffer;
    if (next === this.#buffer) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
    } else {
      next.set(this.#buffer.subarray(this.#start, this.#end));
    }
    this.#buffer = next;
    this.#start = 0;
    this.#end = used;
  }
}

/** A multiplexed client for the echo ceiling: many frames in flight by id. */
export class EchoClient {
  #conn: Deno.Conn;
  #pending = new Map<number, (error?: Error) => void>();
  #queue: Uint8Array[] = [];
  #writing = false;
  #nextId = 1;
  #reader: Promise<void>;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reader = this.#readLoop();
  }

  /**
   * Connects to an echo server.
   *
   * @param hostname Host (127.0.0.1).
   * @param port Port.
   * @returns The client.
   */
  static async connect(hostname: string, port: number): Promise<EchoClient> {
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true);
    return new EchoClient(conn);
  }

  /**
   * Sends a copy of `template` with a fresh id; resolves when echoed.
   *
   * @param template A frame from {@linkcode makeFrame}.
   */
  call(template: Uint8Array): Promise<void> {
    const id = this.#nextId++ >>> 0;
    const frame = template.slice();
    new DataView(frame.buffer).setUint32(5, id);
    const done = new Promise<void>((resolve, reject) => {
      this.#pending.set(id, (error) => error ? reject(error) : resolve());
    });
    this.#queue.push(frame);
    if (!this.#writing) this.#flush();
    return done;
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const frames = this.#queue;
        this.#queue = [];
        let bytes: Uint8Array;
        if (frames.length === 1) {
          bytes = frames[0] as Uint8Array;
        } else {
          let total = 0;
          for (const frame of frames) total += frame.length;
          bytes = new Uint8Array(total);
          let offset = 0;
          for (const frame of frames) {
            bytes.set(frame, offset);
            offset += frame.length;
          }
        }
        await writeAll(this.#conn, bytes);
      }
    } catch (error) {
      this.#failAll(error as Error);
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    const buffer = new FrameBuffer();
    try {
      while (await buffer.fill(this.#conn)) {
        buffer.takeFrames((id) => {
          const settle = this.#pending.get(id);
          this.#pending.delete(id);
          settle?.();
        });
      }
      this.#failAll(new Error("Echo connection closed by the server"));
    } catch (error) {
      this.#failAll(error as Error);
    }
  }

  #failAll(error: Error): void {
    for (const settle of this.#pending.values()) settle(error);
    this.#pending.clear();
  }

  /** Closes the connection and waits for the reader to stop. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    await this.#reader;
  }
}
