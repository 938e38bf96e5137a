import assert from "node:assert/strict";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperSession } from "../src/zookeeper/session.ts";
import { expireSession, startZooKeeper } from "../testing.ts";
import { nextEvent, stillPending, waitFor, within } from "./_wait.ts";

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
  assert.ok(await stillPending(connecting), "the connect is under way");
  controller.abort(new Error("shutting down"));
  // Long before the 10 s connect timeout: the abort ends it.
  await assert.rejects(
    within(connecting, 5000, "the aborted connect"),
    /shutting down/,
  );
});

Deno.test("SessionKeeper.close() while ZooKeeper is unreachable returns at once", async () => {
  const keeper = new SessionKeeper(closedAddress(), { connectTimeout: 10_000 });
  await waitFor(() => keeper.lastError !== undefined, "a failed connect");
  // Long before the 10 s connect timeout: close() does not wait for it.
  await within(keeper.close(), 5000, "close() while connecting");
  await assert.rejects(keeper.current(), /the keeper is closed/);
});

Deno.test("SessionKeeper.lastError says why ZooKeeper is unreachable before the first connect timeout", async () => {
  const address = closedAddress();
  const errors: Error[] = [];
  await using keeper = new SessionKeeper(address, {
    connectTimeout: 10_000,
    onConnectError: (error) => errors.push(error),
  });
  await waitFor(() => keeper.lastError !== undefined, "a failed connect");
  assert.match(keeper.lastError?.message ?? "", /ECONNREFUSED/);
  assert.ok(keeper.lastError?.message.includes(address));
  assert.ok(errors.length > 0, "onConnectError was called");
});

Deno.test("SessionKeeper keeps trying while ZooKeeper is down and connects once it is back", async () => {
  await using zk = await startZooKeeper();
  await zk.kill();
  let failed = 0;
  await using keeper = new SessionKeeper(zk.connectionString, {
    connectTimeout: 500,
    maxRetryDelay: 200,
    onConnectError: () => failed++,
  });
  const sessions: ZooKeeperSession[] = [];
  keeper.addEventListener(
    "session",
    (event) => sessions.push((event as CustomEvent<ZooKeeperSession>).detail),
  );
  await waitFor(() => failed >= 3, "a few failed attempts", 30_000);
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
