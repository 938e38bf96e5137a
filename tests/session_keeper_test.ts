import assert from "node:assert/strict";
import { SessionKeeper } from "../src/registry/session_keeper.ts";
import { ZooKeeperSession } from "../src/registry/zookeeper_session.ts";
import { startZooKeeper } from "../testing.ts";
import { delay } from "./_core_helpers.ts";

/** A loopback address nothing listens on. */
function closedAddress(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return `127.0.0.1:${port}`;
}

Deno.test("ZooKeeperSession.connect() rejects with the signal's reason when aborted", async () => {
  const controller = new AbortController();
  const connecting = ZooKeeperSession.connect(closedAddress(), {
    connectTimeout: 10_000,
    signal: controller.signal,
  });
  await delay(100);
  const started = performance.now();
  controller.abort(new Error("shutting down"));
  await assert.rejects(connecting, /shutting down/);
  assert.ok(performance.now() - started < 1000);
});

Deno.test("SessionKeeper.close() while ZooKeeper is unreachable returns at once", async () => {
  const keeper = new SessionKeeper(closedAddress(), { connectTimeout: 10_000 });
  await delay(200);
  const started = performance.now();
  await keeper.close();
  assert.ok(performance.now() - started < 1000, "close() waited for connect");
  await assert.rejects(keeper.current(), /the keeper is closed/);
});

Deno.test("SessionKeeper keeps trying while ZooKeeper is down and connects once it is back", async () => {
  await using zk = await startZooKeeper();
  await zk.kill();
  await using keeper = new SessionKeeper(zk.connectionString, {
    connectTimeout: 500,
    maxRetryDelay: 200,
  });
  const sessions: ZooKeeperSession[] = [];
  keeper.addEventListener(
    "session",
    (event) => sessions.push((event as CustomEvent<ZooKeeperSession>).detail),
  );
  await delay(1200); // a few failed attempts
  assert.equal(keeper.session, undefined);
  await zk.restart();
  const session = await keeper.current(AbortSignal.timeout(10_000));
  assert.equal(session.state, "connected");
  assert.deepEqual(sessions, [session]);
});
