/**
 * Garbage-collection figures of the current process over a window: how
 * often the old generation is collected and how many bytes young-generation
 * collections promote into it. Read with `node:v8`'s `GCProfiler`, which
 * Deno 2.9 implements: one record per collection, with each heap space's
 * used size before and after it.
 *
 * @module
 */
import v8 from "node:v8";

/** What the collections of one window cost. */
export interface GcFigures {
  /** Old-generation (mark-compact) collections. */
  oldGcs: number;
  /** Young-generation collections (scavenges, minor mark-sweeps). */
  youngGcs: number;
  /** Bytes young-generation collections moved into the old generation. */
  promotedBytes: number;
  /** Pause time of all collections, ms. */
  pauseMs: number;
}

interface SpaceStats {
  spaceName: string;
  spaceUsedSize: number;
}

interface GcRecord {
  gcType: string;
  cost: number;
  beforeGC: { heapSpaceStatistics: SpaceStats[] };
  afterGC: { heapSpaceStatistics: SpaceStats[] };
}

interface Profiler {
  start(): void;
  stop(): { statistics: GcRecord[] } | undefined;
}

const YOUNG = new Set(["Scavenge", "MinorMarkSweep", "MinorMarkCompact"]);

function oldUsed(spaces: SpaceStats[]): number {
  let used = 0;
  for (const space of spaces) {
    if (!space.spaceName.startsWith("new_")) used += space.spaceUsedSize;
  }
  return used;
}

/**
 * Starts recording collections; `stop()` returns the window's figures.
 *
 * @example
 * ```ts
 * import { watchGc } from "./gc_stats.ts";
 * const watch = watchGc();
 * const garbage = Array.from({ length: 1000 }, (_, i) => ({ i }));
 * const figures = watch.stop();
 * console.log(garbage.length, figures?.oldGcs, figures?.promotedBytes);
 * ```
 *
 * @returns The watch; its `stop()` returns undefined where the runtime has
 *   no `GCProfiler`.
 */
export function watchGc(): { stop(): GcFigures | undefined } {
  const Ctor = (v8 as unknown as { GCProfiler?: new () => Profiler })
    .GCProfiler;
  const profiler = Ctor === undefined ? undefined : new Ctor();
  profiler?.start();
  return {
    stop(): GcFigures | undefined {
      if (profiler === undefined) return undefined;
      const figures = { oldGcs: 0, youngGcs: 0, promotedBytes: 0, pauseMs: 0 };
      for (const record of profiler.stop()?.statistics ?? []) {
        figures.pauseMs += record.cost / 1e6;
        if (record.gcType === "MarkSweepCompact") figures.oldGcs++;
        if (!YOUNG.has(record.gcType)) continue;
        figures.youngGcs++;
        figures.promotedBytes += Math.max(
          0,
          oldUsed(record.afterGC.heapSpaceStatistics) -
            oldUsed(record.beforeGC.heapSpaceStatistics),
        );
      }
      return figures;
    },
  };
}

/**
 * Running totals of this process's collections since it was created; each
 * {@linkcode GcCounter.read} returns them (the profiler's records are
 * dropped at every read, so a long-lived process keeps none).
 *
 * @example
 * ```ts
 * import { GcCounter } from "./gc_stats.ts";
 * const counter = new GcCounter();
 * const before = counter.read();
 * const garbage = Array.from({ length: 1000 }, (_, i) => ({ i }));
 * const after = counter.read();
 * console.log(garbage.length, (after?.youngGcs ?? 0) - (before?.youngGcs ?? 0));
 * ```
 */
export class GcCounter {
  #watch = watchGc();
  #total: GcFigures = { oldGcs: 0, youngGcs: 0, promotedBytes: 0, pauseMs: 0 };

  /**
   * The totals so far.
   *
   * @returns A copy of the totals, or undefined without `GCProfiler`.
   */
  read(): GcFigures | undefined {
    const figures = this.#watch.stop();
    if (figures === undefined) return undefined;
    this.#watch = watchGc();
    this.#total.oldGcs += figures.oldGcs;
    this.#total.youngGcs += figures.youngGcs;
    this.#total.promotedBytes += figures.promotedBytes;
    this.#total.pauseMs += figures.pauseMs;
    return { ...this.#total };
  }
}

/**
 * `after - before`, figure by figure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gcDelta } from "./gc_stats.ts";
 * const zero = { oldGcs: 0, youngGcs: 0, promotedBytes: 0, pauseMs: 0 };
 * assert.equal(gcDelta({ ...zero, oldGcs: 3 }, { ...zero, oldGcs: 1 })?.oldGcs, 2);
 * ```
 *
 * @param after Later totals.
 * @param before Earlier totals.
 * @returns The difference, or undefined when either is missing.
 */
export function gcDelta(
  after: GcFigures | undefined,
  before: GcFigures | undefined,
): GcFigures | undefined {
  if (after === undefined || before === undefined) return undefined;
  return {
    oldGcs: after.oldGcs - before.oldGcs,
    youngGcs: after.youngGcs - before.youngGcs,
    promotedBytes: after.promotedBytes - before.promotedBytes,
    pauseMs: after.pauseMs - before.pauseMs,
  };
}
