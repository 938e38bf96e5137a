/**
 * Deno's `Conn.read()` and the old generation, on its own: a loopback echo
 * in one process, read by a fresh connection, by one that first waited
 * idle, with a read pending, through young collections, and (with
 * `--v8-flags=--expose-gc`) by one whose process ran a full collection
 * first. Prints the bytes allocated directly in the old generation per round
 * trip for each (see `gcFigures` in gc_stats.ts): two reads, the client's
 * and the echo's, whose accepted connection is in the same state. The same
 * round trips are then read through `conn.readable` with a BYOB reader,
 * after a full collection too. No zkrpc code runs; this is the evidence for
 * docs/performance.md's fourth and fifth rounds and for a report to Deno.
 *
 * Usage: `deno run --allow-net=127.0.0.1 [--v8-flags=--expose-gc]
 * bench/conn_read_old_space.ts [reads]` (default 200,000 reads per
 * connection).
 *
 * @module
 */
import { writeAll } from "./frame_echo.ts";
import {
  fullCollection,
  idleThroughYoungCollections,
  watchGc,
} from "./gc_stats.ts";

const FRAME = 64;

/** How a connection has lived before the measured round trips. */
export type ConnectionState = "fresh" | "idle" | "full collection";

/** Reads with `Conn.read()`, or with a BYOB reader of `conn.readable`. */
export type ReadWith = "read" | "byob";

/** Reads into a buffer: the bytes read, or `null` at the end. */
type ReadInto = (into: Uint8Array) => Promise<number | null>;

function reader(conn: Deno.Conn, how: ReadWith): ReadInto {
  if (how === "read") return (into) => conn.read(into);
  const byob = conn.readable.getReader({ mode: "byob" });
  // A BYOB read moves the buffer it is given: it reads into one of its own,
  // moved on every read, and copies out.
  let buffer = new ArrayBuffer(FRAME);
  return async (into) => {
    const { value, done } = await byob.read(
      new Uint8Array(buffer, 0, into.length),
    );
    if (done || value === undefined) return null;
    buffer = value.buffer as ArrayBuffer;
    into.set(value);
    return value.length;
  };
}

async function echo(conn: Deno.Conn, how: ReadWith): Promise<void> {
  const buffer = new Uint8Array(FRAME);
  const read = reader(conn, how);
  try {
    for (;;) {
      const n = await read(buffer);
      if (n === null) return;
      await writeAll(conn, buffer.subarray(0, n));
    }
  } catch {
    // closed
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the end of its byte stream
    }
  }
}

/**
 * Writes a frame and reads it back, `reads` times, on a new connection to
 * an echo that reads the same way; first brings the connection (and the
 * echo's end of it) into `state`.
 *
 * @param port The echo's port.
 * @param reads Round trips.
 * @param state Fresh; idle through young collections first; or after a
 *   full collection of the process (needs `--expose-gc`).
 * @param how How both ends read.
 * @returns Old-space bytes allocated per round trip, or undefined without
 *   `GCProfiler`.
 */
export async function oldBytesPerRead(
  port: number,
  reads: number,
  state: ConnectionState,
  how: ReadWith = "read",
): Promise<number | undefined> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const frame = new Uint8Array(FRAME).fill(7);
  const into = new Uint8Array(FRAME);
  const read = reader(conn, how);
  // The first read is pending while the connection idles (if it does).
  let pending = read(into);
  try {
    if (state === "idle") await idleThroughYoungCollections(3);
    if (state === "full collection") {
      if (fullCollection === undefined) {
        throw new Error("Run with --v8-flags=--expose-gc");
      }
      // A round trip first, so that the echo's end exists and is in use.
      await writeAll(conn, frame);
      if (await pending === null) throw new Error("echo closed");
      pending = read(into);
      fullCollection();
    }
    const watch = watchGc();
    let done = 0;
    let got = 0;
    await writeAll(conn, frame);
    while (done < reads) {
      const n = await pending;
      if (n === null) throw new Error("echo closed");
      got += n;
      done++;
      if (got >= FRAME) {
        got -= FRAME;
        await writeAll(conn, frame);
      }
      pending = read(into);
    }
    const figures = watch.stop();
    return figures === undefined
      ? undefined
      : figures.oldAllocatedBytes / reads;
  } finally {
    // The last read is still pending: close, and let it fail.
    conn.close();
    await pending.catch(() => null);
  }
}

if (import.meta.main) {
  const reads = Number(Deno.args[0] ?? 200_000);
  const listeners = {
    read: Deno.listen({ hostname: "127.0.0.1", port: 0 }),
    byob: Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  };
  const served = (["read", "byob"] as const).map(async (how) => {
    for await (const conn of listeners[how]) echo(conn, how);
  });
  const cases: [ConnectionState, ReadWith][] = [
    ["fresh", "read"],
    ["idle", "read"],
    ["fresh", "read"],
    ["idle", "read"],
  ];
  if (fullCollection !== undefined) {
    cases.push(["full collection", "read"], ["full collection", "byob"]);
  } else console.log("(full collections need --v8-flags=--expose-gc)");
  try {
    for (const [state, how] of cases) {
      const bytes = await oldBytesPerRead(
        listeners[how].addr.port,
        reads,
        state,
        how,
      );
      console.log(
        `${how === "read" ? "Conn.read()" : "BYOB reader"}, ${state}: ${
          bytes === undefined ? "no GCProfiler" : bytes.toFixed(1)
        } B allocated in the old generation per round trip (${reads} round trips, a read at each end)`,
      );
    }
  } finally {
    listeners.read.close();
    listeners.byob.close();
    await Promise.all(served.map((s) => s.catch(() => {})));
  }
}
