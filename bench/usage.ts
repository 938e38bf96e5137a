/**
 * Resource usage of the current process, as reported by the bench children.
 *
 * @module
 */
import process from "node:process";

/** CPU time and memory of one process at one instant. */
export interface UsageSnapshot {
  /** User + system CPU time since process start, in microseconds. */
  cpuUs: number;
  /** Resident set size in bytes. */
  rss: number;
}

/**
 * Takes a snapshot of this process's CPU time and RSS.
 *
 * @returns The snapshot.
 */
export function usageSnapshot(): UsageSnapshot {
  const cpu = process.cpuUsage();
  return { cpuUs: cpu.user + cpu.system, rss: Deno.memoryUsage().rss };
}
