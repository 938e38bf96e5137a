/**
 * Unit tests of `src/zookeeper/membership.ts` against the in-memory
 * ZooKeeper of `_fake_zookeeper.ts`: the persistent recursive watch, an add
 * costing one read and a remove none, tombstones against late lists and
 * reads, the re-arm and re-list after a reconnection or an expiry, the
 * fallback to child watches on `UNIMPLEMENTED`, unusable member data
 * refused by id, the last list kept while ZooKeeper is away, the shared
 * watch and its end. No I/O: the mutation runner's tests for `membership`.
 * The same behaviours against a real ZooKeeper are in
 * zookeeper_membership_test.ts (the system layer).
 *
 * @module
 */
import assert from "node:assert/strict";
import { ZooKeeperMembership } from "../../src/zookeeper/membership.ts";
import type { MembershipChange } from "../../src/discovery/membership.ts";
import { encodeMember, type MemberData } from "../../src/discovery/member.ts";
import { isZooKeeperError } from "../../src/zookeeper/errors.ts";
import { nextEvent, stillPending, waitFor } from "../_wait.ts";
import { FakeKeeper, FakeZooKeeper } from "./_fake_zookeeper.ts";

const SERVICE = "/rpc/calc";
const OTHER = "00000000000000aa"; // the session of the servers

function data(port: number): MemberData {
  return { host: "127.0.0.1", port };
}

/** A ZooKeeper with the service path and members on `ports`. */
function zooKeeper(ports: number[] = [], options: { path?: boolean } = {}) {
  const zk = new FakeZooKeeper();
  zk.createNode("/rpc", undefined);
  if (options.path ?? true) zk.createNode(SERVICE, undefined);
  const ids = ports.map((port) => join(zk, port));
  return { zk, ids };
}

/** A server joins: its ephemeral sequential node; returns its name. */
function join(zk: FakeZooKeeper, port: number, bytes?: Uint8Array): string {
  const path = zk.createNode(
    `${SERVICE}/server-${port}-`,
    bytes ?? encodeMember(data(port)),
    { owner: OTHER, sequential: true },
  );
  return path.slice(SERVICE.length + 1);
}

function leave(zk: FakeZooKeeper, id: string): void {
  zk.deleteNode(`${SERVICE}/${id}`);
}

/** The membership's change events, ids sorted. */
function record(membership: ZooKeeperMembership) {
  const changes: { added: string[]; removed: string[] }[] = [];
  membership.addEventListener("change", (event) => {
    const { added, removed } = (event as CustomEvent<MembershipChange>).detail;
    changes.push({
      added: [...added.keys()].sort(),
      removed: [...removed].sort(),
    });
  });
  return changes;
}

function stateEvents(membership: ZooKeeperMembership): string[] {
  const states: string[] = [];
  membership.addEventListener("state", () => states.push(membership.state));
  return states;
}

function fresh(membership: ZooKeeperMembership): Promise<void> {
  return waitFor(() => membership.state === "fresh", {
    what: "the membership to be fresh",
    timeout: 1000,
  });
}

function ids(membership: ZooKeeperMembership): string[] {
  return [...membership.members.keys()].sort();
}

Deno.test("membership: the first session arms one persistent recursive watch, lists once and reads each member once", async () => {
  const { zk, ids: members } = zooKeeper([9001, 9002, 9003]);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  const states = stateEvents(membership);
  assert.equal(membership.path, SERVICE);
  assert.equal(membership.source, "ZooKeeper at fake-zookeeper:2181");
  const change = await nextEvent<CustomEvent<MembershipChange>>(
    membership,
    "change",
    2000,
  );
  assert.deepEqual([...change.detail.added.keys()].sort(), [...members].sort());
  assert.deepEqual(change.detail.removed, []);
  assert.equal(membership.state, "fresh");
  assert.equal(membership.watchMode, "persistent");
  assert.deepEqual(states, ["connecting", "fresh"]); // mode, then fresh
  assert.deepEqual(
    new Map(membership.members),
    new Map(members.map((id, i) => [id, data(9001 + i)])),
  );
  assert.deepEqual(zk.persistentWatches(keeper.session), [
    { path: SERVICE, mode: "persistent_recursive" },
  ]);
  assert.deepEqual(zk.ops.map((r) => `${r.op} ${r.path}`), [
    `addWatch ${SERVICE}`,
    `getChildren ${SERVICE}`,
    ...members.map((id) => `getData ${SERVICE}/${id}`),
  ]);
  assert.equal(membership.dataReads, 3);
  assert.ok(membership.lastConfirmed instanceof Date);
  assert.equal(membership.lastError, undefined);
  await membership.close();
});

Deno.test("membership: an added member costs one data read, a removed one no request at all", async () => {
  const { zk } = zooKeeper([9001]);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const changes = record(membership);
  const before = zk.ops.length;
  const added = nextEvent<CustomEvent<MembershipChange>>(
    membership,
    "change",
    2000,
  );
  const id = join(zk, 9002);
  assert.deepEqual(
    new Map((await added).detail.added),
    new Map([[id, data(9002)]]),
  );
  assert.deepEqual(zk.ops.slice(before).map((r) => `${r.op} ${r.path}`), [
    `getData ${SERVICE}/${id}`,
  ]);
  assert.equal(membership.dataReads, 2);
  const removed = nextEvent(membership, "change", 1000);
  leave(zk, id);
  await removed;
  assert.deepEqual(changes, [
    { added: [id], removed: [] },
    { added: [], removed: [id] },
  ]);
  assert.equal(zk.ops.length, before + 1); // the removal asked nothing
  assert.equal(membership.dataReads, 2);
  assert.equal(membership.members.size, 1);
  await membership.close();
});

Deno.test("membership: a lost connection keeps the last list; the reconnection re-arms the watch, re-lists and applies exactly what changed meanwhile", async () => {
  const { zk, ids: [a, b] } = zooKeeper([9001, 9002]);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const changes = record(membership);
  const states = stateEvents(membership);
  keeper.disconnect();
  assert.equal(membership.state, "disconnected");
  // Changes while away: ZooKeeper sends no event for them, nor replays them.
  leave(zk, a!);
  const c = join(zk, 9003);
  assert.deepEqual(ids(membership), [a, b].sort()); // the cached list
  assert.equal(zk.persistentWatches().length, 0);
  const reads = zk.count("getData");
  keeper.reconnect();
  await waitFor(() => changes.length === 1, {
    what: "the re-list",
    timeout: 1000,
  });
  assert.deepEqual(changes, [{ added: [c], removed: [a!] }]);
  assert.deepEqual(ids(membership), [b, c].sort());
  assert.deepEqual(states, ["disconnected", "fresh"]);
  assert.equal(zk.count("addWatch"), 2);
  assert.equal(zk.count("getChildren"), 2);
  assert.equal(zk.count("getData"), reads + 1); // only the new member
  assert.deepEqual(zk.persistentWatches(keeper.session), [
    { path: SERVICE, mode: "persistent_recursive" },
  ]);
  // The re-armed watch delivers again, once per event.
  const d = join(zk, 9004);
  await waitFor(() => changes.length === 2, {
    what: "the new member",
    timeout: 1000,
  });
  assert.deepEqual(changes[1], { added: [d], removed: [] });
  // A reconnection with nothing changed re-lists but reports no change.
  keeper.disconnect();
  keeper.reconnect();
  await waitFor(() => zk.count("getChildren") === 3, {
    what: "the third list",
    timeout: 1000,
  });
  await fresh(membership); // the list applied: a change would be out by now
  assert.equal(changes.length, 2);
  await membership.close();
});

Deno.test("membership: after an expiry the state is resyncing until the new session's list replaces the old one", async () => {
  const { zk, ids: [a, b] } = zooKeeper([9001, 9002]);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const changes = record(membership);
  const first = keeper.session;
  keeper.expire();
  assert.equal(membership.state, "resyncing");
  assert.deepEqual(ids(membership), [a, b].sort()); // kept while resyncing
  leave(zk, b!);
  const session = keeper.start();
  await fresh(membership);
  await waitFor(() => changes.length === 1, {
    what: "the re-list",
    timeout: 1000,
  });
  assert.deepEqual(changes, [{ added: [], removed: [b!] }]);
  assert.deepEqual(ids(membership), [a]);
  assert.deepEqual(zk.persistentWatches(session), [
    { path: SERVICE, mode: "persistent_recursive" },
  ]);
  assert.deepEqual(zk.persistentWatches(first), []);
  // Events of the new session's watch are applied.
  const c = join(zk, 9003);
  await waitFor(() => changes.length === 2, {
    what: "the new member",
    timeout: 1000,
  });
  assert.deepEqual(changes[1], { added: [c], removed: [] });
  await membership.close();
});

Deno.test("membership: an event that overtakes the list's answer wins: a member deleted meanwhile stays out (tombstone), one created meanwhile is in", async () => {
  const { zk, ids: [a, b] } = zooKeeper([9001, 9002]);
  const list = zk.hold("getChildren", SERVICE);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  const changes = record(membership);
  await list.reached();
  leave(zk, a!); // after the list's answer was made: it still names a
  const c = join(zk, 9003);
  await waitFor(() => changes.length === 1, {
    what: "the created member",
    timeout: 1000,
  });
  assert.deepEqual(changes[0], { added: [c], removed: [] });
  list.release();
  await waitFor(() => changes.length === 2, {
    what: "the late list",
    timeout: 1000,
  });
  assert.deepEqual(changes[1], { added: [b], removed: [] });
  assert.deepEqual(ids(membership), [b, c].sort());
  assert.equal(zk.count("getData", `${SERVICE}/${a}`), 0);
  assert.equal(membership.state, "fresh");
  await membership.close();
});

Deno.test("membership: a member deleted while its data is being read is never added, at the first list or later", async () => {
  const { zk, ids: [a, b] } = zooKeeper([9001, 9002]);
  const readA = zk.hold("getData", `${SERVICE}/${a}`);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  const changes = record(membership);
  await readA.reached();
  leave(zk, a!);
  readA.release();
  await fresh(membership);
  await waitFor(() => changes.length === 1, {
    what: "the first list",
    timeout: 1000,
  });
  assert.deepEqual(changes, [{ added: [b], removed: [] }]);
  // Later: the read of a new member answers after its deletion.
  const late = zk.hold("getData", (path) => path.includes("server-9003-"));
  const c = join(zk, 9003);
  await late.reached();
  leave(zk, c);
  late.release();
  const d = join(zk, 9004); // something to wait for after the late read
  await waitFor(() => changes.length === 2, {
    what: "the next member",
    timeout: 1000,
  });
  assert.deepEqual(changes[1], { added: [d], removed: [] });
  assert.deepEqual(ids(membership), [b, d].sort());
  await membership.close();
});

Deno.test("membership: unusable member data is refused by id (not JSON, no port), reported once per member, never listed nor read again", async () => {
  const { zk, ids: [good] } = zooKeeper([9001]);
  const garbage = join(zk, 9002, new TextEncoder().encode("not json {"));
  const portless = join(zk, 9003, new TextEncoder().encode('{"host":"h"}'));
  const invalid: [string, string][] = [];
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE, {
    onInvalidMember: (id, error) => invalid.push([id, error.message]),
  });
  const changes = record(membership);
  await fresh(membership);
  await waitFor(() => changes.length === 1, {
    what: "the list",
    timeout: 1000,
  });
  assert.deepEqual(changes, [{ added: [good], removed: [] }]);
  assert.deepEqual(ids(membership), [good]);
  assert.deepEqual(
    invalid.map(([id]) => id).sort(),
    [garbage, portless].sort(),
  );
  assert.match(invalid.find(([id]) => id === garbage)![1], /not JSON/);
  assert.match(
    invalid.find(([id]) => id === portless)![1],
    /"port" must be an integer/,
  );
  // A membership joining later hears of them at once, without a read.
  const reads = zk.count("getData");
  const later: string[] = [];
  const second = new ZooKeeperMembership(keeper.real, SERVICE, {
    onInvalidMember: (id) => later.push(id),
  });
  assert.deepEqual(later.sort(), [garbage, portless].sort());
  // A re-list does not read them again, nor report them again.
  keeper.disconnect();
  keeper.reconnect();
  await waitFor(() => zk.count("getChildren") === 2, {
    what: "the re-list",
    timeout: 1000,
  });
  await fresh(membership);
  assert.equal(zk.count("getData"), reads);
  assert.equal(invalid.length, 2);
  // Once deleted, an unusable member is forgotten.
  leave(zk, garbage);
  const third: string[] = [];
  await waitFor(async () => {
    third.length = 0;
    const m = new ZooKeeperMembership(keeper.real, SERVICE, {
      onInvalidMember: (id) => third.push(id),
    });
    await m.close();
    return third.length === 1;
  }, { what: "the deleted member forgotten", timeout: 1000 });
  assert.deepEqual(third, [portless]);
  assert.equal(changes.length, 1); // an unusable member never was a change
  await second.close();
  await membership.close();
});

Deno.test("membership: a server without addWatch (UNIMPLEMENTED) moves the session to child watches and re-lists after each change", async () => {
  const { zk, ids: [a] } = zooKeeper([9001]);
  zk.legacy = true;
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  const states = stateEvents(membership);
  const changes = record(membership);
  await fresh(membership);
  assert.equal(membership.watchMode, "children");
  assert.deepEqual(states, ["connecting", "fresh"]);
  assert.deepEqual(zk.ops.map((r) => r.op), [
    "addWatch",
    "getChildren",
    "getData",
  ]);
  assert.deepEqual(ids(membership), [a]);
  const b = join(zk, 9002);
  await waitFor(() => changes.length === 2, {
    what: "the added member",
    timeout: 1000,
  });
  assert.deepEqual(changes[1], { added: [b], removed: [] });
  assert.equal(zk.count("getChildren"), 2); // listed again
  leave(zk, a!);
  await waitFor(() => changes.length === 3, {
    what: "the removed member",
    timeout: 1000,
  });
  assert.deepEqual(changes[2], { added: [], removed: [a!] });
  assert.equal(zk.count("getChildren"), 3);
  assert.deepEqual(states, ["connecting", "fresh"]); // fresh all along
  // A reconnection of that session does not try addWatch again…
  keeper.disconnect();
  keeper.reconnect();
  await waitFor(() => zk.count("getChildren") === 4, {
    what: "the re-list",
    timeout: 1000,
  });
  assert.equal(zk.count("addWatch"), 1);
  // …a new session does (the server may have been upgraded).
  zk.legacy = false;
  keeper.expire();
  keeper.start();
  await waitFor(() => membership.watchMode === "persistent", {
    what: "the persistent mode",
    timeout: 1000,
  });
  assert.equal(zk.count("addWatch"), 2);
  await fresh(membership);
  assert.deepEqual(ids(membership), [b]);
  await membership.close();
});

Deno.test("membership: on child watches a missing service path lists empty and is watched until it and its members come", async () => {
  const { zk } = zooKeeper([], { path: false });
  zk.legacy = true;
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  assert.equal(membership.members.size, 0);
  assert.equal(zk.count("exists", SERVICE), 1);
  assert.equal(zk.count("getData"), 0); // no member to read
  zk.createNode(SERVICE, undefined);
  await waitFor(() => zk.count("getChildren") === 2, {
    what: "the list after the path came",
    timeout: 1000,
  });
  const a = join(zk, 9001);
  await waitFor(() => membership.members.has(a), {
    what: "the member",
    timeout: 1000,
  });
  await membership.close();
});

Deno.test("membership: on the persistent watch a missing service path lists empty, then its first member is read when it comes", async () => {
  const { zk } = zooKeeper([], { path: false });
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  assert.equal(membership.members.size, 0);
  assert.equal(membership.lastError, undefined);
  assert.equal(zk.count("getData"), 0);
  zk.createNode(SERVICE, undefined); // an event for the path itself
  const a = join(zk, 9001);
  await waitFor(() => membership.members.has(a), {
    what: "the member",
    timeout: 1000,
  });
  assert.equal(zk.count("getChildren"), 1);
  assert.equal(zk.count("getData"), 1); // the member's, nothing else
  await membership.close();
});

Deno.test("membership: events on the service path itself and below a member are ignored", async () => {
  const { zk } = zooKeeper([]);
  const persistent = zk.createNode(
    `${SERVICE}/server-9001-`,
    encodeMember(data(9001)),
    { sequential: true },
  );
  const id = persistent.slice(SERVICE.length + 1);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const changes = record(membership);
  const before = zk.ops.length;
  zk.createNode(`${persistent}/below`, encodeMember(data(9002)));
  zk.deleteNode(`${persistent}/below`);
  zk.setNodeData(SERVICE, new TextEncoder().encode("x"));
  zk.setNodeData(persistent, encodeMember(data(9009))); // data never changes
  const b = join(zk, 9003); // something to wait for after those events
  await waitFor(() => changes.length === 1, {
    what: "the next member",
    timeout: 1000,
  });
  assert.deepEqual(changes, [{ added: [b], removed: [] }]);
  assert.deepEqual(zk.ops.slice(before).map((r) => r.op), ["getData"]);
  assert.deepEqual(membership.members.get(id), data(9001));
  await membership.close();
});

Deno.test("membership: at most 64 member reads are in flight at once, and all are read", async () => {
  const { zk } = zooKeeper(Array.from({ length: 100 }, (_, i) => 10000 + i));
  const reads = zk.hold("getData");
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await reads.reached(64);
  assert.ok(await stillPending(reads.reached(65)));
  assert.equal(reads.held.length, 64);
  reads.release();
  await waitFor(() => membership.members.size === 100, {
    what: "every member",
    timeout: 1000,
  });
  assert.equal(membership.dataReads, 100);
  await membership.close();
});

Deno.test("membership: memberships of one keeper and path share one watch and one read per member; the last close removes the watch", async () => {
  const { zk } = zooKeeper([9001]);
  const keeper = new FakeKeeper(zk);
  const one = new ZooKeeperMembership(keeper.real, SERVICE);
  const two = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(one);
  assert.equal(two.state, "fresh");
  assert.equal(zk.count("addWatch"), 1);
  assert.equal(zk.count("getData"), 1);
  assert.equal(two.dataReads, 1);
  assert.equal(keeper.listeners(), 5); // one set for both
  const seen = [record(one), record(two)];
  const b = join(zk, 9002);
  await waitFor(() => seen.every((c) => c.length === 1), {
    what: "both changes",
    timeout: 1000,
  });
  assert.equal(zk.count("getData"), 2);
  const oneStates = stateEvents(one);
  await one.close();
  await one.close();
  assert.equal(one.state, "closed");
  assert.deepEqual(oneStates, ["closed"]);
  assert.deepEqual(zk.persistentWatches().length, 1); // two still watches
  const c = join(zk, 9003);
  await waitFor(() => two.members.has(c), {
    what: "the member seen by two",
    timeout: 1000,
  });
  assert.deepEqual(ids(one).length, 2); // frozen at close
  assert.ok(one.members.has(b));
  assert.ok(!one.members.has(c));
  assert.equal(seen[0]!.length, 1);
  await two.close();
  await waitFor(() => zk.persistentWatches().length === 0, {
    what: "the watch removed",
    timeout: 1000,
  });
  assert.equal(zk.count("removeWatch"), 1);
  assert.equal(keeper.listeners(), 0);
  // The keeper's events no longer reach a closed membership.
  const twoStates = stateEvents(two);
  keeper.disconnect();
  keeper.reconnect();
  assert.deepEqual(twoStates, []);
  assert.equal(two.state, "closed");
  assert.equal(zk.count("getChildren"), 1);
  // A new membership opens a new watch.
  const three = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(three);
  assert.equal(zk.count("addWatch"), 2);
  assert.deepEqual(ids(three), [...one.members.keys(), c].sort());
  await three.close();
});

Deno.test("membership: closing freezes the last list and reports the closed state once", async () => {
  const { zk, ids: [a] } = zooKeeper([9001]);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const states = stateEvents(membership);
  const changes = record(membership);
  await membership.close();
  assert.equal(membership.state, "closed");
  assert.deepEqual(states, ["closed"]);
  join(zk, 9002);
  await membership.close();
  assert.deepEqual(states, ["closed"]);
  assert.deepEqual(ids(membership), [a]);
  assert.deepEqual(changes, []);
  assert.equal(zk.count("getData"), 1);
});

Deno.test("membership: a keeper that gives up closes it with the keeper's failure, at once or later", async () => {
  const { zk } = zooKeeper([9001]);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const states = stateEvents(membership);
  const failure = new Error("unknown host");
  keeper.fail(failure);
  assert.equal(membership.state, "closed");
  assert.deepEqual(states, ["closed"]);
  assert.equal(membership.lastError, failure);
  assert.equal(membership.members.size, 1); // the last list is kept
  await membership.close();
  assert.deepEqual(states, ["closed"]); // already closed: no second event
  // A keeper that failed before the membership was made.
  const early = new ZooKeeperMembership(keeper.real, SERVICE);
  assert.equal(early.state, "closed");
  assert.equal(early.lastError, failure);
  await early.close();
  assert.equal(zk.count("getChildren"), 1);
});

Deno.test("membership: NO_AUTH on the list closes it for good; a lost connection does not, and the next connection lists again", async () => {
  const { zk } = zooKeeper([9001]);
  zk.failNext("getChildren", "NO_AUTH");
  const keeper = new FakeKeeper(zk);
  const denied = new ZooKeeperMembership(keeper.real, SERVICE);
  await waitFor(() => denied.state === "closed", {
    what: "the closed state",
    timeout: 1000,
  });
  assert.ok(isZooKeeperError(denied.lastError, "NO_AUTH"));
  await denied.close();

  const other = new FakeKeeper(zk);
  zk.failNext("getChildren", "CONNECTION_LOSS");
  const membership = new ZooKeeperMembership(other.real, SERVICE);
  await waitFor(() => zk.count("getChildren") === 2, {
    what: "the failed list",
    timeout: 1000,
  });
  assert.equal(membership.state, "connecting");
  assert.equal(membership.lastError, undefined);
  other.reconnect(); // the keeper's next "connected"
  await fresh(membership);
  assert.equal(membership.members.size, 1);
  await membership.close();
});

Deno.test("membership: the constructor refuses a path that is not an absolute ZooKeeper path, and the root", () => {
  const keeper = new FakeKeeper(new FakeZooKeeper(), { start: false });
  for (const path of ["rpc/calc", "/", "", "/rpc/", "/rpc//calc"]) {
    assert.throws(
      () => new ZooKeeperMembership(keeper.real, path),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message.includes("absolute ZooKeeper path") &&
        error.message.includes(JSON.stringify(path)),
      path,
    );
  }
});

Deno.test("membership: without a session it waits in the connecting state and lists when the first session comes", async () => {
  const { zk, ids: [a] } = zooKeeper([9001]);
  const keeper = new FakeKeeper(zk, { start: false });
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  assert.equal(membership.state, "connecting");
  assert.equal(membership.watchMode, undefined);
  assert.equal(membership.lastConfirmed, undefined);
  assert.equal(zk.ops.length, 0);
  keeper.lastError = new Error("refused");
  assert.equal(membership.lastError, keeper.lastError);
  keeper.start();
  await fresh(membership);
  assert.deepEqual(ids(membership), [a]);
  await membership.close();
});

Deno.test("membership: without onInvalidMember an unusable member is one console.warn naming its path; a throwing hook is reported, not thrown", async () => {
  const { zk } = zooKeeper([9001]);
  const garbage = join(zk, 9002, new TextEncoder().encode("\x1b[31mnot json"));
  const keeper = new FakeKeeper(zk);
  const warned: unknown[][] = [];
  const warn = console.warn;
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    reported.push(event.error);
  };
  console.warn = (...args: unknown[]) => void warned.push(args);
  globalThis.addEventListener("error", onError);
  try {
    const membership = new ZooKeeperMembership(keeper.real, SERVICE);
    await fresh(membership);
    assert.equal(warned.length, 1);
    const line = String(warned[0]![0]);
    assert.ok(
      line.startsWith(`zkrpc: skipping member ${SERVICE}/${garbage}: `),
      line,
    );
    assert.match(line, /not JSON/);
    assert.ok(!line.includes("\x1b"), "printable"); // no terminal escapes
    const boom = new Error("hook failed");
    const second = new ZooKeeperMembership(keeper.real, SERVICE, {
      onInvalidMember: () => {
        throw boom;
      },
    });
    assert.deepEqual(reported, [boom]);
    assert.equal(second.state, "fresh");
    await second.close();
    await membership.close();
  } finally {
    console.warn = warn;
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("membership: a member whose read is in flight is not read again by a re-list, and is added once its read answers", async () => {
  const { zk } = zooKeeper([9001]);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const read = zk.hold("getData", (path) => path.includes("server-9002-"));
  const b = join(zk, 9002);
  await read.reached();
  keeper.disconnect();
  keeper.reconnect();
  await waitFor(() => zk.count("getChildren") === 2, {
    what: "the re-list",
    timeout: 1000,
  });
  await fresh(membership);
  read.release();
  await waitFor(() => membership.members.has(b), {
    what: "the member",
    timeout: 1000,
  });
  assert.equal(zk.count("getData", `${SERVICE}/${b}`), 1);
  assert.equal(membership.dataReads, 2);
  await membership.close();
});

Deno.test("membership: a read lost with the connection is made again by the re-list; the removals of that re-list stand even when a read fails", async () => {
  const { zk, ids: [a] } = zooKeeper([9001]);
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const changes = record(membership);
  zk.failNext("getData", "CONNECTION_LOSS");
  const b = join(zk, 9002);
  await waitFor(() => zk.count("getData") === 2, {
    what: "the failed read",
    timeout: 1000,
  });
  assert.ok(!membership.members.has(b));
  // Away: a leaves; back: the re-list removes a and reads b, which fails.
  keeper.disconnect();
  leave(zk, a!);
  zk.failNext("getData", "CONNECTION_LOSS");
  keeper.reconnect();
  await waitFor(() => changes.length === 1, {
    what: "the removal",
    timeout: 1000,
  });
  assert.deepEqual(changes[0], { added: [], removed: [a!] });
  assert.equal(membership.state, "disconnected"); // not confirmed yet
  // The next re-list reads b again and is fresh.
  keeper.disconnect();
  keeper.reconnect();
  await waitFor(() => changes.length === 2, {
    what: "the member",
    timeout: 1000,
  });
  assert.deepEqual(changes[1], { added: [b], removed: [] });
  assert.equal(membership.state, "fresh");
  assert.deepEqual(ids(membership), [b]);
  await membership.close();
});

Deno.test("membership: a member gone when its data is read (NO_NODE) is skipped and the others of the list are added", async () => {
  const { zk, ids: [a, b] } = zooKeeper([9001, 9002]);
  zk.failNext("getData", "NO_NODE", { path: `${SERVICE}/${a}` });
  const invalid: string[] = [];
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE, {
    onInvalidMember: (id) => invalid.push(id),
  });
  await fresh(membership);
  assert.deepEqual(ids(membership), [b]);
  assert.deepEqual(invalid, []);
  await membership.close();
});

Deno.test("membership: unusable data read after its member left is not reported; an unusable member removed while away is forgotten at the re-list", async () => {
  const { zk } = zooKeeper([9001]);
  const bad = new TextEncoder().encode("garbage");
  const read = zk.hold("getData", (path) => path.includes("server-9002-"));
  const invalid: string[] = [];
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE, {
    onInvalidMember: (id) => invalid.push(id),
  });
  await fresh(membership);
  const gone = join(zk, 9002, bad);
  await read.reached();
  leave(zk, gone);
  read.release();
  const stays = join(zk, 9003, bad);
  await waitFor(() => invalid.length === 1, {
    what: "the unusable member",
    timeout: 1000,
  });
  assert.deepEqual(invalid, [stays]); // not the one that left
  keeper.disconnect();
  leave(zk, stays);
  keeper.reconnect();
  await waitFor(() => zk.count("getChildren") === 2, {
    what: "the re-list",
    timeout: 1000,
  });
  await fresh(membership);
  const later: string[] = [];
  const second = new ZooKeeperMembership(keeper.real, SERVICE, {
    onInvalidMember: (id) => later.push(id),
  });
  assert.deepEqual(later, []);
  await second.close();
  await membership.close();
});

Deno.test("membership: on child watches, a service path that appears between the failed list and the check is listed again at once", async () => {
  const { zk, ids: [a] } = zooKeeper([9001]);
  zk.legacy = true;
  zk.failNext("getChildren", "NO_NODE");
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  assert.deepEqual(ids(membership), [a]);
  assert.equal(zk.count("getChildren"), 2);
  assert.equal(zk.count("exists"), 1);
  await membership.close();
});

Deno.test("membership: closed while a re-list is scheduled on child watches, it lists no more and leaves no timer", async () => {
  const { zk } = zooKeeper([9001]);
  zk.legacy = true;
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await fresh(membership);
  const random = Math.random;
  Math.random = () => 1; // the longest pause: 50 ms
  try {
    join(zk, 9002); // the child watch fires: a re-list is scheduled
    assert.ok(await stillPending(new Promise<never>(() => {})));
  } finally {
    Math.random = random;
  }
  await membership.close(); // the sanitizer fails a timer left armed
  assert.equal(zk.count("getChildren"), 1);
});

Deno.test("membership: addWatch failing for another reason than UNIMPLEMENTED keeps the persistent mode: the next connection arms it", async () => {
  const { zk, ids: [a] } = zooKeeper([9001]);
  zk.failNext("addWatch", "CONNECTION_LOSS");
  const keeper = new FakeKeeper(zk);
  const membership = new ZooKeeperMembership(keeper.real, SERVICE);
  await waitFor(() => zk.count("addWatch") === 1, {
    what: "the failed addWatch",
    timeout: 1000,
  });
  keeper.reconnect();
  await fresh(membership);
  assert.equal(membership.watchMode, "persistent");
  assert.equal(zk.count("addWatch"), 2);
  assert.deepEqual(ids(membership), [a]);
  await membership.close();
});
