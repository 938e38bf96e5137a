/**
 * `ZooKeeperMembership` on persistent recursive watches, against a real
 * ZooKeeper: exact member sets after a lost connection (changes made while
 * it was away are not replayed: it re-lists), a ZooKeeper restart and a
 * session expiry; a late read never brings back a deleted member; and the
 * fallback to child watches when the server does not know `addWatch`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { expireSession, startZooKeeper } from "../testing.ts";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperMembership } from "../src/zookeeper/membership.ts";
import {
  type WatchEvent,
  ZooKeeperError,
  ZooKeeperSession,
} from "../src/zookeeper/session.ts";
import { zooKeeperDiscovery } from "../src/zookeeper/discovery.ts";
import type { MembershipChange } from "../src/discovery/membership.ts";
import { TcpProxy } from "./_tcp_proxy.ts";
import { fourLetterWord } from "../src/testing/four_letter_word.ts";
import { nextEvent, waitFor, within } from "./_wait.ts";

const SESSION = {
  connectTimeout: 5000,
  sessionTimeout: 10_000,
  operationTimeout: 5000,
};
const PATH = "/rpc/calculator";

/** A member node as a registrar writes it; returns its name. */
async function addMember(
  session: ZooKeeperSession,
  port: number,
  mode: "ephemeral_sequential" | "persistent_sequential" =
    "persistent_sequential",
): Promise<string> {
  const path = await session.create(
    `${PATH}/server-`,
    JSON.stringify({ host: "127.0.0.1", port }),
    { mode },
  );
  return path.slice(PATH.length + 1);
}

/** The member names ZooKeeper holds, sorted. */
async function listed(session: ZooKeeperSession): Promise<string[]> {
  return (await session.getChildren(PATH)).sort();
}

function names(
  membership: { members: ReadonlyMap<string, unknown> },
): string[] {
  return [...membership.members.keys()].sort();
}

/**
 * Adds a member and checks that the membership sees it as an event and
 * holds exactly what ZooKeeper lists.
 */
async function assertFollows(
  membership: ZooKeeperMembership,
  admin: ZooKeeperSession,
  port: number,
): Promise<void> {
  const later = await addMember(admin, port);
  await waitFor(() => membership.members.has(later), `member ${port}`);
  assert.deepEqual(names(membership), await listed(admin));
}

/** Records every change event, to check that nothing came back. */
function recordChanges(membership: ZooKeeperMembership): MembershipChange[] {
  const changes: MembershipChange[] = [];
  membership.addEventListener("change", (event) => {
    changes.push((event as CustomEvent<MembershipChange>).detail);
  });
  return changes;
}

Deno.test("a membership on a persistent watch reads each member once and applies adds and removes one by one", async () => {
  await using zk = await startZooKeeper();
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.mkdirp(PATH);
  const first = await Promise.all(
    [9001, 9002, 9003].map((p) => addMember(admin, p)),
  );
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const membership = new ZooKeeperMembership(keeper, PATH);
  try {
    await waitFor(() => membership.members.size === 3, "the first list");
    assert.equal(membership.watchMode, "persistent");
    assert.equal(membership.state, "fresh");
    assert.equal(membership.dataReads, 3);
    const changes = recordChanges(membership);
    const added = await addMember(admin, 9004);
    await waitFor(() => membership.members.has(added), "the added member");
    assert.equal(membership.members.get(added)?.port, 9004);
    await admin.delete(`${PATH}/${first[0]}`);
    await waitFor(
      () => !membership.members.has(first[0]!),
      "the removed member",
    );
    assert.deepEqual(names(membership), await listed(admin));
    // One read for the new member, none for the removal.
    assert.equal(membership.dataReads, 4);
    assert.deepEqual(changes.map((c) => [[...c.added.keys()], c.removed]), [
      [[added], []],
      [[], [first[0]]],
    ]);
  } finally {
    await membership.close();
  }
});

Deno.test("after its connection was cut while members changed, a membership re-arms, re-lists and has the exact set", async () => {
  await using zk = await startZooKeeper();
  await using proxy = new TcpProxy({ hostname: "127.0.0.1", port: zk.port });
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.mkdirp(PATH);
  const [gone] = await Promise.all(
    [9001, 9002].map((p) => addMember(admin, p)),
  );
  await using keeper = new SessionKeeper(`127.0.0.1:${proxy.port}`, SESSION);
  const membership = new ZooKeeperMembership(keeper, PATH);
  try {
    await waitFor(() => membership.members.size === 2, "the first list");
    const disconnected = nextEvent(keeper, "disconnected");
    proxy.cut();
    await disconnected;
    assert.equal(membership.state, "disconnected");
    // While it is away: one member leaves, two join. ZooKeeper will not
    // replay these events.
    await admin.delete(`${PATH}/${gone}`);
    await addMember(admin, 9003);
    await addMember(admin, 9004);
    const connected = nextEvent(keeper, "connected");
    proxy.restore();
    await connected;
    await waitFor(
      async () => names(membership).join() === (await listed(admin)).join(),
      { what: "the exact member set", timeout: 15_000 },
    );
    assert.equal(membership.watchMode, "persistent");
    // And the watch is armed again: later changes arrive as events.
    await assertFollows(membership, admin, 9005);
  } finally {
    await membership.close();
  }
});

Deno.test("a membership behind a silent partition longer than its session converges to the exact set once it heals", async () => {
  await using zk = await startZooKeeper();
  await using proxy = new TcpProxy({ hostname: "127.0.0.1", port: zk.port });
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.mkdirp(PATH);
  const [gone] = await Promise.all(
    [9001, 9002].map((p) => addMember(admin, p)),
  );
  await using keeper = new SessionKeeper(`127.0.0.1:${proxy.port}`, {
    ...SESSION,
    sessionTimeout: 4000,
  });
  const membership = new ZooKeeperMembership(keeper, PATH);
  try {
    await waitFor(() => membership.members.size === 2, "the first list");
    const session = await keeper.current();
    const disconnected = nextEvent(keeper, "disconnected", 30_000);
    proxy.silence();
    await disconnected; // noticed by the read timeout, not by a reset
    await admin.delete(`${PATH}/${gone}`);
    await addMember(admin, 9003);
    // Wait until ZooKeeper expired the partitioned session, then heal.
    const sid = `sid=0x${session.sessionId.replace(/^0+/, "")}`;
    await waitFor(
      async () =>
        !(await fourLetterWord(
          { hostname: "127.0.0.1", port: zk.port },
          "cons",
        ))
          .includes(sid),
      {
        what: "ZooKeeper to expire the session",
        timeout: 30_000,
        interval: 200,
      },
    );
    const renewed = nextEvent(keeper, "session", 30_000);
    proxy.restore();
    await renewed;
    await waitFor(
      async () => names(membership).join() === (await listed(admin)).join(),
      { what: "the exact member set", timeout: 15_000 },
    );
    await assertFollows(membership, admin, 9004);
  } finally {
    await membership.close();
  }
});

Deno.test("a membership converges to the exact set after ZooKeeper is killed and restarted", async () => {
  await using zk = await startZooKeeper();
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const membership = new ZooKeeperMembership(keeper, PATH);
  try {
    {
      await using admin = await ZooKeeperSession.connect(zk.connectionString);
      await admin.mkdirp(PATH);
      await Promise.all([9001, 9002].map((p) => addMember(admin, p)));
    }
    await waitFor(() => membership.members.size === 2, "the first list");
    const disconnected = nextEvent(keeper, "disconnected");
    await zk.kill();
    await disconnected;
    const connected = nextEvent(keeper, "connected", 30_000);
    await zk.restart();
    await connected;
    await using admin = await ZooKeeperSession.connect(zk.connectionString);
    await assertFollows(membership, admin, 9003);
    assert.equal(membership.state, "fresh");
  } finally {
    await membership.close();
  }
});

Deno.test("after a session expiry a membership re-arms on the new session and has the exact set", async () => {
  await using zk = await startZooKeeper();
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.mkdirp(PATH);
  const [gone] = await Promise.all(
    [9001, 9002].map((p) => addMember(admin, p)),
  );
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const membership = new ZooKeeperMembership(keeper, PATH);
  try {
    await waitFor(() => membership.members.size === 2, "the first list");
    const session = await keeper.current();
    const expired = nextEvent(keeper, "expired");
    await expireSession(
      zk.connectionString,
      session.sessionId,
      session.sessionPassword,
    );
    await expired;
    // Between the expiry and the new session's list.
    await admin.delete(`${PATH}/${gone}`);
    const joined = await addMember(admin, 9003);
    await waitFor(
      () => membership.members.has(joined) && !membership.members.has(gone!),
      { what: "the new session's list", timeout: 15_000 },
    );
    assert.notEqual((await keeper.current()).sessionId, session.sessionId);
    assert.deepEqual(names(membership), await listed(admin));
    await assertFollows(membership, admin, 9004);
  } finally {
    await membership.close();
  }
});

Deno.test("a member deleted while its data was being read is never added (no resurrection)", async () => {
  await using zk = await startZooKeeper();
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.mkdirp(PATH);
  await using keeper = new SessionKeeper(zk.connectionString, SESSION);
  const session = await keeper.current();
  // Hold every data read's answer until the test lets it go.
  const gate = Promise.withResolvers<void>();
  const getData = session.getData.bind(session);
  session.getData = async (...args) => {
    const result = await getData(...args);
    await gate.promise;
    return result;
  };
  const membership = new ZooKeeperMembership(keeper, PATH);
  try {
    await waitFor(() => membership.state === "fresh", "the first list");
    const changes = recordChanges(membership);
    // A watcher of the same session, added after the membership's: it
    // sees each event after the membership has handled it.
    const seen: WatchEvent[] = [];
    await using _watch = await session.addWatch(PATH, (e) => seen.push(e));
    const doomed = await addMember(admin, 9001);
    await waitFor(() => membership.dataReads === 1, "the read to start");
    await admin.delete(`${PATH}/${doomed}`);
    await waitFor(
      () => seen.some((e) => e.type === "deleted"),
      "the membership to see the deletion",
    );
    gate.resolve(); // the read answers now, with the deleted member's data
    const survivor = await addMember(admin, 9002);
    await waitFor(() => membership.members.has(survivor), "the survivor");
    assert.deepEqual(names(membership), [survivor]);
    assert.ok(
      changes.every((c) => !c.added.has(doomed)),
      "the deleted member was never added",
    );
  } finally {
    await membership.close();
  }
});

Deno.test("a server that answers addWatch with UNIMPLEMENTED moves the membership to child watches, visible in the channel's membership", async () => {
  await using zk = await startZooKeeper();
  await using admin = await ZooKeeperSession.connect(zk.connectionString);
  await admin.mkdirp(PATH);
  await addMember(admin, 9001);
  await using discovery = zooKeeperDiscovery({
    zookeeper: zk.connectionString,
    session: SESSION,
  });
  // ZooKeeper 3.8 knows addWatch; a server before 3.6 is not available
  // here, so the failure is injected at the session layer: every session
  // this keeper opens answers addWatch as ZooKeeper 3.5 does.
  const unimplemented = (session: ZooKeeperSession) => {
    session.addWatch = (path) =>
      Promise.reject(
        new ZooKeeperError("UNIMPLEMENTED", `Cannot watch "${path}"`),
      );
  };
  const session = await discovery.keeper.current();
  unimplemented(session);
  const modeChanged = Promise.withResolvers<void>();
  await using channel = discovery.channel("calculator");
  // The channel's own status says which: no cast to the ZooKeeper type.
  const membership = channel.membership;
  membership.addEventListener("state", () => {
    if (membership.watchMode === "children") modeChanged.resolve();
  });
  await within(modeChanged.promise, 15_000, "the children mode");
  await waitFor(() => membership.members.size === 1, "the first list");
  assert.equal(membership.watchMode, "children");
  // Child watches follow adds and removes too.
  const added = await addMember(admin, 9002);
  await waitFor(() => membership.members.has(added), "the added member");
  await admin.delete(`${PATH}/${added}`);
  await waitFor(() => !membership.members.has(added), "the removal");
  assert.deepEqual(names(membership), await listed(admin));
});
