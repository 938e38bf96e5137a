/**
 * Deno's `Conn.read()` and the old generation, on its own: a loopback echo
 * in one process, read by a fresh connection and by one that first waited
 * idle, with a read pending, through young collections. Prints the bytes
 * allocated directly in the old generation per round trip for each (see
 * `gcFigures` in gc_stats.ts): two reads, the client's and the echo's, whose
 * accepted connection waited idle too. No zkrpc code runs; this is the
 * evidence for docs/performance.md's fourth round and for a report to Deno.
 *
 * Usage: `deno run --allow-net=127.0.0.1 bench/conn_read_old_space.ts
 * [reads]` (default 200,000 reads per connection).
 *
 * @module
 */
import { writeAll } from "./frame_echo.ts";
import { idleThroughYoungCollections, watchGc } from "./gc_stats.ts";

const FRAME = 64;

async function echo(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(FRAME);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      await writeAll(conn, buffer.subarray(0, n));
    }
  } catch {
    // closed
  } finally {
    conn.close();
  }
}

/**
 * Writes a frame and reads it back, `reads` times, on a new connection;
 * ages the connection (and the echo's end of it) first when asked.
 *
 * @param port The echo's port.
 * @param reads Round trips.
 * @param aged Whether to idle through young collections first.
 * @returns Old-space bytes allocated per round trip, or undefined without
 *   `GCProfiler`.
 */
export async function oldBytesPerRead(
  port: number,
  reads: number,
  aged: boolean,
): Promise<number | undefined> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const frame = new Uint8Array(FRAME).fill(7);
  const into = new Uint8Array(FRAME);
  // The first read is pending while the connection idles (if it does).
  let pending = conn.read(into);
  try {
    if (aged) await idleThroughYoungCollections(3);
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
      pending = conn.read(into);
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
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) echo(conn);
  })();
  try {
    for (const aged of [false, true, false, true]) {
      const bytes = await oldBytesPerRead(listener.addr.port, reads, aged);
      console.log(
        `${aged ? "aged " : "fresh"} connection: ${
          bytes === undefined ? "no GCProfiler" : bytes.toFixed(1)
        } B allocated in the old generation per round trip (${reads} round trips, a read at each end)`,
      );
    }
  } finally {
    listener.close();
    await served.catch(() => {});
  }
}
