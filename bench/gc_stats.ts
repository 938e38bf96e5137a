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
  /**
   * Bytes the old generation grew by from the end of each young collection
   * to the start of the next collection: objects allocated there directly,
   * never promoted. The stretch after a mark-compact is left out (its
   * sweeping frees old space as it goes).
   */
  oldAllocatedBytes: number;
  /** Pause time of all collections, ms. */
  pauseMs: number;
}

/** One heap space's use, as `GCProfiler` reports it. */
export interface SpaceStats {
  /** `new_space`, `old_space`, `code_space`, … */
  spaceName: string;
  /** Bytes in use. */
  spaceUsedSize: number;
}

/** One collection, as `GCProfiler` reports it. */
export interface GcRecord {
  /** `Scavenge`, `MinorMarkSweep`, `MarkSweepCompact`, … */
  gcType: string;
  /** Pause, ns. */
  cost: number;
  /** The spaces before it. */
  beforeGC: { heapSpaceStatistics: SpaceStats[] };
  /** The spaces after it. */
  afterGC: { heapSpaceStatistics: SpaceStats[] };
}

interface Profiler {
  start(): void;
  stop(): { statistics: GcRecord[] } | undefined;
}

/**
 * V8's `gc()`, a full collection, when the process runs with
 * `--v8-flags=--expose-gc`; `undefined` otherwise.
 *
 * @example Collect if allowed
 * ```ts
 * import { fullCollection } from "./gc_stats.ts";
 *
 * fullCollection?.();
 * ```
 */
export const fullCollection: (() => void) | undefined =
  (globalThis as { gc?: () => void }).gc;

/**
 * Figures of a window with no collection in it.
 *
 * @example
 * ```ts
 * import { noGc } from "./gc_stats.ts";
 * console.log(noGc().oldGcs); // 0
 * ```
 *
 * @returns All zero.
 */
export function noGc(): GcFigures {
  return {
    oldGcs: 0,
    youngGcs: 0,
    promotedBytes: 0,
    oldAllocatedBytes: 0,
    pauseMs: 0,
  };
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
      return gcFigures(profiler.stop()?.statistics ?? []);
    },
  };
}

/**
 * The figures of a window's collections, in the order they ran.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gcFigures } from "./gc_stats.ts";
 * const heap = (old: number) => ({
 *   heapSpaceStatistics: [{ spaceName: "old_space", spaceUsedSize: old }],
 * });
 * const figures = gcFigures([
 *   { gcType: "Scavenge", cost: 1e6, beforeGC: heap(100), afterGC: heap(110) },
 *   { gcType: "Scavenge", cost: 1e6, beforeGC: heap(150), afterGC: heap(150) },
 * ]);
 * assert.equal(figures.promotedBytes, 10);
 * assert.equal(figures.oldAllocatedBytes, 40);
 * ```
 *
 * @param records `GCProfiler`'s records.
 * @returns The figures.
 */
export function gcFigures(records: readonly GcRecord[]): GcFigures {
  const figures = noGc();
  let previousYoung: GcRecord | undefined;
  for (const record of records) {
    figures.pauseMs += record.cost / 1e6;
    if (record.gcType === "MarkSweepCompact") figures.oldGcs++;
    if (previousYoung !== undefined) {
      figures.oldAllocatedBytes += Math.max(
        0,
        oldUsed(record.beforeGC.heapSpaceStatistics) -
          oldUsed(previousYoung.afterGC.heapSpaceStatistics),
      );
    }
    previousYoung = YOUNG.has(record.gcType) ? record : undefined;
    if (previousYoung === undefined) continue;
    figures.youngGcs++;
    figures.promotedBytes += Math.max(
      0,
      oldUsed(record.afterGC.heapSpaceStatistics) -
        oldUsed(record.beforeGC.heapSpaceStatistics),
    );
  }
  return figures;
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
  #total: GcFigures = noGc();

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
    this.#total.oldAllocatedBytes += figures.oldAllocatedBytes;
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
 * import { gcDelta, noGc } from "./gc_stats.ts";
 * const zero = noGc();
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
    oldAllocatedBytes: after.oldAllocatedBytes - before.oldAllocatedBytes,
    pauseMs: after.pauseMs - before.pauseMs,
  };
}

/**
 * Lets every open connection sit idle, with a read pending, while this
 * process makes short-lived garbage, until `collections` young-generation
 * collections have run. Each yields to the event loop between batches, so
 * the process's timers and reads keep running.
 *
 * Why: Deno's `Conn.read()` adds each read's promise to a per-connection
 * `Set` and deletes it when the read ends, and V8 rebuilds the emptied
 * set's table in the generation the old table is in. A table that lives
 * through two young collections (an idle connection while the process works
 * on something else: the steady state of a long-lived connection) is in
 * the old generation, and from then on every read leaves ~120 B of garbage
 * there. A load client that starts calling the moment it connects never
 * gets there; this puts the ceiling and zkrpc's clients in the same state.
 *
 * @example
 * ```ts
 * import { idleThroughYoungCollections } from "./gc_stats.ts";
 * const seen = await idleThroughYoungCollections(2);
 * console.log(seen); // >= 2 where the runtime has GCProfiler
 * ```
 *
 * @param collections Young collections to wait for.
 * @param maxBytes Bound on the garbage made, bytes.
 * @returns Young collections seen (0 where the runtime has no `GCProfiler`).
 */
export async function idleThroughYoungCollections(
  collections: number,
  maxBytes = 1 << 30,
): Promise<number> {
  const counter = new GcCounter();
  const batchBytes = 1 << 20;
  // Each array is dropped 64 arrays later: garbage, but not before it was
  // allocated (an array that never escapes might not be).
  const ring: number[][] = new Array(64);
  for (let made = 0; made < maxBytes; made += batchBytes) {
    const seen = counter.read()?.youngGcs;
    if (seen === undefined || seen >= collections) return seen ?? 0;
    for (let i = 0; i < batchBytes / 160; i++) {
      ring[i & 63] = new Array<number>(16).fill(i);
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return counter.read()?.youngGcs ?? 0;
}
