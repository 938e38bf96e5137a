/**
 * The bench's GC figures and connection ageing (`bench/gc_stats.ts`):
 * `gcFigures` tells bytes promoted by young collections from bytes
 * allocated in the old generation between collections, and leaves out the
 * stretch after a mark-compact; `idleThroughYoungCollections` returns only
 * after the young collections it was asked for, while a loopback connection
 * waits idle with a read pending, and that connection still carries bytes
 * afterwards.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  gcFigures,
  type GcRecord,
  idleThroughYoungCollections,
} from "../bench/gc_stats.ts";
import { within } from "./_wait.ts";

function heap(old: number, young = 0): GcRecord["beforeGC"] {
  return {
    heapSpaceStatistics: [
      { spaceName: "old_space", spaceUsedSize: old },
      { spaceName: "code_space", spaceUsedSize: 1000 },
      { spaceName: "new_space", spaceUsedSize: young },
    ],
  };
}

function record(
  gcType: string,
  before: GcRecord["beforeGC"],
  after: GcRecord["afterGC"],
): GcRecord {
  return { gcType, cost: 2e6, beforeGC: before, afterGC: after };
}

Deno.test("gcFigures: promoted bytes, old-space bytes allocated between collections (not after a mark-compact), counts and pauses", () => {
  const figures = gcFigures([
    // Promotes 50 (young space shrinks: not counted as old).
    record("Scavenge", heap(1_000, 4_000), heap(1_050, 100)),
    // 200 allocated in old space since the last young collection.
    record("MinorMarkSweep", heap(1_250, 4_000), heap(1_260, 100)),
    // 300 allocated before the mark-compact, which frees 1_000.
    record("MarkSweepCompact", heap(1_560, 4_000), heap(560, 100)),
    // After a mark-compact: the stretch is left out (600 here).
    record("Scavenge", heap(1_160, 4_000), heap(1_160, 100)),
    // Old space shrank between collections (sweeping): counts as 0.
    record("Scavenge", heap(1_100, 4_000), heap(1_100, 100)),
  ]);
  assert.deepEqual(figures, {
    oldGcs: 1,
    youngGcs: 4,
    promotedBytes: 60,
    oldAllocatedBytes: 500,
    pauseMs: 10,
  });
});

Deno.test("idleThroughYoungCollections: waits for the young collections asked for, with an idle read pending that still completes after", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const server = await accepted;
  try {
    const buffer = new Uint8Array(8);
    const pending = client.read(buffer);
    const seen = await within(
      idleThroughYoungCollections(3),
      30_000,
      "three young collections",
    );
    assert.ok(seen >= 3, `saw ${seen} young collections, asked for 3`);
    await server.write(new Uint8Array([7, 8, 9]));
    assert.equal(await within(pending, 10_000, "the pending read"), 3);
    assert.deepEqual([...buffer.subarray(0, 3)], [7, 8, 9]);
  } finally {
    client.close();
    server.close();
    listener.close();
  }
});

Deno.test("idleThroughYoungCollections: stops at its byte bound when asked for more collections than that garbage makes", async () => {
  // 1 MiB of garbage cannot make a million young collections.
  const seen = await within(
    idleThroughYoungCollections(1_000_000, 1 << 20),
    30_000,
    "1 MiB of garbage",
  );
  assert.ok(seen < 1_000_000);
});
