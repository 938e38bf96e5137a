/**
 * The targets evaluated on the rows of one run.
 *
 * @module
 */
import type { Report, ResultRow, TargetCheck } from "./report.ts";
import { AGED_LABEL } from "./scenarios/throughput.ts";

function check(
  target: string,
  measured: number | null | undefined,
  limit: number,
  atLeast: boolean,
): TargetCheck {
  if (measured == null || !Number.isFinite(measured)) {
    return { target, measured: null, limit, status: "not measured" };
  }
  const met = atLeast ? measured >= limit : measured <= limit;
  return { target, measured, limit, status: met ? "met" : "missed" };
}

/**
 * Old-generation collections per second allowed: twice the ceiling's, where
 * a ceiling without any counts as one per five seconds (one per full case),
 * so that a single collection in a case is not "infinitely" worse.
 *
 * @param ceiling The ceiling's old-generation GCs per second.
 * @returns The limit.
 */
function oldGcLimit(ceiling: number | null | undefined): number {
  return 2 * Math.max(ceiling ?? 0, 0.2);
}

/**
 * The old-generation target of one case: its client's collections per
 * second against twice its ceiling's ({@linkcode oldGcLimit}).
 *
 * @param name The case, as the target's first words.
 * @param subject zkrpc's row.
 * @param ceiling The ceiling's row of the same case.
 * @returns The check.
 */
function oldGcCheck(
  name: string,
  subject: ResultRow | undefined,
  ceiling: ResultRow | undefined,
): TargetCheck {
  return check(
    `${name} client old-generation GCs/s (limit: 2x the ceiling's)`,
    subject?.figures.client_old_gc_per_s,
    oldGcLimit(ceiling?.figures.client_old_gc_per_s),
    false,
  );
}

/**
 * Evaluates every target against the report.
 *
 * @param report The run's report.
 * @returns One check per target.
 */
export function checkTargets(report: Report): TargetCheck[] {
  const core64 = report.find("throughput", "zkrpc core 64 in flight");
  const core1 = report.find("throughput", "zkrpc core 1 in flight");
  const chan64 = report.find("full stack", "channel 64 in flight");
  const chan1 = report.find("full stack", "channel 1 in flight");
  const discovery = report.find("discovery", "register -> first call");
  const failover = report.find("failover", "SIGKILL 1 of 3");
  const failoverDefault = report.find(
    "failover",
    "SIGKILL 1 of 3, not idempotent",
  );
  const membership = report.find(
    "membership",
    "100 servers, 20 channels, churn",
  );
  const hand64 = report.find(
    "throughput",
    "hand-written JSON RPC 64 in flight",
  );
  const echo4k = report.find("payloads", "zkrpc core 4 KiB");
  const echo256k = report.find("payloads", "zkrpc core 256 KiB");
  const core64Calls = core64?.vsCeiling.calls_per_s;
  const hand64Calls = hand64?.vsCeiling.calls_per_s;
  const ceiling64 = report.find("throughput", "ceiling 64 in flight");
  const chanCeiling64 = report.find("full stack", "ceiling 64 in flight");
  // The same with every client's connections aged first (AGED_LABEL).
  const core64Aged = report.find("throughput", `zkrpc core ${AGED_LABEL}`);
  const ceiling64Aged = report.find("throughput", `ceiling ${AGED_LABEL}`);
  const chan64Aged = report.find("full stack", `channel ${AGED_LABEL}`);
  const chanCeiling64Aged = report.find("full stack", `ceiling ${AGED_LABEL}`);
  // Issue 25's goals, then the earlier ones that still hold.
  return [
    check(
      "channel: 64 in flight calls/s vs ceiling (ratio)",
      chan64?.vsCeiling.calls_per_s,
      0.7,
      true,
    ),
    check(
      "core: 64 in flight calls/s vs ceiling (ratio)",
      core64Calls,
      0.8,
      true,
    ),
    check(
      "core: 64 in flight p99.9 vs ceiling (ratio)",
      core64?.vsCeiling.p999_ms,
      3,
      false,
    ),
    check(
      "channel: 64 in flight p99.9 vs ceiling (ratio)",
      chan64?.vsCeiling.p999_ms,
      3,
      false,
    ),
    oldGcCheck("core: 64 in flight", core64, ceiling64),
    oldGcCheck("channel: 64 in flight", chan64, chanCeiling64),
    oldGcCheck(
      "core: 64 in flight, aged connections on both sides,",
      core64Aged,
      ceiling64Aged,
    ),
    oldGcCheck(
      "channel: 64 in flight, aged connections on both sides,",
      chan64Aged,
      chanCeiling64Aged,
    ),
    check(
      "payloads: echo 4 KiB calls/s vs ceiling (ratio)",
      echo4k?.vsCeiling.calls_per_s,
      0.9,
      true,
    ),
    check(
      "payloads: echo 256 KiB calls/s vs ceiling (ratio)",
      echo256k?.vsCeiling.calls_per_s,
      0.7,
      true,
    ),
    check(
      "core: 1 in flight p50 vs ceiling (ratio)",
      core1?.vsCeiling.p50_ms,
      1.0,
      false,
    ),
    check(
      "channel: 1 in flight p50 vs ceiling (ratio)",
      chan1?.vsCeiling.p50_ms,
      1.0,
      false,
    ),
    check(
      "core vs hand-written JSON RPC, 64 in flight (calls/s ratio)",
      core64Calls == null || hand64Calls == null || hand64Calls === 0
        ? null
        : core64Calls / hand64Calls,
      2,
      true,
    ),
    check(
      "core: 64 in flight server CPU/call vs ceiling (ratio)",
      core64?.vsCeiling.server_cpu_us,
      2.5,
      false,
    ),
    check(
      "channel: 64 in flight server CPU/call vs ceiling (ratio)",
      chan64?.vsCeiling.server_cpu_us,
      2.5,
      false,
    ),
    check(
      "discovery: register -> first call median (ms)",
      discovery?.figures.median_ms,
      50,
      false,
    ),
    check(
      "failover: failed calls (divide idempotent)",
      failover?.figures.failed_calls,
      0,
      false,
    ),
    check(
      "failover: longest gap (ms) (divide idempotent)",
      failover?.figures.longest_gap_ms,
      100,
      false,
    ),
    check(
      "failover: failed calls (channel default, not idempotent)",
      failoverDefault?.figures.failed_calls,
      0,
      false,
    ),
    check(
      "failover: longest gap (ms) (channel default, not idempotent)",
      failoverDefault?.figures.longest_gap_ms,
      100,
      false,
    ),
    check(
      "membership: data reads per new member per channel",
      membership?.figures.reads_per_join_per_channel,
      1,
      false,
    ),
  ];
}
