/**
 * Streams through a DistributedChannel against server processes: pinned to
 * their endpoint (a graceful stop lets them finish), failover before the
 * first item for idempotent streams only, no failover after it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../src/channel/channel.ts";
import { Connection } from "../src/client/connection.ts";
import { StaticMembership } from "../src/discovery/static.ts";
import { ConnectionError } from "../src/errors.ts";
import { type ChildServer, startChildServer, within } from "./_core_helpers.ts";
import { waitFor } from "./_wait.ts";

const HOST = "127.0.0.1";

function member(server: ChildServer): { host: string; port: number } {
  return { host: HOST, port: server.port };
}

function startServer(): Promise<ChildServer> {
  return startChildServer("stream_server.ts", ["{}"]);
}

/** Resolves once a `slow` stream started running on `server`. */
async function streamStarted(server: ChildServer): Promise<void> {
  await using conn = await within(
    Connection.connect({ hostname: HOST, port: server.port }),
    5000,
    "a connection to the server",
  );
  await waitFor(
    async () =>
      ((await conn.call("state", [], { timeout: 5000 })) as {
        started: number;
      }).started === 1,
    { what: "the stream to start on the first server" },
  );
}

/** Reads `n` items through `reader`, each within 5 s. */
async function take(
  reader: ReadableStreamDefaultReader<unknown>,
  n: number,
): Promise<unknown[]> {
  const items: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const step = await within(reader.read(), 5000, `item ${i}`);
    assert.equal(step.done, false, `the stream ended after ${i} items`);
    items.push(step.value);
  }
  return items;
}

/** Reads to the end within 10 s; returns the items, or the error. */
async function rest(
  reader: ReadableStreamDefaultReader<unknown>,
): Promise<unknown[] | Error> {
  const items: unknown[] = [];
  return await within(
    (async () => {
      while (true) {
        const step = await reader.read();
        if (step.done) return items;
        items.push(step.value);
      }
    })().catch((error: Error) => error),
    10_000,
    "the stream to end",
  );
}

Deno.test("channel stream: a server stopped gracefully mid-stream lets it finish", async () => {
  await using server = await startServer();
  const membership = new StaticMembership([member(server)]);
  await using channel = new DistributedChannel({ membership });
  const reader = channel.stream("slow", [30, 10]).getReader();
  assert.deepEqual(await take(reader, 2), [0, 1]);
  // What a registered server does on close: goaway, leave the membership.
  server.child.kill("SIGTERM");
  membership.set([]);
  assert.deepEqual(
    await rest(reader),
    Array.from({ length: 28 }, (_, i) => i + 2),
  );
});

Deno.test("channel stream: before its first item an idempotent stream fails over", async () => {
  await using first = await startServer();
  await using second = await startServer();
  const membership = new StaticMembership([member(first)]);
  await using channel = new DistributedChannel({ membership });
  // The first item is 1.5 s away: the server dies before it.
  const reader = channel.stream("slow", [3, 1500], { idempotent: true })
    .getReader();
  await streamStarted(first);
  membership.set([member(first), member(second)]);
  await first.kill();
  assert.deepEqual(await rest(reader), [0, 1, 2]);
});

Deno.test("channel stream: before its first item a non-idempotent stream does not fail over", async () => {
  await using first = await startServer();
  await using second = await startServer();
  const membership = new StaticMembership([member(first)]);
  await using channel = new DistributedChannel({ membership });
  const reader = channel.stream("slow", [3, 1500]).getReader();
  await streamStarted(first);
  membership.set([member(first), member(second)]);
  await first.kill();
  const failure = await rest(reader);
  assert.ok(failure instanceof ConnectionError, String(failure));
  assert.equal(failure.written, true);
});

Deno.test("channel stream: after its first item a broken stream fails with the count, never fails over", async () => {
  await using first = await startServer();
  await using second = await startServer();
  const membership = new StaticMembership([member(first), member(second)]);
  await using channel = new DistributedChannel({ membership });
  const reader = channel.stream("slow", [1000, 10], { idempotent: true })
    .getReader();
  await take(reader, 3);
  const serving = channel.endpoints().find((e) => e.inFlight === 1);
  assert.ok(serving !== undefined, "one endpoint serves the stream");
  await (serving.key === `${HOST}:${first.port}` ? first : second).kill();
  const failure = await rest(reader);
  assert.ok(failure instanceof ConnectionError, String(failure));
  const count = Number(/broke after (\d+) items/.exec(failure.message)?.[1]);
  assert.ok(count >= 3, failure.message);
});
