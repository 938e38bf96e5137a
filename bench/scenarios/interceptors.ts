/**
 * The cost of one no-op interceptor per call, client side and server side,
 * at 1 and 64 calls in flight on one connection, against the same process
 * without interceptors (measured alternately, in process: `serve` +
 * `Connection` on loopback). The "no interceptors" rows are the path every
 * call takes when the feature is unused (and telemetry is off).
 *
 * @module
 */
import type { BenchContext } from "../context.ts";
import { median, round } from "../stats.ts";
import { serve } from "../../src/server/server.ts";
import { Connection } from "../../src/client/connection.ts";
import type {
  ClientInterceptor,
  ServerInterceptor,
} from "../../src/_interceptors.ts";

const HOST = "127.0.0.1";
const noopClient: ClientInterceptor = (_call, next) => next();
const noopServer: ServerInterceptor = (_call, next) => next();

type Variant = "none" | "client" | "server";

/** Calls per second of one variant over `ms`. */
async function measure(
  variant: Variant,
  inFlight: number,
  ms: number,
): Promise<number> {
  await using server = serve({ divide: (a: number, b: number) => a / b }, {
    hostname: HOST,
    ...(variant === "server" ? { interceptors: [noopServer] } : {}),
  });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    variant === "client" ? { interceptors: [noopClient] } : {},
  );
  for (let i = 0; i < 2000; i++) await conn.call("divide", [10, 2]);
  let calls = 0;
  const end = performance.now() + ms;
  const loop = async () => {
    while (performance.now() < end) {
      await conn.call("divide", [10, 2]);
      calls++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, loop));
  return calls / ((performance.now() - started) / 1000);
}

/**
 * Runs the interceptor scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  const rounds = context.quick ? 2 : Math.max(3, context.rounds);
  const ms = context.quick ? 500 : Math.min(context.caseMs, 2000);
  for (const inFlight of [1, 64]) {
    const runs: Record<Variant, number[]> = {
      none: [],
      client: [],
      server: [],
    };
    for (let r = 0; r < rounds; r++) {
      for (const variant of ["none", "client", "server"] as const) {
        runs[variant].push(await measure(variant, inFlight, ms));
      }
    }
    const base = median(runs.none);
    for (const variant of ["none", "client", "server"] as const) {
      const cps = median(runs[variant]);
      context.report.add({
        scenario: "interceptors",
        label: variant === "none"
          ? `no interceptors ${inFlight} in flight`
          : `one no-op ${variant} interceptor ${inFlight} in flight`,
        figures: {
          calls_per_s: round(cps),
          // Extra wall time per call against no interceptors.
          cost_us: variant === "none" ? 0 : round((1 / cps - 1 / base) * 1e6),
          rounds,
        },
        vsCeiling: { calls_per_s: round(cps / base) },
      });
    }
  }
}
