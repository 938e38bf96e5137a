/**
 * The ceiling's wire format: `u32 length | u8 type | u32 id | payload`, where
 * length counts the bytes after the length field, and a minimal multiplexed
 * client for it.
 *
 * @module
 */
import { LatencyHistogram } from "./stats.ts";

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

/** What one closed-loop run measured (the same shape for every driver). */
export interface LoopRun {
  /** Latencies of the successful calls, ms. */
  latency: LatencyHistogram;
  /** Successful calls. */
  calls: number;
  /** Failed calls. */
  errors: number;
  /** Wall time of the run, ms. */
  elapsedMs: number;
  /** First error message, if any. */
  firstError?: string;
}

/** One connection of an {@linkcode EchoLoop}: its socket and its queues. */
interface EchoLane {
  conn: Deno.Conn;
  /** Send time of each frame in flight, in send order (a ring). */
  sentAt: Float64Array;
  head: number;
  inFlight: number;
  /** Frames to send when the current write completes. */
  queued: number;
  writing: boolean;
  /** Bytes of a partly received frame. */
  partial: number;
  reader: Promise<void>;
}

/**
 * The ceiling's load client: a closed loop of `inFlight` callers over raw
 * echo connections that allocates nothing per call. Frames are pre-built
 * (`batches[k]` is k frames back to back), the echo server answers in order,
 * so a response is counted by its bytes and matched with the oldest send time
 * in a ring; each response immediately re-issues its caller's next frame,
 * and the frames re-issued during one read go out in one write. Only the
 * reads and writes themselves (one promise each) and one clock read per read
 * burst allocate. Its GC tail is therefore the machine's, not the client's,
 * which is what p99.9 ratios need to compare against.
 *
 * @example
 * ```ts ignore
 * const loop = await EchoLoop.connect([{ hostname: "127.0.0.1", port }], 19, 64);
 * const run = await loop.run(64, 100_000, 5_000);
 * console.log(run.calls / (run.elapsedMs / 1000), "calls/s");
 * await loop.close();
 * ```
 */
export class EchoLoop {
  #lanes: EchoLane[] = [];
  #frameBytes: number;
  #batches: Uint8Array[];
  #read: Uint8Array;
  // The current run.
  #latency = new LatencyHistogram();
  #calls = 0;
  #started = 0;
  #maxCalls = 0;
  #deadline = 0;
  #errors = 0;
  #firstError: string | undefined;
  #done: (() => void) | undefined;
  #closing = false;

  private constructor(frameBytes: number, maxInFlight: number) {
    this.#frameBytes = frameBytes;
    const frame = makeFrame(frameBytes);
    const all = new Uint8Array(frame.length * maxInFlight);
    for (let i = 0; i < maxInFlight; i++) all.set(frame, i * frame.length);
    this.#batches = Array.from(
      { length: maxInFlight + 1 },
      (_, k) => all.subarray(0, k * frame.length),
    );
    this.#read = new Uint8Array(Math.max(64 * 1024, 2 * frame.length));
  }

  /**
   * Connects one lane per endpoint (Nagle off).
   *
   * @param endpoints Echo servers.
   * @param frameBytes Frame size, header included.
   * @param maxInFlight The most callers a run will use.
   * @returns The loop, idle until {@linkcode EchoLoop.run}.
   */
  static async connect(
    endpoints: { hostname: string; port: number }[],
    frameBytes: number,
    maxInFlight: number,
  ): Promise<EchoLoop> {
    const loop = new EchoLoop(
      Math.max(HEADER_BYTES, frameBytes),
      maxInFlight,
    );
    for (const { hostname, port } of endpoints) {
      const conn = await Deno.connect({ hostname, port });
      conn.setNoDelay(true);
      const lane: EchoLane = {
        conn,
        sentAt: new Float64Array(maxInFlight),
        head: 0,
        inFlight: 0,
        queued: 0,
        writing: false,
        partial: 0,
        reader: Promise.resolve(),
      };
      lane.reader = loop.#readLoop(lane);
      loop.#lanes.push(lane);
    }
    return loop;
  }

  /**
   * Runs `inFlight` closed-loop callers (spread over the lanes) until
   * `maxCalls` calls were started or `maxMs` elapsed, and every call
   * started has been answered.
   *
   * @param inFlight Concurrent callers, at most `maxInFlight`.
   * @param maxCalls Bound on calls.
   * @param maxMs Bound on time.
   * @returns Latencies, calls, errors and the wall time.
   */
  run(inFlight: number, maxCalls: number, maxMs: number): Promise<LoopRun> {
    this.#latency = new LatencyHistogram();
    this.#calls = 0;
    this.#started = 0;
    this.#errors = 0;
    this.#firstError = undefined;
    this.#maxCalls = maxCalls;
    const begin = performance.now();
    this.#deadline = begin + maxMs;
    const finished = new Promise<void>((resolve) => this.#done = resolve);
    const lanes = this.#lanes.length;
    for (let i = 0; i < inFlight && this.#started < maxCalls; i++) {
      const lane = this.#lanes[i % lanes] as EchoLane;
      this.#issue(lane, begin);
    }
    for (const lane of this.#lanes) this.#flush(lane);
    this.#maybeDone();
    return finished.then(() => {
      const run: LoopRun = {
        latency: this.#latency,
        calls: this.#calls,
        errors: this.#errors,
        elapsedMs: performance.now() - begin,
      };
      if (this.#firstError !== undefined) run.firstError = this.#firstError;
      return run;
    });
  }

  #issue(lane: EchoLane, now: number): void {
    this.#started++;
    const slot = (lane.head + lane.inFlight) % lane.sentAt.length;
    lane.sentAt[slot] = now;
    lane.inFlight++;
    lane.queued++;
  }

  async #flush(lane: EchoLane): Promise<void> {
    if (lane.writing || lane.queued === 0) return;
    lane.writing = true;
    try {
      while (lane.queued > 0) {
        const batch = this.#batches[lane.queued] as Uint8Array;
        lane.queued = 0;
        await writeAll(lane.conn, batch);
      }
    } catch (error) {
      this.#fail(lane, error);
    } finally {
      lane.writing = false;
    }
  }

  async #readLoop(lane: EchoLane): Promise<void> {
    const frameBytes = this.#frameBytes;
    try {
      while (true) {
        const n = await lane.conn.read(this.#read);
        if (n === null) break;
        let complete = lane.partial + n;
        if (complete < frameBytes) {
          lane.partial = complete;
          continue;
        }
        const now = performance.now();
        const capacity = lane.sentAt.length;
        while (complete >= frameBytes) {
          complete -= frameBytes;
          this.#latency.record(now - (lane.sentAt[lane.head] ?? 0));
          this.#calls++;
          lane.head = (lane.head + 1) % capacity;
          lane.inFlight--;
          if (this.#started < this.#maxCalls && now < this.#deadline) {
            this.#issue(lane, now);
          }
        }
        lane.partial = complete;
        this.#flush(lane);
        this.#maybeDone();
      }
      this.#fail(lane, new Error("Echo connection closed by the server"));
    } catch (error) {
      this.#fail(lane, error);
    }
  }

  #fail(lane: EchoLane, error: unknown): void {
    if (lane.inFlight > 0 && !this.#closing) {
      this.#errors += lane.inFlight;
      this.#firstError ??= String(error);
    }
    lane.inFlight = 0;
    lane.queued = 0;
    this.#maybeDone();
  }

  #maybeDone(): void {
    if (this.#done === undefined) return;
    for (const lane of this.#lanes) if (lane.inFlight > 0) return;
    const done = this.#done;
    this.#done = undefined;
    done();
  }

  /** Closes every lane and waits for the readers to stop. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const lane of this.#lanes) {
      try {
        lane.conn.close();
      } catch {
        // already closed
      }
    }
    await Promise.all(this.#lanes.map((lane) => lane.reader));
  }
}
