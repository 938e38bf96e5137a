/**
 * Bytes allocated per call: `deno run --allow-net=127.0.0.1 --allow-run
 * --allow-read --allow-env --allow-sys --v8-flags=--expose-gc,--min-semi-space-size=128,--max-semi-space-size=128
 * bench/alloc_per_call.ts [--json]`.
 *
 * With a young generation large enough that no collection runs during the
 * measured calls, the growth of `heapUsed` between two forced collections'
 * neighbourhoods is what the calls allocated (live or garbage). Measured
 * for `divide(10, 2)` with 64 calls in flight over one connection, per
 * codec: both sides in this process ("client+server"), and the client alone
 * against a server in a child process (`bench/rpc_server.ts`); the server's
 * share is the difference.
 *
 * @module
 */
import { Connection } from "../src/client/connection.ts";
import type { Codec } from "../src/protocol/codec.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { msgpackCodec } from "../src/protocol/msgpack_codec.ts";
import { serve } from "../src/server/server.ts";
import { DistributedChannel } from "../src/channel/channel.ts";
import { StaticMembership } from "../src/discovery/static.ts";
import { fullCollection } from "./gc_stats.ts";

/** One measurement. */
export interface AllocRow {
  /** Codec of the connection. */
  codec: string;
  /** What ran in this process. */
  side: "client+server" | "client";
  /** What the calls went through. */
  via: "Connection" | "DistributedChannel";
  /** Bytes allocated per call. */
  bytesPerCall: number;
}

const HOST = "127.0.0.1";
const CALLS = 4_096;
const IN_FLIGHT = 64;

/** What the measured calls go through. */
interface Caller {
  call(method: string, params: unknown[]): Promise<unknown>;
}

async function run(conn: Caller, calls: number): Promise<void> {
  const batch = new Array<Promise<unknown>>(IN_FLIGHT);
  for (let done = 0; done < calls; done += IN_FLIGHT) {
    for (let i = 0; i < IN_FLIGHT; i++) batch[i] = conn.call("divide", [10, 2]);
    await Promise.all(batch);
  }
}

async function measure(conn: Caller): Promise<number> {
  await run(conn, 5_000); // warm up: compiled code, grown buffers
  // The median of 5 rounds: one disturbed by a collection reads low.
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    fullCollection!();
    const before = Deno.memoryUsage().heapUsed;
    await run(conn, CALLS);
    rounds.push((Deno.memoryUsage().heapUsed - before) / CALLS);
  }
  rounds.sort((a, b) => a - b);
  return Math.round(rounds[2]!);
}

async function childServer(): Promise<
  { port: number; close: () => Promise<void> }
> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      new URL("./rpc_server.ts", import.meta.url).pathname,
      "{}",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("Cannot start the bench server: it exited");
    text += value;
  }
  const { port } = JSON.parse(text.slice(0, text.indexOf("\n")));
  return {
    port,
    close: async () => {
      await child.stdin.close();
      await reader.cancel();
      await child.status;
    },
  };
}

/**
 * Measures bytes per call for each codec and side.
 *
 * @returns The rows.
 *
 * @example Measure (needs --v8-flags=--expose-gc)
 * ```ts ignore
 * import { allocationPerCall } from "./alloc_per_call.ts";
 * console.table(await allocationPerCall());
 * ```
 */
export async function allocationPerCall(): Promise<AllocRow[]> {
  if (fullCollection === undefined) {
    throw new Error(
      "Cannot measure allocation: run with --v8-flags=--expose-gc,--min-semi-space-size=128,--max-semi-space-size=128",
    );
  }
  const rows: AllocRow[] = [];
  for (const codec of [msgpackCodec, jsonCodec] as Codec[]) {
    {
      await using server = serve({ divide: (a: number, b: number) => a / b }, {
        hostname: HOST,
        onError: () => {},
      });
      await using conn = await Connection.connect(
        { hostname: HOST, port: server.addr.port },
        { codec },
      );
      rows.push({
        codec: codec.name,
        side: "client+server",
        via: "Connection",
        bytesPerCall: await measure(conn),
      });
    }
    const child = await childServer();
    try {
      await using conn = await Connection.connect(
        { hostname: HOST, port: child.port },
        { codec },
      );
      rows.push({
        codec: codec.name,
        side: "client",
        via: "Connection",
        bytesPerCall: await measure(conn),
      });
      // The channel's share: balancer, attempt bookkeeping, its promise.
      await using channel = new DistributedChannel({
        service: "bench",
        membership: new StaticMembership([{ host: HOST, port: child.port }]),
        connection: { codec },
      });
      rows.push({
        codec: codec.name,
        side: "client",
        via: "DistributedChannel",
        bytesPerCall: await measure(channel),
      });
    } finally {
      await child.close();
    }
  }
  return rows;
}

if (import.meta.main) {
  const rows = await allocationPerCall();
  if (Deno.args.includes("--json")) console.log(JSON.stringify(rows));
  else console.table(rows);
}
