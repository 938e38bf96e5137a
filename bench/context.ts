/**
 * What every scenario receives: the report, the mode and run parameters.
 *
 * @module
 */
import type { Report } from "./report.ts";

/** Shared scenario context. */
export interface BenchContext {
  /** Where rows and skips go. */
  report: Report;
  /** `--quick`: shorter runs, fewer trials. */
  quick: boolean;
  /** Bytes of one zkrpc `divide(10, 2)` request frame (ceiling frame size). */
  divideFrameBytes: number;
  /** Measured time per throughput case, ms. */
  caseMs: number;
  /** Call bound per throughput case. */
  caseCalls: number;
  /** Alternating rounds per ceiling/zkrpc comparison. */
  rounds: number;
  /** Calls made by each load process before measuring. */
  warmupCalls: number;
  /** Bound on each load process's warm-up, ms. */
  warmupMs: number;
  /**
   * The run's shared ZooKeeper, started on first use and stopped by the
   * runner; throws {@linkcode SkipError} when `testing.ts` is not there.
   */
  zookeeper(): Promise<BenchZooKeeper>;
}

/** A throw-away ZooKeeper for the benches. */
export interface BenchZooKeeper {
  /** `127.0.0.1:port`. */
  connectionString: string;
  /** Stops the server. */
  stop(): Promise<void>;
}

/** Thrown by a scenario whose dependencies have not landed. */
export class SkipError extends Error {
  /** @param reason Why the scenario cannot run. */
  constructor(reason: string) {
    super(reason);
    this.name = "SkipError";
  }
}

/**
 * Throws {@linkcode SkipError} when a module or export is missing.
 *
 * @param path Path relative to the repository root.
 * @param exportName The export the scenario needs.
 */
export async function requireModule(
  path: string,
  exportName: string,
): Promise<void> {
  const missing = await missingModule(path, exportName);
  if (missing !== undefined) throw new SkipError(missing);
}

/** A scenario module's entry point. */
export type Scenario = (context: BenchContext) => Promise<void>;

/**
 * Returns a skip reason when a repository module is missing or lacks an
 * export, otherwise undefined.
 *
 * @param path Path relative to the repository root, e.g. "src/server/server.ts".
 * @param exportName The export the bench needs.
 * @returns The reason or undefined.
 */
export async function missingModule(
  path: string,
  exportName: string,
): Promise<string | undefined> {
  const url = new URL(`../${path}`, import.meta.url);
  try {
    await Deno.stat(url);
  } catch {
    return `${path} does not exist yet`;
  }
  try {
    const module = await import(url.href) as Record<string, unknown>;
    if (!(exportName in module)) return `${path} does not export ${exportName}`;
  } catch (error) {
    return `${path} failed to load: ${(error as Error).message.split("\n")[0]}`;
  }
  return undefined;
}
