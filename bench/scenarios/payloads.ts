/**
 * Payload sizes: `echo(Uint8Array)` of 64 B, 4 KiB and 256 KiB through the
 * zkrpc core (one `Connection`, 16 calls in flight) against the echo
 * ceiling carrying frames of the payload's size plus the 9-byte header.
 *
 * @module
 */
import { type BenchContext, requireModule } from "../context.ts";
import { startServer, stopServers } from "../harness.ts";
import type { ServerHandle } from "../harness.ts";
import { HEADER_BYTES } from "../frame_echo.ts";
import type { LoadConfig } from "../load_client.ts";
import { ratios } from "./_figures.ts";
import { compareAlternating } from "./_compare.ts";
import { round } from "../stats.ts";

/** Payload sizes measured, bytes. */
export const PAYLOAD_SIZES: number[] = [64, 4096, 262144];

const IN_FLIGHT = 16;

function sizeLabel(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

function payloadFigures(
  figures: Record<string, number | null>,
  bytes: number,
): Record<string, number | null> {
  const callsPerSec = figures.calls_per_s ?? null;
  return {
    calls_per_s: callsPerSec,
    mib_per_s: callsPerSec === null
      ? null
      : round((callsPerSec * bytes) / 1048576),
    p50_ms: figures.p50_ms ?? null,
    p99_ms: figures.p99_ms ?? null,
    p999_ms: figures.p999_ms ?? null,
    client_cpu_us: figures.client_cpu_us ?? null,
    server_cpu_us: figures.server_cpu_us ?? null,
    server_rss_mib: figures.server_rss_mib ?? null,
    errors: figures.errors ?? null,
  };
}

/**
 * Runs the payload scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  await requireModule("src/server/server.ts", "serve");
  await requireModule("src/client/connection.ts", "Connection");
  const servers: ServerHandle[] = [];
  try {
    const ceiling = await startServer("ceiling");
    servers.push(ceiling);
    const rpc = await startServer("rpc");
    servers.push(rpc);
    for (const bytes of PAYLOAD_SIZES) {
      const config = (
        driver: LoadConfig["driver"],
      ): Omit<LoadConfig, "endpoints"> => ({
        driver,
        inFlight: IN_FLIGHT,
        maxCalls: Math.max(
          200,
          Math.floor(context.caseCalls * 256 / Math.max(64, bytes)),
        ),
        maxMs: context.caseMs,
        warmupCalls: context.quick ? 2_000 : 20_000,
        warmupMs: context.warmupMs,
        payload: { method: "echo", bytes, frameBytes: bytes + HEADER_BYTES },
      });
      const result = await compareAlternating(
        context,
        { config: config("ceiling"), servers: [ceiling] },
        { config: config("rpc"), servers: [rpc] },
      );
      const c = payloadFigures(result.ceiling, bytes);
      const z = payloadFigures(result.subject ?? {}, bytes);
      context.report.add({
        scenario: "payloads",
        label: `ceiling ${sizeLabel(bytes)}`,
        figures: c,
        vsCeiling: {},
      });
      context.report.add({
        scenario: "payloads",
        label: `zkrpc core ${sizeLabel(bytes)}`,
        figures: z,
        vsCeiling: ratios(z, c),
      });
    }
  } finally {
    await stopServers(servers);
  }
}
