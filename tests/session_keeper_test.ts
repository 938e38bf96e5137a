import assert from "node:assert/strict";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperSession } from "../src/zookeeper/session.ts";
import { expireSession, startZooKeeper } from "../testing.ts";
import { delay } from "./_core_helpers.ts";
import { nextEvent, waitFor } from "./_wait.ts";

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

Deno.test("SessionKeeper.lastError says why ZooKeeper is unreachable before the first connect timeout", async () => {
  const address = closedAddress();
  const errors: Error[] = [];
  await using keeper = new SessionKeeper(address, {
    connectTimeout: 10_000,
    onConnectError: (error) => errors.push(error),
  });
  const deadline = performance.now() + 5000;
  while (keeper.lastError === undefined && performance.now() < deadline) {
    await delay(20);
  }
  assert.match(keeper.lastError?.message ?? "", /ECONNREFUSED/);
  assert.ok(keeper.lastError?.message.includes(address));
  assert.ok(errors.length > 0, "onConnectError was called");
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

Deno.test("SessionKeeper.current() never returns an expired session, and waits for the next one", async () => {
  await using zk = await startZooKeeper();
  await using keeper = new SessionKeeper(zk.connectionString, {
    sessionTimeout: 4000,
  });
  const first = await keeper.current(AbortSignal.timeout(30_000));
  const expired = nextEvent(keeper, "expired");
  await expireSession(
    zk.connectionString,
    first.sessionId,
    first.sessionPassword,
  );
  await expired;
  // The old session is closed next, before a new one is established: ask
  // for the current session in that window.
  await waitFor(() => first.state === "closed", {
    what: "the expired session to close",
    interval: 1,
  });
  const next = await keeper.current(AbortSignal.timeout(10_000));
  assert.notEqual(next, first);
  assert.equal(next.state, "connected");
});
