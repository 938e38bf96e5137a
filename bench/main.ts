/**
 * `deno task bench`: zkrpc against the raw TCP echo ceiling measured in the
 * same run, plus payload, balancer, discovery, failover and membership
 * scenarios.
 *
 * Usage:
 * `deno run --allow-net=127.0.0.1 --allow-run --allow-read --allow-write --allow-env --allow-sys bench/main.ts [--quick] [--out=DIR] [--only=a,b]`
 *
 * Writes `<out>/<YYYY-MM-DD>.json` (every figure) and `<out>/<date>.svg`
 * (calls/s and p99 vs calls in flight).
 *
 * @module
 */
import { parseArgs } from "node:util";
import os from "node:os";
import { canPin, closeAllChildren } from "./child.ts";
import { type BenchContext, type Scenario, SkipError } from "./context.ts";
import { sharedZooKeeper } from "./zookeeper.ts";
import { type BenchReport, formatTable, Report } from "./report.ts";
import { renderChart } from "./chart_svg.ts";
import { checkTargets } from "./targets.ts";
import { divideFrameBytes } from "./frame_size.ts";
import { SCENARIOS } from "./scenarios/mod.ts";

let stopZooKeeper: () => Promise<void> = () => Promise.resolve();

/** Command line options of the bench. */
export interface BenchOptions {
  /** Short runs for CI smoke tests (< 60 s). */
  quick: boolean;
  /** Output directory. */
  out: string;
  /** Scenario ids to run; all when empty. */
  only: string[];
}

/**
 * Parses the command line.
 *
 * @param args `Deno.args`.
 * @returns The options.
 */
export function parseOptions(args: string[]): BenchOptions {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      out: {
        type: "string",
        default: new URL("./results", import.meta.url).pathname,
      },
      only: { type: "string", default: "" },
    },
  });
  return {
    quick: values.quick ?? false,
    out: values.out ?? "bench/results",
    only: (values.only ?? "").split(",").filter((s) => s !== ""),
  };
}

function cpuModel(): string {
  try {
    return os.cpus()[0]?.model ?? "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * Runs `deno fmt` on the written files so that committed results pass
 * `deno fmt --check`; best effort.
 *
 * @param paths Files to format.
 */
async function formatFiles(paths: string[]): Promise<void> {
  try {
    await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--quiet", ...paths],
      stdout: "null",
      stderr: "null",
    }).output();
  } catch {
    // formatting is cosmetic
  }
}

/**
 * Runs the selected scenarios and writes the report.
 *
 * @param options Parsed options.
 * @returns The report.
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const started = new Date();
  const t0 = performance.now();
  const report = new Report();
  const zookeeper = sharedZooKeeper();
  const context: BenchContext = {
    report,
    quick: options.quick,
    divideFrameBytes: await divideFrameBytes(),
    caseMs: options.quick ? 700 : 5_000,
    // Windows bounded by time: the bound on calls is only a safety (the
    // latencies go into a fixed-size histogram).
    caseCalls: options.quick ? 400_000 : 4_000_000,
    rounds: options.quick ? 2 : 5,
    // Enough calls for V8 to optimize the client's code before measuring
    // (a cold zkrpc client ran 3x slower per call than a warm one).
    warmupCalls: options.quick ? 20_000 : 200_000,
    warmupMs: options.quick ? 300 : 1_000,
    zookeeper: () => zookeeper.get(),
  };
  console.log(
    `zkrpc bench (${
      options.quick ? "quick" : "full"
    }), divide frame = ${context.divideFrameBytes} B`,
  );
  stopZooKeeper = () => zookeeper.stop();
  try {
    for (
      const [name, scenario] of Object.entries(SCENARIOS) as [
        string,
        Scenario,
      ][]
    ) {
      if (options.only.length > 0 && !options.only.includes(name)) continue;
      const s0 = performance.now();
      try {
        await scenario(context);
      } catch (error) {
        if (error instanceof SkipError) report.skip(name, error.message);
        else report.skip(name, `failed: ${(error as Error).stack ?? error}`);
      } finally {
        await closeAllChildren();
      }
      console.log(`${name}: ${((performance.now() - s0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await zookeeper.stop();
  }
  const v8Flags = Deno.env.get("DENO_V8_FLAGS");
  const result: BenchReport = {
    startedAt: started.toISOString(),
    mode: options.quick ? "quick" : "full",
    command: [
      ...(v8Flags === undefined ? [] : [`DENO_V8_FLAGS=${v8Flags}`]),
      "deno task bench",
      ...Deno.args,
    ].join(" "),
    machine: {
      os: `${Deno.build.os} ${Deno.build.arch}`,
      cpus: navigator.hardwareConcurrency,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      cpuModel: cpuModel(),
      memoryGib: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      pinned: canPin() ? "load client on CPU 0, servers on CPU 1" : "no",
      frameBytes: context.divideFrameBytes,
      // Every process of the run (the ceiling's too) inherits these.
      v8Flags: v8Flags ?? "none",
    },
    rows: report.rows,
    skipped: report.skipped,
    targets: checkTargets(report),
    durationS: Math.round((performance.now() - t0) / 100) / 10,
  };
  const date = result.startedAt.slice(0, 10);
  await Deno.mkdir(options.out, { recursive: true });
  await Deno.writeTextFile(
    `${options.out}/${date}.json`,
    JSON.stringify(result, null, 2) + "\n",
  );
  await Deno.writeTextFile(
    `${options.out}/${date}.svg`,
    renderChart(report.rows),
  );
  await formatFiles([
    `${options.out}/${date}.json`,
    `${options.out}/${date}.svg`,
  ]);
  console.log(formatTable(report.rows));
  for (const s of report.skipped) {
    console.log(`${s.scenario}: skipped: ${s.reason.split("\n")[0]}`);
  }
  console.log("\n### targets\n");
  for (const t of result.targets) {
    console.log(
      `${t.status.padEnd(12)} ${t.target}: measured ${
        t.measured ?? "-"
      } (limit ${t.limit})`,
    );
  }
  console.log(
    `\nwrote ${options.out}/${date}.json and ${date}.svg in ${result.durationS} s`,
  );
  return result;
}

if (import.meta.main) {
  const onSignal = () => {
    Promise.allSettled([closeAllChildren(), stopZooKeeper()]).finally(() =>
      Deno.exit(130)
    );
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code = 0;
  try {
    const result = await runBench(parseOptions(Deno.args));
    // A scenario that crashed (not one skipped for a missing module) fails
    // the run, so that the CI smoke test notices a broken bench.
    if (result.skipped.some((s) => s.reason.startsWith("failed:"))) code = 1;
  } catch (error) {
    console.error(error);
    code = 1;
  } finally {
    await closeAllChildren();
  }
  Deno.exit(code);
}
