/**
 * Unit tests of the ACL tightening (`src/zookeeper/_secure_path.ts`) against
 * a scripted in-memory session: which entries count as open on the service
 * path and on its parent, the merged ACL written (with the version read),
 * the log lines, the refusals (no identity, no admin) with their fixes, and
 * the deletion of members created while the path was open. The real
 * ZooKeeper behaviour (a stranger refused) is in discovery_security_test.ts.
 * No I/O: the mutation runner's tests for `secure_path`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { formatAcl, securePath } from "../src/zookeeper/_secure_path.ts";
import { type AclEntry, expandPermissions } from "../src/zookeeper/types.ts";
import { ZooKeeperError } from "../src/zookeeper/errors.ts";
import type { ZooKeeperSession } from "../src/zookeeper/session.ts";

const ME = "zkrpc:hash";
const world = (
  ...permissions: string[]
): AclEntry => ({ scheme: "world", id: "anyone", permissions } as AclEntry);
const digest = (
  id: string,
  ...permissions: string[]
): AclEntry => ({ scheme: "digest", id, permissions } as AclEntry);
const ip = (
  id: string,
  ...permissions: string[]
): AclEntry => ({ scheme: "ip", id, permissions } as AclEntry);

/** A scripted session: nodes with ACLs and versions, and what was done. */
function fakeSession(
  nodes: Record<string, AclEntry[]>,
  options: {
    authIds?: string[];
    refuseSetAcl?: string[];
    vanish?: string[];
    failGetAcl?: Record<string, Error>;
    failDelete?: Record<string, Error>;
  } = {},
) {
  const versions = new Map(Object.keys(nodes).map((p, i) => [p, i + 3]));
  const setAcls: { path: string; acl: AclEntry[]; version: number }[] = [];
  const deleted: string[] = [];
  const session = {
    authIds: options.authIds ?? [ME],
    getAcl(path: string) {
      const failure = options.failGetAcl?.[path];
      if (failure) return Promise.reject(failure);
      if (options.vanish?.includes(path) || !(path in nodes)) {
        return Promise.reject(
          new ZooKeeperError("NO_NODE", "getAcl", { path }),
        );
      }
      // Like the real session: permissions spelled out one by one.
      return Promise.resolve({
        acl: nodes[path]!.map((e) => ({
          ...e,
          permissions: expandPermissions(e.permissions),
        })),
        stat: { aversion: versions.get(path)! },
      });
    },
    setAcl(path: string, acl: AclEntry[], version: number) {
      if (options.refuseSetAcl?.includes(path)) {
        return Promise.reject(
          new ZooKeeperError("NO_AUTH", "setAcl", { path }),
        );
      }
      setAcls.push({ path, acl, version });
      nodes[path] = acl;
      return Promise.resolve({});
    },
    getChildren(path: string) {
      const prefix = `${path}/`;
      return Promise.resolve(
        Object.keys(nodes).filter((p) =>
          p.startsWith(prefix) && !p.slice(prefix.length).includes("/")
        ).map((p) => p.slice(prefix.length)).concat(
          (options.vanish ?? []).filter((p) => p.startsWith(prefix)).map((p) =>
            p.slice(prefix.length)
          ),
        ),
      );
    },
    delete(path: string) {
      const failure = options.failDelete?.[path];
      if (failure) return Promise.reject(failure);
      deleted.push(path);
      delete nodes[path];
      return Promise.resolve();
    },
  };
  return {
    session: session as unknown as ZooKeeperSession,
    setAcls,
    deleted,
    nodes,
  };
}

Deno.test("formatAcl spells ACLs like zkCli, permissions in cdrwa order, all expanded", () => {
  assert.equal(formatAcl([]), "");
  assert.equal(
    formatAcl([world("read"), digest("u:h", "all")]),
    "world:anyone:r,digest:u:h:cdrwa",
  );
  assert.equal(
    formatAcl([ip("10.0.0.1", "admin", "write", "delete", "create")]),
    "ip:10.0.0.1:cdwa",
  );
});

Deno.test("securePath leaves a path alone when no outsider may create, delete or administer it", async () => {
  const logs: string[] = [];
  const fake = fakeSession({
    "/rpc": [world("read", "write", "create"), digest(ME, "all")],
    "/rpc/calc": [world("read", "write"), digest(ME, "all")],
    "/rpc/calc/server-1": [world("read")],
  });
  await securePath(
    fake.session,
    "/rpc/calc",
    "creator_all_world_read",
    (m) => logs.push(m),
  );
  assert.deepEqual(fake.setAcls, []);
  assert.deepEqual(fake.deleted, []);
  assert.deepEqual(logs, []);
  // The parent may let anyone create (other services), but a digest entry
  // of another identity on the parent is not an outsider there.
  const other = fakeSession({
    "/rpc": [digest("team:x", "all"), world("read", "create")],
    "/rpc/calc": [digest(ME, "all"), world("read")],
  });
  await securePath(
    other.session,
    "/rpc/calc",
    "creator_all_world_read",
    () => {},
  );
  assert.deepEqual(other.setAcls, []);
});

Deno.test("securePath tightens an open service path and parent, merging entries, with the version read, and logs each", async () => {
  const logs: string[] = [];
  const fake = fakeSession({
    "/rpc": [world("all")],
    "/rpc/calc": [world("all"), ip("10.1.1.1", "read", "delete")],
  });
  await securePath(
    fake.session,
    "/rpc/calc",
    "creator_all_world_read",
    (m) => logs.push(m),
  );
  assert.deepEqual(
    fake.setAcls.map((s) => [s.path, formatAcl(s.acl), s.version]),
    [
      ["/rpc", "digest:zkrpc:hash:cdrwa,world:anyone:crw", 3],
      ["/rpc/calc", "digest:zkrpc:hash:cdrwa,world:anyone:rw,ip:10.1.1.1:r", 4],
    ],
  );
  assert.deepEqual(logs, [
    'zkrpc: "/rpc" was open (world:anyone may delete, admin); set its ACL to digest:zkrpc:hash:cdrwa,world:anyone:crw',
    'zkrpc: "/rpc/calc" was open (world:anyone may create, delete, admin; ip:10.1.1.1 may delete); set its ACL to digest:zkrpc:hash:cdrwa,world:anyone:rw,ip:10.1.1.1:r',
  ]);
  // An auth entry stands for every digest identity of the session.
  const two = fakeSession({ "/svc": [world("all")] }, {
    authIds: ["a:1", "b:2"],
  });
  await securePath(two.session, "/svc", "creator_all", () => {});
  assert.equal(
    formatAcl(two.setAcls[0]!.acl),
    "digest:a:1:cdrwa,digest:b:2:cdrwa,world:anyone:rw",
  );
  // A top-level service path has no parent to check.
  assert.deepEqual(two.setAcls.map((s) => s.path), ["/svc"]);
});

Deno.test("securePath: an explicit ACL is kept as given; an outsider keeping only what the ACL grants it is not open", async () => {
  const acl: AclEntry[] = [digest("ops:h", "all"), world("read", "create")];
  const fine = fakeSession({
    "/rpc": [world("read", "create")],
    "/rpc/calc": [world("read", "create"), digest("ops:h", "all")],
  });
  await securePath(fine.session, "/rpc/calc", acl, () => {});
  assert.deepEqual(fine.setAcls, []);
  const open = fakeSession({
    "/rpc": [world("read")],
    "/rpc/calc": [world("read", "create", "delete")],
  });
  await securePath(open.session, "/rpc/calc", acl, () => {});
  assert.deepEqual(open.setAcls.map((s) => formatAcl(s.acl)), [
    "digest:ops:h:cdrwa,world:anyone:cr",
  ]);
});

Deno.test("securePath refuses to tighten without an identity, or without admin, naming the path, who may do what, and the fix", async () => {
  const anonymous = fakeSession({ "/rpc/calc": [world("all")], "/rpc": [] }, {
    authIds: [],
  });
  await assert.rejects(
    securePath(anonymous.session, "/rpc/calc", "creator_all", () => {}),
    (e) =>
      e instanceof Error &&
      e.message ===
        '"/rpc/calc" is open (world:anyone may create, delete, admin) and the registrar\'s ACL names no identity of this session; give the session `auth` credentials',
  );
  assert.deepEqual(anonymous.setAcls, []);
  const locked = fakeSession({
    "/rpc": [world("read")],
    "/rpc/calc": [world("read", "delete")],
  }, { refuseSetAcl: ["/rpc/calc"] });
  await assert.rejects(
    securePath(locked.session, "/rpc/calc", "creator_all_world_read", () => {}),
    (e) =>
      e instanceof Error && !(e instanceof ZooKeeperError) &&
      e.message ===
        '"/rpc/calc" is open (world:anyone may delete) and this session may not change its ACL (it lacks admin on it). ' +
          "Fix: delete it so the server creates it with its ACL (zkCli: deleteall /rpc/calc), " +
          "or set its ACL (zkCli: setAcl /rpc/calc digest:zkrpc:hash:cdrwa,world:anyone:r)",
  );
  // Other errors (BAD_VERSION: the ACL changed meanwhile) pass through.
  const raced = fakeSession({ "/rpc": [], "/rpc/calc": [world("all")] });
  const bad = new ZooKeeperError("BAD_VERSION", "setAcl");
  raced.session.setAcl = () => Promise.reject(bad);
  await assert.rejects(
    securePath(raced.session, "/rpc/calc", "creator_all", () => {}),
    (e) => e === bad,
  );
});

Deno.test("securePath deletes members created while the path was open by someone outside the ACL, and only those", async () => {
  const logs: string[] = [];
  const fake = fakeSession({
    "/rpc": [world("read", "create")],
    "/rpc/calc": [world("all")],
    "/rpc/calc/server-mine": [digest(ME, "all"), world("read")],
    "/rpc/calc/server-fake": [world("all")],
    "/rpc/calc/server-writer": [world("read", "write")],
    "/rpc/calc/server-other": [digest("team:x", "read", "create")],
    "/rpc/calc/server-reader": [world("read"), ip("1.2.3.4", "read")],
  }, { vanish: ["/rpc/calc/server-gone"] });
  await securePath(
    fake.session,
    "/rpc/calc",
    "creator_all_world_read",
    (m) => logs.push(m),
  );
  assert.deepEqual(fake.deleted.sort(), [
    "/rpc/calc/server-fake",
    "/rpc/calc/server-other",
    "/rpc/calc/server-writer",
  ]);
  assert.ok(
    logs.includes(
      'zkrpc: deleted member "/rpc/calc/server-fake": created while "/rpc/calc" was open, by someone outside the registrar\'s ACL (world:anyone:cdrwa)',
    ),
    logs.join("\n"),
  );
  assert.equal(logs.filter((l) => l.includes("deleted member")).length, 3);
  // Nothing is deleted when the path was not open.
  const closed = fakeSession({
    "/rpc": [world("read")],
    "/rpc/calc": [world("read")],
    "/rpc/calc/server-fake": [world("all")],
  });
  await securePath(
    closed.session,
    "/rpc/calc",
    "creator_all_world_read",
    () => {},
  );
  assert.deepEqual(closed.deleted, []);
});

Deno.test("securePath: a member vanishing meanwhile is skipped; other errors propagate", async () => {
  const gone = new ZooKeeperError("NO_NODE", "delete");
  const fake = fakeSession({
    "/rpc": [],
    "/rpc/calc": [world("all")],
    "/rpc/calc/server-a": [world("all")],
    "/rpc/calc/server-b": [world("all")],
  }, { failDelete: { "/rpc/calc/server-a": gone } });
  const logs: string[] = [];
  await securePath(
    fake.session,
    "/rpc/calc",
    "creator_all",
    (m) => logs.push(m),
  );
  assert.deepEqual(fake.deleted, ["/rpc/calc/server-b"]);
  assert.equal(logs.filter((l) => l.includes("deleted member")).length, 1);
  const lost = new ZooKeeperError("CONNECTION_LOSS", "delete");
  const failing = fakeSession({
    "/rpc": [],
    "/rpc/calc": [world("all")],
    "/rpc/calc/server-a": [world("all")],
  }, { failDelete: { "/rpc/calc/server-a": lost } });
  await assert.rejects(
    securePath(failing.session, "/rpc/calc", "creator_all", () => {}),
    (e) => e === lost,
  );
  const aclLost = fakeSession({
    "/rpc": [],
    "/rpc/calc": [world("all")],
    "/rpc/calc/server-a": [world("all")],
  }, { failGetAcl: { "/rpc/calc/server-a": lost } });
  await assert.rejects(
    securePath(aclLost.session, "/rpc/calc", "creator_all", () => {}),
    (e) => e === lost,
  );
});

Deno.test("securePath: each outside permission counts on its own (ip on the parent, delete or admin alone on a member), entries left with nothing are dropped, one foreign entry is enough", async () => {
  // The parent: an ip entry that may delete is an outsider too.
  const parent = fakeSession({
    "/rpc": [ip("10.0.0.9", "read", "delete")],
    "/rpc/calc": [digest(ME, "all")],
  });
  await securePath(parent.session, "/rpc/calc", "creator_all", () => {});
  assert.deepEqual(parent.setAcls.map((s) => [s.path, formatAcl(s.acl)]), [
    ["/rpc", "digest:zkrpc:hash:cdrwa,ip:10.0.0.9:r"],
  ]);
  // An entry whose every permission was excess disappears.
  const dropped = fakeSession({
    "/rpc": [],
    "/rpc/calc": [ip("10.0.0.9", "admin"), world("delete")],
  });
  await securePath(dropped.session, "/rpc/calc", "creator_all", () => {});
  assert.equal(formatAcl(dropped.setAcls[0]!.acl), "digest:zkrpc:hash:cdrwa");
  const fake = fakeSession({
    "/rpc": [],
    "/rpc/calc": [world("all")],
    "/rpc/calc/server-deleter": [world("read", "delete")],
    "/rpc/calc/server-admin": [ip("1.1.1.1", "admin")],
    "/rpc/calc/server-creator": [world("read", "create")],
    "/rpc/calc/server-mixed": [digest(ME, "all"), world("read", "write")],
    "/rpc/calc/server-mine": [digest(ME, "all"), world("read")],
  });
  await securePath(
    fake.session,
    "/rpc/calc",
    "creator_all_world_read",
    () => {},
  );
  assert.deepEqual(fake.deleted.sort(), [
    "/rpc/calc/server-admin",
    "/rpc/calc/server-creator",
    "/rpc/calc/server-deleter",
    "/rpc/calc/server-mixed",
  ]);
});
