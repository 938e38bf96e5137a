/**
 * A zkrpc server process for the benches: `divide` (optionally delayed) and
 * `echo`, optionally registered in ZooKeeper.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-env --allow-read --allow-sys
 * bench/rpc_server.ts '<RpcServerOptions JSON>'`. Prints
 * `{"port", "pid", "registeredAt"?}` once listening (and registered), then
 * answers `{"cmd":"stats"}` and `{"cmd":"close"}` lines on stdin; exits when
 * stdin closes. Times are epoch milliseconds with sub-ms precision.
 *
 * @module
 */
import { serveControl, writeJsonLine } from "./child.ts";
import { usageSnapshot } from "./usage.ts";
import type { BenchRegistrar } from "./rpc_registration.ts";
import { serve } from "../src/server/server.ts";

/** Options of the bench server process. */
export interface RpcServerOptions {
  /** Delay of each `divide`, ms (slow-server scenario). @default 0 */
  delayMs?: number;
  /** ZooKeeper connection string: register when set. */
  zookeeper?: string;
  /** Service name to register under. @default "bench" */
  service?: string;
}

/**
 * Wall-clock time in epoch ms with sub-millisecond precision, comparable
 * across processes on one machine.
 *
 * @returns Epoch milliseconds.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Counters of a bench handler object. */
export interface HandlerStats {
  /** Calls served. */
  calls: number;
  /** Time of the first call (epoch ms). */
  firstCallAt: number | null;
  /**
   * Time of the latest call (epoch ms), kept from the `close` command on;
   * before it, the first call's time.
   */
  lastCallAt: number | null;
}

/** The methods the bench calls (own properties, as `serve()` exposes). */
export interface BenchHandlers {
  /** `a / b`, after the configured delay. */
  divide(a: number, b: number): number | Promise<number>;
  /** `a / b` from an `async` method: the handler returns a promise. */
  divideAsync(a: number, b: number): Promise<number>;
  /** Returns its argument. */
  echo(payload: unknown): unknown;
  /** Streams `n` items of `bytes` bytes (the streams scenario). */
  items(n: number, bytes: number): AsyncGenerator<Uint8Array>;
}

/**
 * Creates the handler object and its counters.
 *
 * @param delayMs Delay of each divide, ms.
 * @returns The handlers (to serve), the stats they update, and the switch
 * that makes every call read the clock (for `lastCallAt`).
 */
export function benchHandlers(
  delayMs = 0,
): {
  handlers: BenchHandlers;
  stats: HandlerStats;
  timing: { timeCalls: boolean };
} {
  const stats: HandlerStats = { calls: 0, firstCallAt: null, lastCallAt: null };
  // The clock is read for the first call and, once `timeCalls` is set (the
  // server is closing), for every call: the discovery scenario needs no
  // more, and a clock read per call was a tenth of the server's time.
  const count = (): void => {
    stats.calls++;
    if (stats.firstCallAt === null || timing.timeCalls) {
      const t = now();
      stats.firstCallAt ??= t;
      stats.lastCallAt = t;
    }
  };
  const timing = { timeCalls: false };
  const handlers: BenchHandlers = {
    divide(a: number, b: number): number | Promise<number> {
      count();
      if (delayMs <= 0) return a / b;
      return new Promise((resolve) =>
        setTimeout(() => resolve(a / b), delayMs)
      );
    },
    // deno-lint-ignore require-await
    async divideAsync(a: number, b: number): Promise<number> {
      count();
      return a / b;
    },
    echo(payload: unknown): unknown {
      count();
      return payload;
    },
    async *items(n: number, bytes: number): AsyncGenerator<Uint8Array> {
      count();
      // One buffer: each item is encoded (copied) when it is sent.
      const item = new Uint8Array(bytes).fill(97);
      for (let i = 0; i < n; i++) yield item;
    },
  };
  return { handlers, stats, timing };
}

if (import.meta.main) {
  const options = JSON.parse(Deno.args[0] ?? "{}") as RpcServerOptions;
  const { handlers, stats, timing } = benchHandlers(options.delayMs ?? 0);
  // Loaded only when registering, so that the core benches need no registry.
  const registrar: BenchRegistrar | undefined = options.zookeeper === undefined
    ? undefined
    : (await import("./rpc_registration.ts"))
      .benchRegistrar(options.zookeeper, options.service ?? "bench");
  const server = serve(
    handlers,
    registrar === undefined
      ? { hostname: "127.0.0.1", port: 0 }
      : { hostname: "127.0.0.1", port: 0, registrar },
  );
  await server.ready;
  const port = server.addr.port;
  writeJsonLine({
    port,
    pid: Deno.pid,
    registeredAt: registrar?.registeredAt ?? null,
  });
  let closed = false;
  const times = () => ({
    calls: stats.calls,
    firstCallAt: stats.firstCallAt,
    lastCallAt: stats.lastCallAt,
  });
  await serveControl(async (command) => {
    if (command.cmd === "stats") return { ...usageSnapshot(), ...times() };
    if (command.cmd === "close") {
      closed = true;
      const closeStartedAt = now();
      // Calls before this one end at or before it (the figure is the time
      // from closeStartedAt to the last call, at least 0); later ones stamp
      // their own time.
      if (stats.calls > 0) stats.lastCallAt = closeStartedAt;
      timing.timeCalls = true;
      await server.close();
      return { closeStartedAt, closedAt: now(), ...times() };
    }
    return { error: `Unknown command: ${String(command.cmd)}` };
  });
  if (!closed) await server.close();
  Deno.exit(0);
}
