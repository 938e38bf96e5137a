/**
 * Unit tests of `src/zookeeper/registration.ts` against the in-memory
 * ZooKeeper of `_fake_zookeeper.ts`: the ephemeral sequential member node
 * and its data, one node per session (a node whose create reply was lost is
 * adopted, an earlier session's is replaced), re-registration after an
 * expiry and after someone else deleted the node, data restored, withdraw
 * and restore, close (also while ZooKeeper is away), transient failures
 * retried and permanent ones final. No I/O: the mutation runner's tests for
 * `registration`. The same behaviours against a real ZooKeeper are in
 * discovery_test.ts and discovery_security_test.ts (the system layer).
 *
 * @module
 */
import assert from "node:assert/strict";
import { ZooKeeperRegistration } from "../../src/zookeeper/registration.ts";
import { encodeMember, type MemberData } from "../../src/discovery/member.ts";
import { isZooKeeperError } from "../../src/zookeeper/errors.ts";
import { nextEvent, stillPending, waitFor, within } from "../_wait.ts";
import { delay } from "../_core_helpers.ts";
import { FakeKeeper, FakeZooKeeper } from "./_fake_zookeeper.ts";

const SERVICE = "/rpc/calc";
const MEMBER: MemberData = { host: "127.0.0.1", port: 9001, weight: 2 };
const NODE = /^\/rpc\/calc\/server-u1-\d{10}$/;
const ME = "zkrpc:hash";

function setup(
  options: { start?: boolean; authIds?: string[]; id?: string | null } = {},
) {
  const zk = new FakeZooKeeper();
  zk.createNode("/rpc", undefined);
  const keeper = new FakeKeeper(zk, {
    start: options.start ?? true,
    authIds: options.authIds ?? [],
  });
  const logs: string[] = [];
  const make = (
    extra: { acl?: "open" | "creator_all_world_read" } = {},
  ) =>
    new ZooKeeperRegistration(keeper.real, SERVICE, MEMBER, {
      ...(options.id === null ? {} : { id: options.id ?? "u1" }),
      log: (message) => logs.push(message),
      ...extra,
    });
  return { zk, keeper, logs, make };
}

function registered(registration: ZooKeeperRegistration): Promise<string> {
  return within(registration.registered(), 2000, "the registration");
}

/** The next `"registered"` event's path. */
async function nextRegistered(
  registration: ZooKeeperRegistration,
): Promise<string> {
  const event = await nextEvent<CustomEvent<string>>(
    registration,
    "registered",
    2000,
  );
  return event.detail;
}

/**
 * Lets every queued microtask and due 0 ms timer run: the fake ZooKeeper
 * answers in microtasks, so whatever an event started is done by then
 * (a back-off timer is not).
 */
function flush(): Promise<boolean> {
  return stillPending(new Promise<never>(() => {}));
}

function members(zk: FakeZooKeeper): string[] {
  return zk.children(SERVICE).map((name) => `${SERVICE}/${name}`);
}

Deno.test("registration: one ephemeral sequential node named server-<id>-<sequence>, with the member's data, owned by the session", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const event = nextRegistered(registration);
  const path = await registered(registration);
  assert.match(path, NODE);
  assert.equal(await event, path);
  assert.equal(registration.nodePath, path);
  assert.equal(registration.lastError, undefined);
  assert.deepEqual(members(zk), [path]);
  const node = zk.nodes.get(path)!;
  assert.equal(node.ephemeralOwner, keeper.session!.sessionId);
  assert.deepEqual(node.data, encodeMember(MEMBER));
  assert.equal(zk.nodes.get(SERVICE)!.ephemeralOwner, undefined); // persistent
  assert.deepEqual(zk.ops.map((r) => `${r.op} ${r.path}`), [
    "create /rpc", // NODE_EXISTS
    `create ${SERVICE}`,
    `getChildren ${SERVICE}`,
    `create ${SERVICE}/server-u1-`,
    `exists ${path}`, // the watch on the node
  ]);
  await registration.close();
});

Deno.test("registration: without an id each registration gets its own random one", async () => {
  const { zk, make } = setup({ id: null });
  const one = make();
  const two = make();
  const [a, b] = await Promise.all([registered(one), registered(two)]);
  const uuid = /^\/rpc\/calc\/server-[0-9a-f-]{36}-\d{10}$/;
  assert.match(a, uuid);
  assert.match(b, uuid);
  assert.notEqual(a.slice(0, -10), b.slice(0, -10));
  assert.equal(members(zk).length, 2);
  await one.close();
  await two.close();
});

Deno.test("registration: a registration made while a session is connected starts at once; without one it waits for the first", async () => {
  const { zk, keeper, make } = setup({ start: false });
  const registration = make();
  assert.ok(await stillPending(registration.registered()));
  assert.equal(zk.ops.length, 0);
  assert.equal(registration.nodePath, undefined);
  keeper.lastError = new Error("connection refused");
  assert.equal(registration.lastError, keeper.lastError);
  keeper.start();
  assert.match(await registered(registration), NODE);
  assert.equal(registration.lastError, undefined);
  await registration.close();
});

Deno.test("registration: a reconnection of the same session adopts the node it has: no second node, no new registered event", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const path = await registered(registration);
  let events = 0;
  registration.addEventListener("registered", () => events++);
  keeper.disconnect();
  keeper.reconnect();
  await waitFor(() => zk.count("getChildren") === 2, {
    what: "the check after the reconnection",
    timeout: 2000,
  });
  await waitFor(() => zk.count("exists", path) === 3, {
    what: "the node watched again",
    timeout: 2000,
  });
  assert.equal(events, 0);
  assert.equal(registration.nodePath, path);
  assert.deepEqual(members(zk), [path]);
  assert.equal(zk.count("create", `${SERVICE}/server-u1-`), 1);
  assert.equal(zk.count("delete"), 0);
  assert.equal(zk.count("setData"), 0);
  await registration.close();
});

Deno.test("registration: after an expiry it registers again on the new session, one node owned by it", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const first = await registered(registration);
  keeper.expire();
  assert.deepEqual(members(zk), []); // ephemeral: gone with its session
  const next = nextRegistered(registration);
  const session = keeper.start();
  const second = await next;
  assert.match(second, NODE);
  assert.notEqual(second, first);
  assert.equal(registration.nodePath, second);
  assert.deepEqual(members(zk), [second]);
  assert.equal(zk.nodes.get(second)!.ephemeralOwner, session.sessionId);
  assert.equal(await registration.registered(), first); // the first one
  await registration.close();
});

Deno.test("registration: a create whose reply was lost is found by its id and adopted, never duplicated", async () => {
  const { zk, keeper, make } = setup();
  zk.failNext("create", "CONNECTION_LOSS", {
    path: (p) => p.startsWith(`${SERVICE}/server-`),
    applied: true,
  });
  const registration = make();
  await waitFor(() => registration.lastError !== undefined, {
    what: "the failed create",
    timeout: 2000,
  });
  assert.ok(isZooKeeperError(registration.lastError, "CONNECTION_LOSS"));
  assert.equal(registration.nodePath, undefined);
  const [lost] = members(zk);
  const path = await registered(registration); // after the back-off
  assert.equal(path, lost);
  assert.deepEqual(members(zk), [path]);
  assert.equal(zk.nodes.get(path)!.ephemeralOwner, keeper.session!.sessionId);
  assert.equal(zk.count("create", `${SERVICE}/server-u1-`), 1);
  await waitFor(() => registration.lastError === undefined, {
    what: "the error cleared once watched",
    timeout: 2000,
  });
  await registration.close();
});

Deno.test("registration: a node with its id left by an earlier session is deleted and replaced; other servers' nodes are left alone", async () => {
  const { zk, keeper, make } = setup();
  zk.createNode(SERVICE, undefined);
  const stale = zk.createNode(`${SERVICE}/server-u1-`, encodeMember(MEMBER), {
    owner: "00000000000000ee",
    sequential: true,
  });
  const other = zk.createNode(`${SERVICE}/server-u2-`, encodeMember(MEMBER), {
    owner: "00000000000000ee",
    sequential: true,
  });
  zk.setNodeData(stale, encodeMember(MEMBER)); // version 1
  const registration = make();
  const path = await registered(registration);
  assert.notEqual(path, stale);
  assert.deepEqual(members(zk), [other, path].sort());
  assert.equal(zk.nodes.get(path)!.ephemeralOwner, keeper.session!.sessionId);
  assert.equal(zk.count("delete", stale), 1);
  assert.equal(zk.count("delete", other), 0);
  await registration.close();
});

Deno.test("registration: a stale node that vanished meanwhile is not an error", async () => {
  const { zk, make } = setup();
  zk.createNode(SERVICE, undefined);
  const stale = zk.createNode(`${SERVICE}/server-u1-`, encodeMember(MEMBER), {
    owner: "00000000000000ee",
    sequential: true,
  });
  zk.failNext("delete", "NO_NODE", { path: stale, applied: true });
  const registration = make();
  const path = await registered(registration);
  assert.deepEqual(members(zk), [path]);
  assert.equal(zk.count("create", `${SERVICE}/server-u1-`), 1);
  assert.equal(zk.count("getChildren"), 1); // not a failure: no retry
  await registration.close();
});

Deno.test("registration: a node listed but gone when checked is skipped", async () => {
  const { zk, make } = setup();
  zk.createNode(SERVICE, undefined);
  const stale = zk.createNode(`${SERVICE}/server-u1-`, encodeMember(MEMBER), {
    owner: "00000000000000ee",
    sequential: true,
  });
  const list = zk.hold("getChildren", SERVICE);
  const registration = make();
  await list.reached();
  zk.deleteNode(stale); // after the list named it
  list.release();
  const path = await registered(registration);
  assert.deepEqual(members(zk), [path]);
  assert.equal(zk.count("delete"), 0);
  await registration.close();
});

Deno.test("registration: a node deleted by someone else while the session lives is recreated once, with a log line", async () => {
  const { zk, make, logs } = setup();
  const registration = make();
  const first = await registered(registration);
  const next = nextRegistered(registration);
  zk.deleteNode(first);
  const second = await next;
  assert.match(second, NODE);
  assert.notEqual(second, first);
  assert.deepEqual(members(zk), [second]);
  assert.equal(registration.nodePath, second);
  assert.equal(logs.length, 1);
  assert.match(
    logs[0]!,
    /member node "\/rpc\/calc\/server-u1-0000000000" was deleted while its session lives.*registering again/,
  );
  // The new node is watched too.
  const third = nextRegistered(registration);
  zk.deleteNode(second);
  assert.notEqual(await third, second);
  assert.equal(members(zk).length, 1);
  await registration.close();
});

Deno.test("registration: data changed by someone else is written back, same node, with a log line", async () => {
  const { zk, keeper, make, logs } = setup();
  const registration = make();
  const path = await registered(registration);
  let events = 0;
  registration.addEventListener("registered", () => events++);
  zk.setNodeData(
    path,
    new TextEncoder().encode('{"host":"10.6.6.6","port":1}'),
  );
  await waitFor(() => zk.count("setData", path) === 1, {
    what: "the data restored",
    timeout: 2000,
  });
  assert.deepEqual(zk.nodes.get(path)!.data, encodeMember(MEMBER));
  assert.equal(logs.length, 1);
  assert.match(
    logs[0]!,
    /the data of member node "\/rpc\/calc\/server-u1-\d+" was changed by another client; restoring it/,
  );
  assert.deepEqual(members(zk), [path]);
  assert.equal(events, 0);
  // Restored once: a later check of the node does not write again, and the
  // node is watched again.
  await waitFor(() => zk.count("exists", path) === 3, {
    what: "the node watched again",
    timeout: 2000,
  });
  zk.setNodeData(path, new TextEncoder().encode("{}"));
  await waitFor(() => zk.count("setData", path) === 2, {
    what: "the second restore",
    timeout: 2000,
  });
  assert.deepEqual(zk.nodes.get(path)!.data, encodeMember(MEMBER));
  // Written back only when changed: a reconnection does not write.
  keeper.disconnect();
  keeper.reconnect();
  await waitFor(() => zk.count("exists", path) === 7, {
    what: "the check after the reconnection",
    timeout: 2000,
  });
  assert.equal(zk.count("setData", path), 2);
  await registration.close();
});

Deno.test("registration: a node gone before its watch was armed is registered again at once", async () => {
  const { zk, make, logs } = setup();
  const create = zk.hold("create", (p) => p.startsWith(`${SERVICE}/server-`));
  const registration = make();
  await create.reached();
  const [first] = members(zk); // created, its reply held
  const paths: string[] = [];
  registration.addEventListener("registered", (event) => {
    paths.push((event as CustomEvent<string>).detail);
  });
  zk.deleteNode(first!); // no watch armed yet: no event
  create.release();
  assert.equal(await registered(registration), first);
  await waitFor(() => paths.length === 2, {
    what: "the second node",
    timeout: 2000,
  });
  const path = paths[1]!;
  assert.equal(paths[0], first);
  assert.notEqual(path, first);
  assert.deepEqual(members(zk), [path]);
  assert.equal(logs.length, 1);
  assert.match(
    logs[0]!,
    /^zkrpc: member node "\/rpc\/calc\/server-u1-0000000000" disappeared right after registering; registering again$/,
  );
  await registration.close();
});

Deno.test("registration: a transient failure is retried with back-off while the session is connected", async () => {
  const { zk, make } = setup();
  zk.failNext("getChildren", "CONNECTION_LOSS");
  zk.failNext("getChildren", "OPERATION_TIMEOUT");
  const registration = make();
  await waitFor(() => registration.lastError !== undefined, {
    what: "the first failure",
    timeout: 2000,
  });
  assert.ok(isZooKeeperError(registration.lastError, "CONNECTION_LOSS"));
  await waitFor(
    () => isZooKeeperError(registration.lastError, "OPERATION_TIMEOUT"),
    { what: "the second failure", timeout: 2000 },
  );
  assert.match(await registered(registration), NODE);
  assert.equal(zk.count("getChildren"), 3);
  await waitFor(() => registration.lastError === undefined, {
    what: "the error cleared once watched",
    timeout: 2000,
  });
  await registration.close();
});

Deno.test("registration: a failure while disconnected waits for the reconnection instead of a timer", async () => {
  const { zk, keeper, make } = setup();
  const create = zk.hold("create", (p) => p.startsWith(`${SERVICE}/server-`));
  const registration = make();
  await create.reached();
  keeper.disconnect();
  create.release(); // answered with CONNECTION_LOSS
  await waitFor(() => registration.lastError !== undefined, {
    what: "the failure",
    timeout: 2000,
  });
  const count = zk.ops.length;
  // sleep-ok: past the first back-off (at most 300 ms): no retry may come
  await delay(400);
  assert.equal(zk.ops.length, count);
  keeper.reconnect();
  assert.match(await registered(registration), NODE);
  assert.equal(members(zk).length, 1);
  await registration.close();
});

Deno.test("registration: a permanent failure (NO_AUTH) stops for good: error event, registered() rejects, no retry", async () => {
  const { zk, keeper, make } = setup();
  zk.failNext("create", "NO_AUTH", {
    path: (p) => p.startsWith(`${SERVICE}/server-`),
  });
  const registration = make();
  const event = nextEvent<CustomEvent<Error>>(registration, "error", 2000);
  const error = (await event).detail;
  assert.match(error.message, /^Cannot register under "\/rpc\/calc": /);
  assert.ok(isZooKeeperError(error.cause, "NO_AUTH"));
  await assert.rejects(registration.registered(), (e) => e === error);
  assert.equal(registration.lastError, error);
  assert.equal(registration.nodePath, undefined);
  let errors = 0;
  registration.addEventListener("error", () => errors++);
  const count = zk.ops.length;
  keeper.disconnect();
  keeper.reconnect();
  keeper.expire();
  keeper.start();
  await flush();
  assert.equal(zk.ops.length, count); // never tries again
  assert.deepEqual(members(zk), []);
  keeper.fail(new Error("gave up")); // failed already: no second error
  assert.equal(errors, 0);
  assert.equal(registration.lastError, error);
  await registration.close();
});

Deno.test("registration: a keeper that gives up fails the registration with the keeper's cause, later or already", async () => {
  const { keeper, make } = setup({ start: false });
  const registration = make();
  await flush(); // settled in waiting for a session
  const failure = new Error("unknown host zk.invalid");
  const event = nextEvent<CustomEvent<Error>>(registration, "error", 2000);
  keeper.fail(failure);
  const error = (await event).detail;
  assert.equal(error.cause, failure);
  assert.equal(
    error.message,
    'Cannot register under "/rpc/calc": unknown host zk.invalid',
  );
  await assert.rejects(registration.registered(), (e) => e === error);
  assert.equal(registration.lastError, error);
  await registration.close();
  // A keeper that had given up before the registration was made.
  const late = make();
  const lateError = (await nextEvent<CustomEvent<Error>>(late, "error", 2000))
    .detail;
  assert.equal(lateError.cause, failure);
  await assert.rejects(late.registered(), (e) => e === lateError);
  await late.close();
});

Deno.test("registration: withdraw deletes the node and keeps it away across reconnections and sessions until restore registers again", async () => {
  const { zk, keeper, make, logs } = setup();
  const registration = make();
  const first = await registered(registration);
  await registration.withdraw();
  assert.deepEqual(members(zk), []);
  assert.equal(registration.nodePath, undefined);
  await registration.withdraw(); // idempotent
  assert.equal(zk.count("delete", first), 1);
  await flush();
  assert.deepEqual(logs, []); // its own deletion is no news
  const count = zk.count("create", `${SERVICE}/server-u1-`);
  keeper.disconnect();
  keeper.reconnect();
  keeper.expire();
  keeper.start();
  await flush();
  assert.equal(zk.count("create", `${SERVICE}/server-u1-`), count);
  const next = nextRegistered(registration);
  registration.restore();
  const second = await next;
  assert.match(second, NODE);
  assert.deepEqual(members(zk), [second]);
  assert.equal(registration.nodePath, second);
  await waitFor(() => zk.count("exists", second) === 1, {
    what: "the new node watched",
    timeout: 2000,
  });
  const ops = zk.ops.length;
  registration.restore(); // not withdrawn: nothing to do
  await flush();
  assert.equal(zk.ops.length, ops);
  assert.equal(zk.count("create", `${SERVICE}/server-u1-`), count + 1);
  // Withdrawn and restored, it still follows the keeper's sessions.
  const third = nextRegistered(registration);
  keeper.expire();
  keeper.start();
  assert.notEqual(await third, second);
  await registration.close();
});

Deno.test("registration: withdraw while ZooKeeper is away resolves at once and deletes the node once it answers, without registering again", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const path = await registered(registration);
  keeper.disconnect();
  await within(registration.withdraw(), 2000, "withdraw while away");
  assert.deepEqual(members(zk), [path]); // not yet
  keeper.reconnect();
  await waitFor(() => members(zk).length === 0, {
    what: "the node deleted",
    timeout: 2000,
  });
  assert.equal(zk.count("create", `${SERVICE}/server-u1-`), 1);
  await registration.close();
});

Deno.test("registration: withdraw during a create deletes the node being created", async () => {
  const { zk, make } = setup();
  const create = zk.hold("create", (p) => p.startsWith(`${SERVICE}/server-`));
  const registration = make();
  await create.reached();
  const withdrawn = registration.withdraw();
  create.release();
  await within(withdrawn, 2000, "withdraw");
  assert.deepEqual(members(zk), []);
  assert.equal(registration.nodePath, undefined);
  await registration.close();
});

Deno.test("registration: close deletes the node, rejects a pending registered(), and never registers again", async () => {
  const { zk, keeper, make, logs } = setup();
  const registration = make();
  const path = await registered(registration);
  assert.equal(keeper.listeners("session") + keeper.listeners("connected"), 2);
  await registration.close();
  assert.equal(keeper.listeners("session") + keeper.listeners("connected"), 0);
  await flush();
  assert.deepEqual(logs, []); // its own deletion is no news
  assert.deepEqual(members(zk), []);
  assert.equal(zk.count("delete", path), 1);
  assert.equal(registration.nodePath, undefined);
  await registration.close(); // idempotent
  await registration.deregister();
  assert.equal(zk.count("delete", path), 1);
  const count = zk.ops.length;
  keeper.disconnect();
  keeper.reconnect();
  keeper.expire();
  keeper.start();
  registration.restore();
  await registration.withdraw();
  await flush();
  assert.equal(zk.ops.length, count); // stopped listening

  const { make: makeAway } = setup({ start: false });
  const never = makeAway();
  await never.close();
  await assert.rejects(never.registered(), /the registration was closed/);
});

Deno.test("registration: close finds its node already gone (NO_NODE): done, it stops listening", async () => {
  const { zk, keeper, make, logs } = setup();
  const registration = make();
  const path = await registered(registration);
  zk.failNext("delete", "NO_NODE", { path, applied: true });
  await registration.close();
  assert.deepEqual(members(zk), []);
  const count = zk.ops.length;
  keeper.disconnect();
  keeper.reconnect();
  await flush();
  assert.equal(zk.ops.length, count);
  assert.deepEqual(logs, []);
});

Deno.test("registration: close during a create lets it finish, then deletes that node", async () => {
  const { zk, make } = setup();
  const create = zk.hold("create", (p) => p.startsWith(`${SERVICE}/server-`));
  const registration = make();
  let events = 0;
  registration.addEventListener("registered", () => events++);
  await create.reached();
  const closed = registration.close();
  create.release();
  await within(closed, 2000, "close");
  assert.deepEqual(members(zk), []);
  assert.equal(events, 0);
  await assert.rejects(registration.registered(), /closed/);
});

Deno.test("registration: close while ZooKeeper is away returns at once and deletes the node when it answers again", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const path = await registered(registration);
  keeper.disconnect();
  await within(registration.close(), 2000, "close while away");
  assert.deepEqual(members(zk), [path]);
  keeper.reconnect();
  await waitFor(() => members(zk).length === 0, {
    what: "the node deleted",
    timeout: 2000,
  });
  // Done: it stopped listening.
  const count = zk.ops.length;
  keeper.disconnect();
  keeper.reconnect();
  await flush();
  assert.equal(zk.ops.length, count);
});

Deno.test("registration: close with an aborted signal does not wait for the delete; the node goes at the next connection", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const path = await registered(registration);
  await registration.close(AbortSignal.abort());
  assert.deepEqual(members(zk), [path]);
  keeper.disconnect();
  keeper.reconnect();
  await waitFor(() => members(zk).length === 0, {
    what: "the node deleted",
    timeout: 2000,
  });
});

Deno.test("registration: a node left by close in an expired session is not deleted by the next session", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const path = await registered(registration);
  keeper.disconnect();
  await registration.close();
  keeper.expire(); // the node goes with its session
  const other = zk.createNode(`${SERVICE}/server-u9-`, encodeMember(MEMBER), {
    owner: "00000000000000ee",
    sequential: true,
  });
  keeper.start();
  await flush();
  assert.ok(!zk.nodes.has(path));
  assert.deepEqual(members(zk), [other]);
  assert.equal(zk.count("delete"), 0);
  // Nothing left to delete: it stopped listening.
  const count = zk.ops.length;
  keeper.expire();
  keeper.start();
  await flush();
  assert.equal(zk.ops.length, count);
});

Deno.test("registration: with an ACL the nodes get it and an open parent is tightened; with none or 'open' no ACL is read", async () => {
  const { zk, make, logs } = setup({ authIds: [ME] });
  const registration = make({ acl: "creator_all_world_read" });
  const path = await registered(registration);
  const expected = [
    {
      scheme: "digest",
      id: ME,
      permissions: ["all"],
    },
    { scheme: "world", id: "anyone", permissions: ["read"] },
  ];
  assert.deepEqual(zk.nodes.get(path)!.acl, expected);
  assert.deepEqual(zk.nodes.get(SERVICE)!.acl, expected);
  assert.ok(zk.count("getAcl", SERVICE) >= 1);
  assert.match(logs.join("\n"), /"\/rpc" was open/);
  await registration.close();

  for (const acl of [undefined, "open"] as const) {
    const fresh = setup({ authIds: [ME] });
    const open = fresh.make(acl === undefined ? {} : { acl });
    const openPath = await registered(open);
    assert.equal(fresh.zk.count("getAcl"), 0);
    assert.deepEqual(fresh.zk.nodes.get(openPath)!.acl, [
      { scheme: "world", id: "anyone", permissions: ["all"] },
    ]);
    await open.close();
  }
});

Deno.test("registration: an open path it may not tighten fails for good, naming the path and the fix", async () => {
  const { zk, make } = setup({ authIds: [ME] });
  zk.createNode(SERVICE, undefined); // open
  zk.failNext("setAcl", "NO_AUTH");
  const registration = make({ acl: "creator_all_world_read" });
  const error =
    (await nextEvent<CustomEvent<Error>>(registration, "error", 2000))
      .detail;
  assert.match(
    error.message,
    /^Cannot register under "\/rpc\/calc": "\/rpc" is open .* may not change its ACL/,
  );
  await assert.rejects(registration.registered(), (e) => e === error);
  await flush();
  assert.equal(zk.count("create", `${SERVICE}/server-u1-`), 0);
  assert.deepEqual(members(zk), []);
  await registration.close();
});

Deno.test("registration: without a log option the notices go to console.warn", async () => {
  const { zk, keeper } = setup();
  const warned: unknown[][] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warned.push(args);
  try {
    const registration = new ZooKeeperRegistration(
      keeper.real,
      SERVICE,
      MEMBER,
      { id: "u1" },
    );
    const first = await registered(registration);
    const next = nextRegistered(registration);
    zk.deleteNode(first);
    await next;
    assert.equal(warned.length, 1);
    assert.match(String(warned[0]![0]), /was deleted while its session lives/);
    await registration.close();
  } finally {
    console.warn = warn;
  }
});

Deno.test("registration: closed during a back-off, it retries no more and leaves no timer", async () => {
  const { zk, make } = setup();
  zk.failNext("getChildren", "CONNECTION_LOSS");
  const registration = make();
  await waitFor(() => registration.lastError !== undefined, {
    what: "the failure",
    timeout: 2000,
  });
  const count = zk.ops.length;
  await registration.close(); // the sanitizer fails a timer left armed
  assert.equal(zk.ops.length, count);
  await assert.rejects(registration.registered(), /closed/);
});

Deno.test("registration: a registration closed before it registered leaves no unhandled rejection, and a keeper failing after close changes nothing", async () => {
  const { keeper, make } = setup({ start: false });
  const registration = make();
  let errors = 0;
  registration.addEventListener("error", () => errors++);
  await registration.close(); // registered() never looked at
  assert.equal(keeper.listeners("session") + keeper.listeners("connected"), 0);
  keeper.fail(new Error("unknown host"));
  await flush();
  assert.equal(errors, 0);
  assert.equal(registration.lastError, keeper.failure); // the keeper's, unwrapped
});

Deno.test("registration: deregister() deletes the node and stops, as close()", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const path = await registered(registration);
  await registration.deregister();
  assert.equal(zk.count("delete", path), 1);
  assert.deepEqual(members(zk), []);
  assert.equal(keeper.listeners("session") + keeper.listeners("connected"), 0);
});

Deno.test("registration: closed after its session expired with a node still to delete, close returns and nothing is deleted", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  const path = await registered(registration);
  keeper.disconnect();
  await registration.withdraw(); // could not delete: ZooKeeper away
  keeper.expire(); // the node goes with its session
  assert.ok(!zk.nodes.has(path));
  await within(registration.close(), 2000, "close without a session");
  keeper.start();
  await flush();
  assert.equal(zk.count("delete"), 1); // the one that failed while away
  assert.equal(keeper.listeners("session") + keeper.listeners("connected"), 0);
});

Deno.test("registration: an earlier session's node it may not delete (NO_AUTH) fails the registration for good", async () => {
  const { zk, make } = setup();
  zk.createNode(SERVICE, undefined);
  const stale = zk.createNode(`${SERVICE}/server-u1-`, encodeMember(MEMBER), {
    owner: "00000000000000ee",
    sequential: true,
  });
  zk.failNext("delete", "NO_AUTH", { path: stale });
  const registration = make();
  const error =
    (await nextEvent<CustomEvent<Error>>(registration, "error", 2000))
      .detail;
  assert.ok(isZooKeeperError(error.cause, "NO_AUTH"));
  assert.deepEqual(members(zk), [stale]);
  await registration.close();
});

Deno.test("registration: restore() while there is no session registers when the next session comes", async () => {
  const { zk, keeper, make } = setup();
  const registration = make();
  await registered(registration);
  await registration.withdraw();
  keeper.expire();
  registration.restore(); // no session now
  await flush();
  assert.equal(registration.lastError, keeper.lastError); // the keeper's
  const next = nextRegistered(registration);
  const session = keeper.start();
  const path = await next;
  assert.deepEqual(members(zk), [path]);
  assert.equal(zk.nodes.get(path)!.ephemeralOwner, session.sessionId);
  await registration.close();
});

Deno.test("registration: withdrawn before it first registered, then restored and closed: one node, deleted", async () => {
  const { zk, make } = setup({ start: false });
  const registration = make();
  await registration.withdraw(); // nothing to delete
  registration.restore();
  await registration.close();
  assert.deepEqual(members(zk), []);
  const { zk: zk2, make: make2 } = setup();
  const second = make2();
  const create = zk2.hold(
    "create",
    (p) => p.startsWith(`${SERVICE}/server-`),
  );
  await create.reached();
  create.release();
  await second.withdraw();
  second.restore();
  const path = await registered(second);
  await within(second.close(), 2000, "close");
  assert.ok(!zk2.nodes.has(path));
  assert.deepEqual(members(zk2), []);
});

Deno.test("registration: an attempt that fails after close() neither retries nor leaves a timer", async () => {
  const { zk, make } = setup();
  zk.failNext("create", "CONNECTION_LOSS", {
    path: (p) => p.startsWith(`${SERVICE}/server-`),
    applied: true,
  });
  const create = zk.hold("create", (p) => p.startsWith(`${SERVICE}/server-`));
  const registration = make();
  await create.reached();
  const closed = registration.close();
  create.release(); // the create fails after close
  await within(closed, 2000, "close");
  assert.equal(registration.lastError, undefined);
  const count = zk.ops.length;
  await flush();
  assert.equal(zk.ops.length, count); // the sanitizer fails a timer left
});
