/**
 * Resource usage of the current process, as reported by the bench children.
 *
 * @module
 */
import process from "node:process";
import { GcCounter, type GcFigures } from "./gc_stats.ts";

/** CPU time and memory of one process at one instant. */
export interface UsageSnapshot {
  /** User + system CPU time since process start, in microseconds. */
  cpuUs: number;
  /** Resident set size in bytes. */
  rss: number;
  /**
   * Collections since the process's first snapshot (undefined without
   * `node:v8`'s `GCProfiler`).
   */
  gc?: GcFigures;
}

let gcCounter: GcCounter | undefined;

/**
 * Takes a snapshot of this process's CPU time and RSS.
 *
 * @returns The snapshot.
 */
export function usageSnapshot(): UsageSnapshot {
  gcCounter ??= new GcCounter();
  const gc = gcCounter.read();
  const cpu = process.cpuUsage();
  const snapshot: UsageSnapshot = {
    cpuUs: cpu.user + cpu.system,
    rss: Deno.memoryUsage().rss,
  };
  if (gc !== undefined) snapshot.gc = gc;
  return snapshot;
}
