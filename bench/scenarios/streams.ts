/**
 * Streams: items/s and bytes/s of server streams (`items(n, bytes)`, an
 * async generator) of 48-byte and 4 KiB items, over 1 and 16 concurrent
 * streams on one `Connection`, against the raw TCP echo (the ceiling
 * server) of frames of the same size in the same run, with as many frames
 * in flight as the streams' windows allow. Then the memory of both sides
 * while 16 consumers of 4 KiB items stall.
 *
 * The client runs in the bench process for both (the raw client is a
 * sliding window of frames on one socket).
 *
 * @module
 */
import { type BenchContext, requireModule } from "../context.ts";
import {
  type ServerHandle,
  serverStats,
  startServer,
  stopServers,
} from "../harness.ts";
import { HEADER_BYTES, makeFrame } from "../frame_echo.ts";
import { medianFigures, ratios } from "./_figures.ts";
import { round } from "../stats.ts";
import type { BenchEndpoint } from "../drivers/types.ts";
import { DEFAULT_STREAM_WINDOW } from "../../src/protocol/stream_frames.ts";

/** Item sizes measured, bytes of the item's payload. */
export const STREAM_ITEM_SIZES: number[] = [48, 4096];

/** Concurrent streams measured. */
export const STREAM_COUNTS: number[] = [1, 16];

/** The stream window (items): as many raw frames are kept in flight. */
const WINDOW = DEFAULT_STREAM_WINDOW;

type Figures = Record<string, number | null>;

function figures(items: number, bytes: number, ms: number): Figures {
  const seconds = ms / 1000;
  return {
    items_per_s: round(items / seconds),
    mib_per_s: round(items * bytes / seconds / 1048576),
  };
}

/**
 * The raw echo: `inFlight` frames of `frameBytes` outstanding on one
 * socket, each echoed frame replaced by a new one, for `ms`.
 */
async function rawEcho(
  endpoint: BenchEndpoint,
  frameBytes: number,
  inFlight: number,
  ms: number,
): Promise<{ items: number; ms: number }> {
  const conn = await Deno.connect(endpoint);
  conn.setNoDelay(true);
  const frame = makeFrame(frameBytes);
  const batch = new Uint8Array(frame.length * inFlight);
  for (let i = 0; i < inFlight; i++) batch.set(frame, i * frame.length);
  let sent = 0;
  let receivedBytes = 0;
  let wake: (() => void) | undefined;
  let running = true;
  const started = performance.now();
  const writer = (async () => {
    while (running) {
      const received = Math.floor(receivedBytes / frameBytes);
      const room = inFlight - (sent - received);
      if (room > 0) {
        const bytes = batch.subarray(0, room * frame.length);
        let off = 0;
        while (off < bytes.length) off += await conn.write(bytes.subarray(off));
        sent += room;
        continue;
      }
      await new Promise<void>((resolve) => wake = resolve);
    }
  })();
  const buf = new Uint8Array(256 * 1024);
  while (performance.now() - started < ms) {
    const n = await conn.read(buf);
    if (n === null) break;
    receivedBytes += n;
    const w = wake;
    wake = undefined;
    w?.();
  }
  const elapsed = performance.now() - started;
  running = false;
  wake?.();
  conn.close();
  await writer.catch(() => {});
  return { items: Math.floor(receivedBytes / frameBytes), ms: elapsed };
}

/** `streams` concurrent streams of `bytes`-byte items, read for `ms`. */
async function zkrpcStreams(
  endpoint: BenchEndpoint,
  bytes: number,
  streams: number,
  ms: number,
): Promise<{ items: number; ms: number }> {
  const { Connection } = await import("../../src/client/connection.ts");
  await using conn = await Connection.connect(endpoint);
  let items = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async () => {
      const reader = conn.stream("items", [1e12, bytes]).getReader();
      while (performance.now() - started < ms) {
        const step = await reader.read();
        if (step.done) break;
        items++;
      }
      await reader.cancel();
    }),
  );
  return { items, ms: performance.now() - started };
}

/** The memory of both sides while 16 consumers of 4 KiB items stall. */
async function stalled(rpc: ServerHandle): Promise<Figures> {
  const { Connection } = await import("../../src/client/connection.ts");
  const before = (await serverStats(rpc)).rss;
  const clientBefore = Deno.memoryUsage().rss;
  await using conn = await Connection.connect(rpc.endpoint);
  const readers = Array.from(
    { length: 16 },
    () => conn.stream("items", [1e12, 4096]).getReader(),
  );
  for (const reader of readers) await reader.read();
  // The consumers stall: what can pile up is bounded by the windows.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const after = (await serverStats(rpc)).rss;
  const clientAfter = Deno.memoryUsage().rss;
  await Promise.all(readers.map((reader) => reader.cancel()));
  return {
    server_rss_growth_mib: round((after - before) / 1048576),
    client_rss_growth_mib: round((clientAfter - clientBefore) / 1048576),
    bound_per_side_mib: round(16 * WINDOW * (4096 + HEADER_BYTES) / 1048576),
  };
}

/**
 * Runs the streams scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  await requireModule("src/client/connection.ts", "Connection");
  const servers: ServerHandle[] = [];
  try {
    const ceiling = await startServer("ceiling");
    servers.push(ceiling);
    const rpc = await startServer("rpc");
    servers.push(rpc);
    const ms = context.caseMs;
    for (const bytes of STREAM_ITEM_SIZES) {
      for (const streams of STREAM_COUNTS) {
        const raw: Figures[] = [];
        const rpcRuns: Figures[] = [];
        // Alternating, so that a noisy neighbour hits both alike.
        for (let round = 0; round < context.rounds; round++) {
          const r = await rawEcho(
            ceiling.endpoint,
            bytes + HEADER_BYTES,
            WINDOW * streams,
            ms,
          );
          raw.push(figures(r.items, bytes, r.ms));
          const z = await zkrpcStreams(rpc.endpoint, bytes, streams, ms);
          rpcRuns.push(figures(z.items, bytes, z.ms));
        }
        const c = medianFigures(raw);
        const z = medianFigures(rpcRuns);
        const label = `${
          bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`
        }, ${streams} ${streams === 1 ? "stream" : "streams"}`;
        context.report.add({
          scenario: "streams",
          label: `raw echo ${label}`,
          figures: c,
          vsCeiling: {},
        });
        context.report.add({
          scenario: "streams",
          label: `zkrpc stream ${label}`,
          figures: z,
          vsCeiling: ratios(z, c),
        });
      }
    }
    context.report.add({
      scenario: "streams",
      label: "16 stalled consumers of 4 KiB items",
      figures: await stalled(rpc),
      vsCeiling: {},
    });
  } finally {
    await stopServers(servers);
  }
}
