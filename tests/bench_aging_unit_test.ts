/**
 * The bench's connection ageing (`bench/gc_stats.ts`
 * `idleThroughYoungCollections`): it returns only after the young
 * collections it was asked for, while a loopback connection waits idle with
 * a read pending, and that connection still carries bytes afterwards.
 *
 * @module
 */
import assert from "node:assert/strict";
import { idleThroughYoungCollections } from "../bench/gc_stats.ts";

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
    const seen = await idleThroughYoungCollections(3);
    assert.ok(seen >= 3, `saw ${seen} young collections, asked for 3`);
    await server.write(new Uint8Array([7, 8, 9]));
    assert.equal(await pending, 3);
    assert.deepEqual([...buffer.subarray(0, 3)], [7, 8, 9]);
  } finally {
    client.close();
    server.close();
    listener.close();
  }
});

Deno.test("idleThroughYoungCollections: stops at its byte bound when asked for more collections than that garbage makes", async () => {
  // 1 MiB of garbage cannot make a million young collections.
  const seen = await idleThroughYoungCollections(1_000_000, 1 << 20);
  assert.ok(seen < 1_000_000);
});
