/**
 * `zkrpc call --stream` against a real ZooKeeper and a registered server:
 * items as JSON lines, and a handler error after some items.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper } from "../testing.ts";
import { serve } from "../mod.ts";
import { zooKeeperRegistrar } from "../zookeeper.ts";
import { zkrpc } from "./_cli_helpers.ts";

class InvalidOperation extends Error {
  override name = "InvalidOperation";
}

Deno.test("zkrpc call --stream prints each item as one JSON line, then a handler's error", async () => {
  await using zk = await startZooKeeper();
  const registrar = zooKeeperRegistrar({
    zookeeper: zk.connectionString,
    service: "counter",
  });
  await using _server = serve({
    async *count(n: number) {
      for (let i = 0; i < n; i++) yield { i, text: `item ${i}` };
    },
    async *failAfter(n: number) {
      for (let i = 0; i < n; i++) yield i;
      throw new InvalidOperation(`failed after ${n}`);
    },
  }, { hostname: "127.0.0.1", registrar });
  await registrar.registered();
  const run = (...args: string[]) =>
    zkrpc([
      "call",
      "counter",
      ...args,
      "--stream",
      "--zookeeper",
      zk.connectionString,
    ]);
  const ok = await run("count", "3");
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(
    ok.stdout.trimEnd().split("\n").map((line) => JSON.parse(line)),
    [0, 1, 2].map((i) => ({ i, text: `item ${i}` })),
  );
  const failed = await run("failAfter", "2");
  assert.equal(failed.code, 1);
  assert.deepEqual(failed.stdout.trimEnd().split("\n"), ["0", "1"]);
  assert.match(failed.stderr, /InvalidOperation: .*failed after 2/);
});
