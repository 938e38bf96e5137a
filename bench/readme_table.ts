/**
 * Renders the README "Performance" section (markdown) from a results JSON,
 * so that the published table is always a real run's.
 *
 * Usage: `deno run --allow-read bench/readme_table.ts bench/results/<date>.json`
 *
 * @module
 */
import type { BenchReport, ResultRow } from "./report.ts";

function fmt(value: number | null | undefined, digits = 3): string {
  if (value == null || !Number.isFinite(value)) return "-";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return String(Number(value.toPrecision(digits)));
}

function withRatio(row: ResultRow, name: string): string {
  const r = row.vsCeiling[name];
  return fmt(row.figures[name]) + (r == null ? "" : ` (${fmt(r, 2)}×)`);
}

function find(
  report: BenchReport,
  scenario: string,
  label: string,
): ResultRow | undefined {
  return report.rows.find((r) => r.scenario === scenario && r.label === label);
}

/**
 * Renders the section.
 *
 * @param report A parsed results file.
 * @param path The results file's path, for the text.
 * @returns Markdown.
 */
export function renderPerformance(report: BenchReport, path: string): string {
  const m = report.machine;
  const date = report.startedAt.slice(0, 10);
  const lines: string[] = [];
  lines.push(
    `Machine: ${m.cpus} × ${m.cpuModel ?? "CPU"}, ${m.memoryGib ?? "?"} GiB, ` +
      `${m.os}, kernel ${m.kernel ?? "?"}, Deno ${m.deno} (V8 ${m.v8}); ` +
      `pinning: ${m.pinned ?? "no"}; V8 flags: ${m.v8Flags ?? "none"}. ` +
      `Command: \`${report.command ?? "deno task bench"}\` ` +
      `(${report.mode}, ${report.durationS} s, ${date}). Every figure: \`${path}\`. ` +
      "Ratios (×) are to the raw TCP echo ceiling measured in the same run.",
    "",
    `| \`divide(10, 2)\`, ${m.frameBytes}-byte frames | calls/s | p50 ms | p99 ms | p99.9 ms | client CPU µs/call | server CPU µs/call |`,
    "| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const row of report.rows) {
    if (row.scenario !== "throughput" && row.scenario !== "full stack") {
      continue;
    }
    if (row.scenario === "full stack" && row.label.startsWith("ceiling")) {
      continue;
    }
    const label = row.label.startsWith("channel")
      ? row.label.replace("channel", "zkrpc channel")
      : row.label;
    lines.push(
      `| ${label} | ${withRatio(row, "calls_per_s")} | ${
        withRatio(row, "p50_ms")
      } | ${withRatio(row, "p99_ms")} | ${withRatio(row, "p999_ms")} | ${
        withRatio(row, "client_cpu_us")
      } | ${withRatio(row, "server_cpu_us")} |`,
    );
  }
  lines.push(
    "",
    "| `echo(Uint8Array)`, 16 in flight | calls/s | MiB/s | p50 ms | p99 ms | p99.9 ms |",
    "| --- | --- | --- | --- | --- | --- |",
  );
  for (const row of report.rows.filter((r) => r.scenario === "payloads")) {
    lines.push(
      `| ${row.label} | ${withRatio(row, "calls_per_s")} | ${
        withRatio(row, "mib_per_s")
      } | ${withRatio(row, "p50_ms")} | ${withRatio(row, "p99_ms")} | ${
        withRatio(row, "p999_ms")
      } |`,
    );
  }
  lines.push(
    "",
    "| slow server (1, 1, 10 ms), 16 in flight | p50 ms | p99 ms | slow server's share |",
    "| --- | --- | --- | --- |",
  );
  for (const row of report.rows.filter((r) => r.scenario === "slow server")) {
    lines.push(
      `| ${row.label} | ${fmt(row.figures.p50_ms)} | ${
        fmt(row.figures.p99_ms)
      } | ${fmt((row.figures.slow_share ?? 0) * 100, 2)}% |`,
    );
  }
  const first = find(report, "discovery", "register -> first call");
  const last = find(report, "discovery", "close() -> last call");
  const fo = find(report, "failover", "SIGKILL 1 of 3");
  const foDefault = find(report, "failover", "SIGKILL 1 of 3, not idempotent");
  const mem = find(report, "membership", "100 servers, 20 channels, churn");
  lines.push("", "| timing | figure |", "| --- | --- |");
  if (first) {
    lines.push(
      `| discovery: registration → first call (median / max of ${first.figures.trials}) | ${
        fmt(first.figures.median_ms)
      } / ${fmt(first.figures.max_ms)} ms |`,
    );
  }
  if (last) {
    lines.push(
      `| discovery: \`close()\` → last call routed to it (median / max) | ${
        fmt(last.figures.median_ms)
      } / ${
        fmt(last.figures.max_ms)
      } ms, ${last.figures.failed_calls} failed calls |`,
    );
  }
  if (fo) {
    lines.push(
      `| failover, SIGKILL 1 of 3, \`divide\` idempotent | ${fo.figures.failed_calls} failed calls, longest gap ${
        fmt(fo.figures.longest_gap_ms)
      } ms, ejected after ${
        fmt(fo.figures.stop_choosing_ms)
      } ms, left ZooKeeper after ${
        fmt(fo.figures.removed_from_membership_ms)
      } ms |`,
    );
  }
  if (foDefault) {
    lines.push(
      `| failover, channel default (not idempotent) | ${foDefault.figures.failed_calls} failed calls (in flight on the killed server), longest gap ${
        fmt(foDefault.figures.longest_gap_ms)
      } ms |`,
    );
  }
  if (mem) {
    lines.push(
      `| membership: 100 members, 20 channels | ${mem.figures.initial_reads_per_member} data read per member per channel; one join reaches all channels in ${
        fmt(mem.figures.join_converge_median_ms)
      } ms (median); 50 joins + 50 leaves converge in ${
        fmt(mem.figures.churn_converge_ms)
      } ms with ${mem.figures.reads_per_join_per_channel} read per join per channel |`,
    );
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const path = Deno.args[0];
  if (path === undefined) {
    console.error("Usage: bench/readme_table.ts bench/results/<date>.json");
    Deno.exit(2);
  }
  const report = JSON.parse(await Deno.readTextFile(path)) as BenchReport;
  console.log(renderPerformance(report, path));
}
