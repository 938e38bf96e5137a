/**
 * Unit tests of `src/zookeeper/session.ts` on a scripted client
 * (`_fake_client.ts`): connecting (timeout with the last reason, servers
 * that all deny, abort, rejected credentials, a missing chroot), the states
 * and their events (disconnected, connected again, expired, closed), each
 * operation's request and result, operations held while disconnected and
 * bounded by the operation timeout, the final codes, one-shot and
 * persistent watches, and close. No network: the mutation runner's tests
 * for `session`. The same behaviours against a real ZooKeeper are in
 * zookeeper_session_test.ts, zookeeper_watch_test.ts and
 * session_keeper_test.ts (the system layer).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  isZooKeeperError,
  type WatchEvent,
  ZooKeeperSession,
  type ZooKeeperSessionOptions,
} from "../../src/zookeeper/session.ts";
import {
  CM_AUTH_FAILED,
  CM_CLOSED,
  CM_CONNECTING,
  CM_DISCONNECTED,
  CM_SESSION_EXPIRED,
} from "../../src/zookeeper/_wire_client.ts";
import { toClientAcl, toClientMode } from "../../src/zookeeper/types.ts";
import { stillPending, waitFor, within } from "../_wait.ts";
import {
  clientStat,
  type FakeClient,
  fakeClients,
  installFakeClients,
  lastClient,
} from "./_fake_client.ts";

installFakeClients();

const HOSTS = "127.0.0.1:2181";

/** Connects a session on a fresh fake client. */
async function open(
  options: ZooKeeperSessionOptions = {},
  connectionString = HOSTS,
): Promise<{ session: ZooKeeperSession; client: FakeClient }> {
  const connecting = ZooKeeperSession.connect(connectionString, {
    operationTimeout: 2000,
    ...options,
  });
  const client = lastClient();
  await waitFor(() => client.sockets.length === 1, {
    what: "the first socket",
    timeout: 1000,
  });
  client.connected();
  const session = await within(connecting, 1000, "the connect");
  return { session, client };
}

/** Counts the events of `types` on `target`, in order. */
function events(target: EventTarget, ...types: string[]): string[] {
  const seen: string[] = [];
  for (const type of types) {
    target.addEventListener(type, () => seen.push(type));
  }
  return seen;
}

/** Waits for the client to receive a request of `op`. */
function sent(client: FakeClient, op: string, count = 1): Promise<void> {
  return waitFor(
    () => client.calls.filter((c) => c.op === op).length >= count,
    {
      what: `a ${op} request`,
      timeout: 1000,
    },
  );
}

/** What `promise` rejects with (`undefined` if it resolves), handled now. */
function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => undefined, (error) => error);
}

/**
 * Records the events every `ZooKeeperSession` dispatches while `body` runs,
 * also those of a session `connect()` has not returned yet.
 */
async function dispatched<T>(
  body: () => Promise<T>,
): Promise<{ result: T; types: string[] }> {
  const types: string[] = [];
  const original = EventTarget.prototype.dispatchEvent;
  EventTarget.prototype.dispatchEvent = function (this: EventTarget, event) {
    if (this instanceof ZooKeeperSession) types.push(event.type);
    return original.call(this, event);
  };
  try {
    return { result: await body(), types };
  } finally {
    EventTarget.prototype.dispatchEvent = original;
  }
}

function code(expected: string) {
  return (error: unknown) => isZooKeeperError(error) && error.code === expected;
}

Deno.test("session: connect resolves once the client is connected, with the session's id, password and timeout, and no connected event", async () => {
  const connecting = ZooKeeperSession.connect(HOSTS, { sessionTimeout: 6000 });
  const client = lastClient();
  assert.equal(client.connects, 1);
  assert.equal(client.options.sessionTimeout, 6000);
  assert.ok(await stillPending(connecting));
  const { result: session, types } = await dispatched(() => {
    client.connected();
    return within(connecting, 1000, "the connect");
  });
  assert.deepEqual(types, []); // the first connection is no "connected"
  const seen = events(session, "connected", "disconnected", "closed");
  assert.equal(session.state, "connected");
  assert.equal(session.sessionId, "0123456789abcdef");
  assert.deepEqual(session.sessionPassword, new Uint8Array(16).fill(7));
  session.sessionPassword.fill(0); // a copy
  assert.deepEqual(session.sessionPassword, new Uint8Array(16).fill(7));
  assert.equal(session.sessionTimeout, 4321);
  assert.equal(session.connectionString, HOSTS);
  assert.deepEqual(session.authIds, []);
  assert.deepEqual(client.auth, []);
  await session.close();
  assert.deepEqual(seen, ["closed"]);
});

Deno.test("session: the default session timeout is 10 s, and credentials are added as digests with their ACL ids", async () => {
  const { session, client } = await open({
    auth: ["alice:secret", "bob:pw:with:colons"],
  });
  assert.equal(client.options.sessionTimeout, 10_000);
  assert.deepEqual(client.auth, [
    { scheme: "digest", auth: "alice:secret" },
    { scheme: "digest", auth: "bob:pw:with:colons" },
  ]);
  const digest = (s: string) => createHash("sha1").update(s).digest("base64");
  assert.deepEqual(session.authIds, [
    `alice:${digest("alice:secret")}`,
    `bob:${digest("bob:pw:with:colons")}`,
  ]);
  await session.close();
  const single = await open({ auth: "carol:x" });
  assert.deepEqual(single.session.authIds, [`carol:${digest("carol:x")}`]);
  await single.session.close();
});

Deno.test("session: connect rejects with TIMEOUT after connectTimeout, naming the hosts and the last attempt's error, and releases the client", async () => {
  const reported: Error[] = [];
  const connecting = ZooKeeperSession.connect(HOSTS, {
    connectTimeout: 150,
    onConnectError: (error) => reported.push(error),
  });
  const client = lastClient();
  await waitFor(() => client.sockets.length === 1, "the first socket");
  const refused = Object.assign(new Error("connection refused"), {
    code: "ECONNREFUSED",
  });
  client.sockets[0]!.fail(refused);
  assert.deepEqual(reported, [refused]);
  const error = await within(
    connecting.then(() => undefined, (e) => e),
    1000,
    "the connect's failure",
  );
  assert.ok(isZooKeeperError(error, "TIMEOUT"), String(error));
  assert.match(
    error.message,
    /^Cannot connect to ZooKeeper at 127\.0\.0\.1:2181: no server accepted the session within 150 ms \(last attempt: connection refused\)/,
  );
  assert.equal(error.cause, refused);
  assert.equal(client.sockets[0]!.destroyed, true);
  assert.equal(client.released, true);

  // Without any failed attempt: no "last attempt".
  const silent = ZooKeeperSession.connect(HOSTS, { connectTimeout: 100 });
  const error2 = await within(
    silent.then(() => undefined, (e) => e),
    1000,
    "the second connect's failure",
  );
  assert.ok(isZooKeeperError(error2, "TIMEOUT"));
  assert.doesNotMatch(error2.message, /last attempt/);
  assert.match(error2.message, /within 100 ms: /);
  assert.equal(error2.cause, undefined);
});

Deno.test("session: a throwing onConnectError is reported, not thrown into the client", async () => {
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    reported.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const boom = new Error("hook failed");
    const connecting = ZooKeeperSession.connect(HOSTS, {
      connectTimeout: 100,
      onConnectError: () => {
        throw boom;
      },
    });
    const client = lastClient();
    await waitFor(() => client.sockets.length === 1, "the first socket");
    client.sockets[0]!.fail(
      Object.assign(new Error("refused"), { code: "ECONNREFUSED" }),
    );
    assert.deepEqual(reported, [boom]);
    await assert.rejects(connecting, code("TIMEOUT"));
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("session: connect fails at once when every server denies the connection, not while one may still answer", async () => {
  const two = "127.0.0.1:2181,127.0.0.2:2182";
  const denied = () =>
    Object.assign(new Error("permission denied"), { code: "EPERM" });
  const refused = () =>
    Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
  // A denied, B denied: NOT_PERMITTED at once.
  const connecting = ZooKeeperSession.connect(two, { connectTimeout: 5000 });
  const client = lastClient();
  await waitFor(() => client.sockets.length === 1, "the first socket");
  client.sockets[0]!.fail(denied());
  assert.ok(await stillPending(connecting));
  client.attempt();
  await waitFor(() => client.sockets.length === 2, "the second socket");
  assert.deepEqual(client.sockets.map((s) => s.server.port), [2181, 2182]);
  client.sockets[1]!.fail(denied());
  const error = await within(
    connecting.then(() => undefined, (e) => e),
    1000,
    "the refusal",
  );
  assert.ok(isZooKeeperError(error, "NOT_PERMITTED"), String(error));
  assert.equal((error.cause as Error).message, "permission denied");
  assert.match(
    error.message,
    /^Cannot connect to ZooKeeper at 127\.0\.0\.1:2181,127\.0\.0\.2:2182: /,
  );
  assert.equal(client.released, true);

  // A denied then refused (it may answer later), B denied: still trying.
  const retrying = ZooKeeperSession.connect(two, { connectTimeout: 300 });
  const second = lastClient();
  await waitFor(() => second.sockets.length === 1, "the first socket");
  second.sockets[0]!.fail(denied());
  second.attempt();
  await waitFor(() => second.sockets.length === 2, "the second socket");
  second.sockets[1]!.fail(refused());
  second.attempt(); // back to A, after the round's pause
  await waitFor(() => second.sockets.length === 3, "the third socket");
  second.sockets[2]!.fail(refused()); // A forgiven
  second.attempt();
  await waitFor(() => second.sockets.length === 4, "the fourth socket");
  second.sockets[3]!.fail(denied()); // B denied: one of two
  await assert.rejects(within(retrying, 1000, "the timeout"), code("TIMEOUT"));
});

Deno.test("session: an unknown host on every server fails the connect with UNKNOWN_HOST", async () => {
  const connecting = ZooKeeperSession.connect("zk.invalid:2181", {
    connectTimeout: 5000,
  });
  const client = lastClient();
  await waitFor(() => client.sockets.length === 1, "the first socket");
  client.sockets[0]!.fail(
    Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }),
  );
  await assert.rejects(
    within(connecting, 1000, "the failure"),
    code("UNKNOWN_HOST"),
  );
});

Deno.test("session: a denial after the session is open does not end it", async () => {
  const { session, client } = await open();
  client.setState(CM_DISCONNECTED);
  client.attempt();
  await waitFor(() => client.sockets.length === 2, "the second socket");
  client.sockets[1]!.fail(
    Object.assign(new Error("permission denied"), { code: "EPERM" }),
  );
  assert.equal(session.state, "disconnected");
  client.connected();
  assert.equal(session.state, "connected");
  await session.close();
});

Deno.test("session: connect rejects with the signal's reason when aborted, and releases the client", async () => {
  const controller = new AbortController();
  const connecting = ZooKeeperSession.connect(HOSTS, {
    signal: controller.signal,
  });
  const client = lastClient();
  await waitFor(() => client.sockets.length === 1, "the first socket");
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(
    within(connecting, 1000, "the abort"),
    (e) => e === reason,
  );
  assert.equal(client.sockets[0]!.destroyed, true);
  assert.equal(client.released, true);
});

Deno.test("session: rejected credentials fail the connect with AUTH_FAILED and no closed event", async () => {
  const connecting = ZooKeeperSession.connect(HOSTS, { auth: "u:wrong" });
  const client = lastClient();
  await waitFor(() => client.sockets.length === 1, "the first socket");
  const { result: error, types } = await dispatched(() => {
    client.setState(CM_AUTH_FAILED);
    return within(failure(connecting), 1000, "the failure");
  });
  assert.deepEqual(types, []); // never opened: no "closed"
  assert.ok(isZooKeeperError(error, "AUTH_FAILED"), String(error));
  assert.match(
    error.message,
    /Cannot use ZooKeeper session at 127\.0\.0\.1:2181/,
  );
});

Deno.test("session: a connection string with a chroot checks it exists, and fails with NO_CHROOT, closed, when it does not", async () => {
  const connecting = ZooKeeperSession.connect(`${HOSTS}/app`);
  const client = lastClient();
  await waitFor(() => client.sockets.length === 1, "the first socket");
  client.connected();
  await sent(client, "exists");
  assert.equal(client.next("exists").path, "/");
  client.answer("exists", null);
  const error = await within(
    connecting.then(() => undefined, (e) => e),
    1000,
    "the failure",
  );
  assert.ok(isZooKeeperError(error, "NO_CHROOT"), String(error));
  assert.match(
    error.message,
    /^Cannot connect to ZooKeeper at 127\.0\.0\.1:2181\/app: chroot \/app does not exist: /,
  );
  assert.equal(error.path, "/app");
  assert.equal(client.closes, 1);

  // It exists: connected.
  const ok = ZooKeeperSession.connect(`${HOSTS}/app`);
  const second = lastClient();
  await waitFor(() => second.sockets.length === 1, "the first socket");
  second.connected();
  await sent(second, "exists");
  second.answer("exists", clientStat());
  const session = await within(ok, 1000, "the connect");
  assert.equal(session.state, "connected");
  await session.close();

  // The check fails: the session is closed and the error passed on.
  const failing = ZooKeeperSession.connect(`${HOSTS}/app`);
  const third = lastClient();
  await waitFor(() => third.sockets.length === 1, "the first socket");
  third.connected();
  await sent(third, "exists");
  third.fail("exists", "NO_AUTH");
  await assert.rejects(within(failing, 1000, "the failure"), code("NO_AUTH"));
  assert.equal(third.closes, 1);
});

Deno.test("session: create sends the data, ACL and mode, and resolves with the created path", async () => {
  const { session, client } = await open();
  const created = session.create("/a", "hi", {
    mode: "ephemeral_sequential",
    acl: "creator_all_world_read",
  });
  const call = client.next("create");
  assert.equal(call.path, "/a");
  assert.deepEqual(call.args, [
    new TextEncoder().encode("hi"),
    toClientAcl("creator_all_world_read"),
    toClientMode("ephemeral_sequential"),
  ]);
  client.answer("create", "/a0000000001");
  assert.equal(await created, "/a0000000001");
  // Options as the second argument; defaults: persistent, open, no data.
  const second = session.create("/b", { data: new Uint8Array([1, 2]) });
  assert.deepEqual(client.next("create").args, [
    new Uint8Array([1, 2]),
    toClientAcl("open"),
    toClientMode("persistent"),
  ]);
  client.answer("create", "/b");
  assert.equal(await second, "/b");
  const empty = session.create("/c");
  assert.deepEqual(client.next("create").args, [
    toClientAcl("open"),
    toClientMode("persistent"),
  ]);
  client.answer("create", "/c");
  assert.equal(await empty, "/c");
  // A malformed mode or ACL, or path, rejects without a request.
  await assert.rejects(
    session.create("/d", "", { mode: "sideways" as "persistent" }),
    TypeError,
  );
  await assert.rejects(session.create("/d", "", { acl: [] }), TypeError);
  await assert.rejects(
    session.create("d"),
    (e) =>
      e instanceof TypeError &&
      e.message === 'Cannot create "d": invalid path "d"',
  );
  assert.equal(client.calls.length, 3);
  await session.close();
});

Deno.test("session: ZooKeeper's errors reject with their code, the operation and the path", async () => {
  const { session, client } = await open();
  const read = session.getData("/x");
  client.fail("getData", "NO_NODE");
  const error = await read.then(() => undefined, (e) => e);
  assert.ok(isZooKeeperError(error, "NO_NODE"));
  assert.match(error.message, /^Cannot read "\/x": /);
  assert.equal(error.path, "/x");
  const exists = session.create("/x");
  client.fail("create", "NODE_EXISTS");
  await assert.rejects(exists, code("NODE_EXISTS"));
  // A result the mapping cannot use rejects too (never a hang).
  const broken = session.getChildren("/x");
  client.answer("getChildren", 42);
  await assert.rejects(within(broken, 1000, "the broken answer"), TypeError);
  await session.close();
});

Deno.test("session: reads map the client's results: data and stat, a missing node, children", async () => {
  const { session, client } = await open();
  const read = session.getData("/x");
  assert.equal(client.next("getData").args.length, 0); // no watch
  client.answer(
    "getData",
    new TextEncoder().encode("hello"),
    clientStat({ version: 3, ephemeralOwner: 0x1234n, czxid: 9n }),
  );
  const { data, stat } = await read;
  assert.ok(data instanceof Uint8Array);
  assert.equal(new TextDecoder().decode(data), "hello");
  assert.equal(stat.version, 3);
  assert.equal(stat.ephemeralOwner, "0000000000001234");
  assert.equal(stat.czxid, 9n);
  const none = session.getData("/y");
  client.answer("getData", null, clientStat());
  const result = await none;
  assert.equal(result.data, undefined);
  assert.equal(result.stat.ephemeralOwner, undefined);
  const missing = session.exists("/z");
  client.answer("exists", null);
  assert.equal(await missing, undefined);
  const present = session.exists("/z");
  client.answer("exists", clientStat({ version: 2 }));
  assert.equal((await present)!.version, 2);
  const list = session.getChildren("/");
  const names = ["b", "a"];
  client.answer("getChildren", names);
  const children = await list;
  assert.deepEqual(children, ["b", "a"]);
  children.push("c");
  assert.deepEqual(names, ["b", "a"]); // a copy
  await session.close();
});

Deno.test("session: setData, delete, getAcl and setAcl send their arguments and map their results", async () => {
  const { session, client } = await open();
  const write = session.setData("/x", "v2", 4);
  assert.deepEqual(client.next("setData").args, [
    new TextEncoder().encode("v2"),
    4,
  ]);
  client.answer("setData", clientStat({ version: 5 }));
  assert.equal((await write).version, 5);
  const any = session.setData("/x", new Uint8Array([9]));
  assert.deepEqual(client.next("setData").args, [new Uint8Array([9]), -1]);
  client.answer("setData", clientStat());
  await any;
  await assert.rejects(
    session.setData("/x", 42 as unknown as string),
    (e) =>
      e instanceof TypeError &&
      e.message === 'Cannot write "/x": data must be a string or a Uint8Array',
  );
  const removed = session.delete("/x", 7);
  assert.deepEqual(client.next("remove").args, [7]);
  client.answer("remove");
  assert.equal(await removed, undefined);
  const removedAny = session.delete("/x");
  assert.deepEqual(client.next("remove").args, [-1]);
  client.answer("remove");
  await removedAny;
  const acl = session.getAcl("/x");
  client.answer(
    "getACL",
    toClientAcl("creator_all_world_read").map((a) => {
      const entry = a as {
        permission: number;
        id: { scheme: string; id: string };
      };
      return entry.id.scheme === "auth"
        ? { ...entry, id: { scheme: "digest", id: "u:h" } }
        : entry;
    }),
    clientStat({ version: 1 }),
  );
  assert.deepEqual((await acl).acl, [
    {
      scheme: "digest",
      id: "u:h",
      permissions: ["read", "write", "create", "delete", "admin"],
    },
    { scheme: "world", id: "anyone", permissions: ["read"] },
  ]);
  const setAcl = session.setAcl("/x", "open", 2);
  assert.deepEqual(client.next("setACL").args, [toClientAcl("open"), 2]);
  client.answer("setACL", clientStat({ version: 8 }));
  assert.equal((await setAcl).version, 8);
  const setAnyAcl = session.setAcl("/x", "creator_all");
  assert.deepEqual(client.next("setACL").args, [
    toClientAcl("creator_all"),
    -1,
  ]);
  client.answer("setACL", clientStat());
  await setAnyAcl;
  await assert.rejects(session.setAcl("/x", []), TypeError);
  await session.close();
});

Deno.test("session: mkdirp creates each missing ancestor in order, skips existing ones, and stops at another error", async () => {
  const { session, client } = await open();
  const made = session.mkdirp("/a/b/c", { acl: "creator_all" });
  await sent(client, "create");
  assert.equal(client.next("create").path, "/a");
  assert.deepEqual(client.next("create").args, [
    toClientAcl("creator_all"),
    toClientMode("persistent"),
  ]);
  client.fail("create", "NODE_EXISTS");
  await sent(client, "create", 2);
  assert.equal(client.next("create").path, "/a/b");
  client.answer("create", "/a/b");
  await sent(client, "create", 3);
  assert.equal(client.next("create").path, "/a/b/c");
  client.answer("create", "/a/b/c");
  await within(made, 1000, "mkdirp");
  const open2 = session.mkdirp("/p/q");
  await sent(client, "create", 4);
  assert.deepEqual(client.next("create").args, [
    toClientAcl("open"),
    toClientMode("persistent"),
  ]);
  client.fail("create", "NO_AUTH");
  await assert.rejects(within(open2, 1000, "mkdirp"), code("NO_AUTH"));
  assert.equal(client.pending("create").length, 0);
  assert.equal(client.calls.length, 4);
  await assert.rejects(
    session.mkdirp("p/q"),
    (e) =>
      e instanceof TypeError &&
      e.message === 'Cannot create: invalid path "p/q"',
  );
  await session.close();
});

Deno.test("session: a lost connection is reported once, operations wait for the reconnection and are sent then", async () => {
  const { session, client } = await open();
  const seen = events(
    session,
    "connected",
    "disconnected",
    "expired",
    "closed",
  );
  client.setState(CM_DISCONNECTED);
  client.setState(CM_CONNECTING);
  assert.equal(session.state, "disconnected");
  assert.deepEqual(seen, ["disconnected"]);
  const read = session.getChildren("/x");
  const write = session.create("/y");
  assert.equal(client.calls.length, 0); // held
  client.connected();
  assert.equal(session.state, "connected");
  assert.deepEqual(seen, ["disconnected", "connected"]);
  assert.deepEqual(client.calls.map((c) => c.op), ["getChildren", "create"]);
  client.answer("getChildren", ["a"]);
  client.answer("create", "/y");
  assert.deepEqual(await read, ["a"]);
  assert.equal(await write, "/y");
  // Connecting from the disconnected state again: no second event.
  client.setState(CM_CONNECTING);
  client.setState(CM_CONNECTING);
  assert.deepEqual(seen, ["disconnected", "connected", "disconnected"]);
  client.connected();
  await session.close();
  assert.deepEqual(seen, [
    "disconnected",
    "connected",
    "disconnected",
    "connected",
    "closed",
  ]);
});

Deno.test("session: an operation rejects with TIMEOUT after operationTimeout, saying whether it was sent", async () => {
  const { session, client } = await open({ operationTimeout: 100 });
  const unanswered = session.getData("/x");
  const error = await within(
    unanswered.then(() => undefined, (e) => e),
    1000,
    "the timeout",
  );
  assert.ok(isZooKeeperError(error, "TIMEOUT"));
  assert.match(
    error.message,
    /^Cannot read "\/x": no answer from ZooKeeper within 100 ms: /,
  );
  assert.equal(error.path, "/x");
  client.answer("getData", new TextEncoder().encode("late"), clientStat()); // ignored
  client.setState(CM_DISCONNECTED);
  const unsent = session.exists("/y");
  const error2 = await within(
    unsent.then(() => undefined, (e) => e),
    1000,
    "the timeout",
  );
  assert.ok(isZooKeeperError(error2, "TIMEOUT"));
  assert.match(
    error2.message,
    /^Cannot check "\/y": not connected to ZooKeeper for 100 ms; the request was not sent/,
  );
  client.connected();
  assert.equal(client.pending("exists").length, 0); // never sent
  await session.close();
});

Deno.test("session: an expiry rejects pending and later operations with SESSION_EXPIRED, reports expired once, and releases the client", async () => {
  const { session, client } = await open();
  const seen = events(
    session,
    "connected",
    "disconnected",
    "expired",
    "closed",
  );
  const pending = failure(session.getData("/x"));
  client.setState(CM_DISCONNECTED);
  const waiting = failure(session.getData("/y"));
  client.setState(CM_SESSION_EXPIRED);
  assert.equal(session.state, "expired");
  for (const operation of [pending, waiting]) {
    const error = await operation;
    assert.ok(isZooKeeperError(error, "SESSION_EXPIRED"));
    assert.match(error.message, /^Cannot read "\/[xy]": /);
    assert.match(
      (error.cause as Error).message,
      /^Cannot use ZooKeeper session 0x0123456789abcdef: /,
    );
  }
  await waitFor(() => client.sockets[0]!.destroyed, "the socket released");
  assert.equal(client.released, true);
  const calls = client.calls.length;
  await assert.rejects(
    session.exists("/z"),
    (e) => isZooKeeperError(e, "SESSION_EXPIRED") && e.path === "/z",
  );
  assert.equal(client.calls.length, calls);
  // Whatever the client says next, the session stays expired.
  client.connected();
  client.setState(CM_CLOSED);
  assert.equal(session.state, "expired");
  assert.deepEqual(seen, ["disconnected", "expired"]);
  // close() after the expiry: closed, without asking the server.
  await session.close();
  assert.equal(session.state, "closed");
  assert.deepEqual(seen, ["disconnected", "expired", "closed"]);
  assert.equal(client.closes, 0);
  await session.close();
  assert.deepEqual(seen, ["disconnected", "expired", "closed"]);
});

Deno.test("session: credentials rejected on a reconnection close the session with AUTH_FAILED", async () => {
  const { session, client } = await open({ auth: "u:p" });
  const seen = events(session, "expired", "closed");
  const pending = session.getData("/x");
  client.setState(CM_AUTH_FAILED);
  assert.equal(session.state, "closed");
  assert.deepEqual(seen, ["closed"]);
  const error = await pending.then(() => undefined, (e) => e);
  assert.ok(isZooKeeperError(error, "AUTH_FAILED"));
  assert.match(
    (error.cause as Error).message,
    /^Cannot use ZooKeeper session at 127\.0\.0\.1:2181: /,
  );
  await waitFor(() => client.sockets[0]!.destroyed, "the socket released");
  await assert.rejects(session.getData("/x"), code("CLOSED"));
  await session.close();
  assert.deepEqual(seen, ["closed"]);
});

Deno.test("session: the client closing by itself closes the session with CLOSED", async () => {
  const { session, client } = await open();
  const seen = events(session, "expired", "closed");
  const pending = session.getData("/x");
  client.setState(CM_CLOSED);
  assert.equal(session.state, "closed");
  assert.deepEqual(seen, ["closed"]);
  await assert.rejects(pending, code("CLOSED"));
  await session.close();
  assert.deepEqual(seen, ["closed"]);
});

Deno.test("session: close ends the session at the server, rejects pending operations with CLOSED, and is idempotent", async () => {
  const { session, client } = await open();
  const seen = events(session, "closed");
  const pending = failure(session.getData("/x"));
  const closing = session.close();
  assert.equal(session.close(), closing);
  await within(closing, 1000, "close");
  assert.equal(session.state, "closed");
  assert.deepEqual(seen, ["closed"]);
  assert.equal(client.closes, 1);
  assert.equal(client.sockets[0]!.destroyed, true);
  const error = await pending;
  assert.ok(isZooKeeperError(error, "CLOSED"));
  assert.match(error.message, /^Cannot read "\/x": /);
  assert.equal(error.path, "/x");
  assert.match(
    (error.cause as Error).message,
    /^Cannot use ZooKeeper session 0x0123456789abcdef: /,
  );
  await assert.rejects(
    session.create("/y"),
    (e) => isZooKeeperError(e, "CLOSED") && e.path === "/y",
  );
  assert.equal(client.calls.length, 1);
  await session[Symbol.asyncDispose]();
  assert.deepEqual(seen, ["closed"]);
  assert.equal(client.closes, 1);
  // Closed, it ignores what the client says next.
  client.connected();
  client.setState(CM_DISCONNECTED);
  client.setState(CM_SESSION_EXPIRED);
  assert.equal(session.state, "closed");
  assert.deepEqual(seen, ["closed"]);
  // asyncDispose closes an open session.
  const other = await open();
  await other.session[Symbol.asyncDispose]();
  assert.equal(other.session.state, "closed");
  assert.equal(other.client.closes, 1);
});

Deno.test("session: close during an outage does not ask the server; it releases the socket at once", async () => {
  const { session, client } = await open();
  client.acknowledgeClose = false; // nobody would answer
  client.setState(CM_DISCONNECTED);
  const pending = failure(session.exists("/x"));
  await within(session.close(), 1000, "close during the outage");
  assert.equal(client.closes, 0);
  assert.equal(client.sockets[0]!.destroyed, true);
  assert.equal(session.state, "closed");
  assert.ok(code("CLOSED")(await pending));
  // The client's manager not connected although the session thinks so.
  const second = await open();
  second.client.state = CM_CONNECTING;
  await within(second.session.close(), 1000, "close");
  assert.equal(second.client.closes, 0);
});

Deno.test("session: a one-shot watch is called once per event with the plain event, and the same watcher maps to the same client watcher", async () => {
  const { session, client } = await open();
  const seen: WatchEvent[] = [];
  const watch = (event: WatchEvent) => seen.push(event);
  const read = session.getData("/x", { watch });
  const wrapper = client.next("getData").args[0] as (e: unknown) => void;
  assert.equal(typeof wrapper, "function");
  client.answer("getData", new TextEncoder().encode(""), clientStat());
  await read;
  const again = session.exists("/x", { watch });
  assert.equal(client.next("exists").args[0], wrapper);
  client.answer("exists", clientStat());
  await again;
  const list = session.getChildren("/x", { watch: () => {} });
  assert.notEqual(client.next("getChildren").args[0], wrapper);
  client.answer("getChildren", []);
  await list;
  wrapper({ type: 3, state: 3, path: "/x" });
  wrapper({ type: 4, state: 3, path: "/x" });
  assert.deepEqual(seen, [
    { type: "data_changed", path: "/x" },
    { type: "children_changed", path: "/x" },
  ]);
  await session.close();
  wrapper({ type: 2, state: 3, path: "/x" }); // after close: not called
  assert.equal(seen.length, 2);
});

Deno.test("session: addWatch sends addWatch with its mode; events reach the watchers of the path and the recursive ones above it", async () => {
  const { session, client } = await open();
  const recursive: WatchEvent[] = [];
  const exact: WatchEvent[] = [];
  const onRecursive = (event: WatchEvent) => recursive.push(event);
  const adding = session.addWatch("/a", onRecursive);
  await sent(client, "addWatch");
  const call = client.next("addWatch");
  assert.equal(call.path, "/a");
  assert.deepEqual(call.args, ["persistent_recursive"]);
  client.answer("addWatch");
  const watch = await within(adding, 1000, "addWatch");
  assert.equal(watch.path, "/a");
  assert.equal(watch.mode, "persistent_recursive");
  const addingExact = session.addWatch("/a", (e) => exact.push(e), {
    mode: "persistent",
  });
  await sent(client, "addWatch", 2);
  assert.deepEqual(client.next("addWatch").args, ["persistent"]);
  client.answer("addWatch");
  const exactWatch = await within(addingExact, 1000, "addWatch");
  assert.equal(exactWatch.mode, "persistent");
  // The same watcher again: not called twice.
  const twice = session.addWatch("/a", onRecursive);
  await sent(client, "addWatch", 3);
  client.answer("addWatch");
  await within(twice, 1000, "addWatch");
  client.emit(1, "/a/b");
  client.emit(3, "/a");
  client.emit(2, "/ab"); // not below /a
  client.emit(4, "/a/b/c");
  client.emit(5, "/a/b"); // not a node event
  assert.deepEqual(recursive, [
    { type: "created", path: "/a/b" },
    { type: "data_changed", path: "/a" },
    { type: "children_changed", path: "/a/b/c" },
  ]);
  assert.deepEqual(exact, [{ type: "data_changed", path: "/a" }]);
  // Node events (types 1-4) go on to the client's own watcher manager.
  assert.deepEqual(client.clientEvents.map((e) => e.type), [1, 3, 2, 4]);
  await session.close();
  client.emit(1, "/a/x"); // closed: no watcher runs
  assert.equal(recursive.length, 3);
});

Deno.test("session: a recursive watch on the root gets every event", async () => {
  const { session, client } = await open();
  const seen: string[] = [];
  const adding = session.addWatch("/", (e) => seen.push(e.path));
  await sent(client, "addWatch");
  client.answer("addWatch");
  await within(adding, 1000, "addWatch");
  client.emit(1, "/x");
  client.emit(1, "/x/y");
  assert.deepEqual(seen, ["/x", "/x/y"]);
  await session.close();
});

Deno.test("session: removing a persistent watch asks ZooKeeper only for the last watcher, once, and only while connected", async () => {
  const { session, client } = await open();
  const first = () => {};
  const second = () => {};
  const add = async (watcher: () => void, count: number) => {
    const adding = session.addWatch("/a", watcher);
    await sent(client, "addWatch", count);
    client.answer("addWatch");
    return await within(adding, 1000, "addWatch");
  };
  const one = await add(first, 1);
  const two = await add(second, 2);
  await one.remove();
  assert.equal(client.pending("removeWatches").length, 0); // two still there
  const removing = two.remove();
  assert.equal(two.remove(), removing);
  await sent(client, "removeWatches");
  const call = client.next("removeWatches");
  assert.equal(call.path, "/a");
  assert.deepEqual(call.args, ["persistent_recursive"]); // the default mode
  client.fail("removeWatches", "NO_NODE"); // never rejects
  await within(removing, 1000, "remove");
  await two[Symbol.asyncDispose]();
  assert.equal(client.calls.filter((c) => c.op === "removeWatches").length, 1);
  // While disconnected: nothing to ask (gone with the connection).
  const three = await add(first, 3);
  client.setState(CM_DISCONNECTED);
  await within(three.remove(), 1000, "remove while disconnected");
  client.connected();
  assert.equal(client.calls.filter((c) => c.op === "removeWatches").length, 1);
  await session.close();
});

Deno.test("session: an addWatch that fails (UNIMPLEMENTED) rejects and leaves no watcher behind, unless it was there before", async () => {
  const { session, client } = await open();
  const seen: string[] = [];
  const watcher = (e: WatchEvent) => seen.push(e.path);
  const adding = session.addWatch("/a", watcher);
  await sent(client, "addWatch");
  client.fail("addWatch", "UNIMPLEMENTED");
  const error = await adding.then(() => undefined, (e) => e);
  assert.ok(isZooKeeperError(error, "UNIMPLEMENTED"));
  assert.match(error.message, /^Cannot watch "\/a": /);
  client.emit(1, "/a/b");
  assert.deepEqual(seen, []);
  // Armed, then armed again on a reconnection that fails: still armed.
  const armed = session.addWatch("/a", watcher);
  await sent(client, "addWatch", 2);
  client.answer("addWatch");
  await within(armed, 1000, "addWatch");
  const rearm = session.addWatch("/a", watcher);
  await sent(client, "addWatch", 3);
  client.fail("addWatch", "CONNECTION_LOSS");
  await assert.rejects(rearm, code("CONNECTION_LOSS"));
  client.emit(1, "/a/c");
  assert.deepEqual(seen, ["/a/c"]);
  // A malformed mode or watcher: TypeError, nothing sent.
  await assert.rejects(
    session.addWatch("/a", watcher, { mode: "children" as "persistent" }),
    (e) => e instanceof TypeError && /mode must be/.test(e.message),
  );
  await assert.rejects(
    session.addWatch("/a", 42 as unknown as () => void),
    (e) => e instanceof TypeError && /watch must be a function/.test(e.message),
  );
  assert.equal(client.calls.length, 3);
  await session.close();
});

Deno.test("session: a watcher that throws is reported and the others still run", async () => {
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    reported.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const { session, client } = await open();
    const boom = new Error("watcher failed");
    const seen: string[] = [];
    for (
      const watcher of [() => {
        throw boom;
      }, (e: WatchEvent) => seen.push(e.path)]
    ) {
      const adding = session.addWatch("/a", watcher);
      await sent(client, "addWatch", client.calls.length);
      client.answer("addWatch");
      await within(adding, 1000, "addWatch");
    }
    client.emit(1, "/a/b");
    assert.deepEqual(reported, [boom]);
    assert.deepEqual(seen, ["/a/b"]);
    await session.close();
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("session: a connection string the client cannot use rejects with a TypeError naming it", async () => {
  const made = fakeClients.length;
  await assert.rejects(
    ZooKeeperSession.connect("unparsable.invalid:2181"),
    (e) =>
      e instanceof TypeError &&
      e.message ===
        'Cannot connect to ZooKeeper: invalid connection string "unparsable.invalid:2181"' &&
      (e.cause as Error).message === "Invalid connection string",
  );
  assert.equal(fakeClients.length, made);
});

Deno.test("session: a signal that times out rejects the connect with its own reason, not TIMEOUT", async () => {
  const signal = AbortSignal.timeout(50);
  const connecting = ZooKeeperSession.connect(HOSTS, { signal });
  const client = lastClient();
  const error = await within(failure(connecting), 1000, "the abort");
  assert.equal(error, signal.reason);
  assert.ok(!isZooKeeperError(error));
  assert.equal(client.released, true);
});

Deno.test("session: each operation's errors name it and its path", async () => {
  const { session, client } = await open();
  const cases: [string, () => Promise<unknown>, string][] = [
    ["create", () => session.create("/n"), 'Cannot create "/n"'],
    ["getData", () => session.getData("/n"), 'Cannot read "/n"'],
    ["setData", () => session.setData("/n", "v"), 'Cannot write "/n"'],
    ["getChildren", () => session.getChildren("/n"), 'Cannot list "/n"'],
    ["exists", () => session.exists("/n"), 'Cannot check "/n"'],
    ["getACL", () => session.getAcl("/n"), 'Cannot read the ACL of "/n"'],
    [
      "setACL",
      () => session.setAcl("/n", "open"),
      'Cannot set the ACL of "/n"',
    ],
    ["remove", () => session.delete("/n"), 'Cannot delete "/n"'],
  ];
  for (const [op, run, what] of cases) {
    const result = failure(run());
    client.fail(op, "NO_AUTH");
    const error = await result;
    assert.ok(isZooKeeperError(error, "NO_AUTH"), op);
    assert.ok(
      error.message.startsWith(`${what}: `),
      `${op}: ${error.message}`,
    );
    assert.equal(error.path, "/n");
  }
  await session.close();
});
