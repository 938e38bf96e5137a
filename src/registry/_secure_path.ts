/**
 * Makes the ACL option of a registration mean something when the service
 * path already exists: the service path (and its parent) must not let anyone
 * outside the registrar's ACL create or delete members or change the ACL.
 * An open path is tightened when the session may (it has `admin` on it), or
 * registration fails with an error naming the path and the fix.
 *
 * @module
 */

import {
  aclEntries,
  type AclEntry,
  expandPermissions,
} from "./zookeeper_types.ts";
import type {
  ZooKeeperAcl,
  ZooKeeperPermission,
  ZooKeeperSession,
} from "./zookeeper_session.ts";
import { isZooKeeperError } from "./zookeeper_errors.ts";

/** Which entries of a node's ACL are checked, and for what. */
interface Guard {
  /** The permissions an outsider must not hold. */
  permissions: readonly ZooKeeperPermission[];
  /** Whether an entry counts as a possible outsider. */
  applies: (entry: AclEntry) => boolean;
}

/**
 * The service path: no one outside the registrar's ACL may `create` (fake
 * members), `delete` (delete real members) or `admin` (change the ACL).
 */
const SERVICE_PATH: Guard = {
  permissions: ["create", "delete", "admin"],
  applies: () => true,
};

/**
 * Its parent (e.g. `/rpc`), shared with other services whose servers may use
 * other credentials: only `world` and `ip` entries (anyone, or anyone on a
 * network) must not `delete` (the service path while it is empty, to
 * recreate it open) or `admin`. Grants to named identities are someone's
 * deliberate choice and are left alone.
 */
const PARENT: Guard = {
  permissions: ["delete", "admin"],
  applies: (entry) => entry.scheme === "world" || entry.scheme === "ip",
};

/**
 * Checks (and tightens) the ACLs of `servicePath` and its parent.
 *
 * @param session A connected session.
 * @param servicePath E.g. `/rpc/calculator`.
 * @param acl The registrar's ACL (not `"open"`).
 * @param log Where notices go.
 * @throws {Error} When a path is open and the session may not fix it.
 */
export async function securePath(
  session: ZooKeeperSession,
  servicePath: string,
  acl: ZooKeeperAcl,
  log: (message: string) => void,
): Promise<void> {
  const desired = resolve(aclEntries(acl), session.authIds);
  const parent = servicePath.slice(0, servicePath.lastIndexOf("/"));
  if (parent !== "") {
    await secureNode(session, parent, desired, PARENT, log);
  }
  const tightened = await secureNode(
    session,
    servicePath,
    desired,
    SERVICE_PATH,
    log,
  );
  if (tightened) await removeForeignMembers(session, servicePath, desired, log);
}

/** `auth` entries stand for the session's digest identities. */
function resolve(entries: AclEntry[], authIds: readonly string[]): AclEntry[] {
  return entries.flatMap((entry) =>
    entry.scheme === "auth"
      ? authIds.map((id) => ({
        scheme: "digest",
        id,
        permissions: entry.permissions,
      }))
      : [entry]
  ).map((entry) => ({
    ...entry,
    permissions: expandPermissions(entry.permissions),
  }));
}

/**
 * What `entry` holds of `guarded` beyond what the desired ACL gives its id.
 * (A session without `admin` on a node sees digest ids masked as `user:x`;
 * they never match, so such entries count as outsiders, and that session
 * could not tighten the node anyway.)
 */
function excess(
  entry: AclEntry,
  desired: AclEntry[],
  guarded: readonly ZooKeeperPermission[],
): ZooKeeperPermission[] {
  const allowed = new Set(
    desired.filter((d) => d.scheme === entry.scheme && d.id === entry.id)
      .flatMap((d) => d.permissions),
  );
  return expandPermissions(entry.permissions).filter((p) =>
    guarded.includes(p) && !allowed.has(p)
  );
}

/** zkCli's spelling of an ACL: `world:anyone:r,digest:u:h:cdrwa`. */
export function formatAcl(entries: readonly AclEntry[]): string {
  const letter: Record<string, string> = {
    create: "c",
    delete: "d",
    read: "r",
    write: "w",
    admin: "a",
  };
  return entries.map((entry) =>
    `${entry.scheme}:${entry.id}:${
      ["create", "delete", "read", "write", "admin"].filter((p) =>
        expandPermissions(entry.permissions).includes(p as ZooKeeperPermission)
      ).map((p) => letter[p]).join("")
    }`
  ).join(",");
}

/**
 * Returns `true` when `path` was open and has been tightened, `false` when
 * it was fine.
 */
async function secureNode(
  session: ZooKeeperSession,
  path: string,
  desired: AclEntry[],
  guard: Guard,
  log: (message: string) => void,
): Promise<boolean> {
  const { acl, stat } = await session.getAcl(path);
  const over = (entry: AclEntry): ZooKeeperPermission[] =>
    guard.applies(entry) ? excess(entry, desired, guard.permissions) : [];
  const open = acl.map((entry) => ({ entry, excess: over(entry) }))
    .filter((e) => e.excess.length > 0);
  if (open.length === 0) return false;
  const who = open.map((e) =>
    `${e.entry.scheme}:${e.entry.id} may ${e.excess.join(", ")}`
  ).join("; ");
  // The registrar's entries, plus what the others may keep: one entry per
  // identity, permissions merged.
  const merged = new Map<string, AclEntry>();
  const entries = [
    ...desired,
    ...acl.map((entry) => ({
      ...entry,
      permissions: entry.permissions.filter((p) => !over(entry).includes(p)),
    })),
  ];
  for (const entry of entries) {
    const key = `${entry.scheme}:${entry.id}`;
    const permissions = expandPermissions([
      ...(merged.get(key)?.permissions ?? []),
      ...entry.permissions,
    ]);
    if (permissions.length > 0) merged.set(key, { ...entry, permissions });
  }
  const tightened = [...merged.values()];
  if (desired.length === 0) {
    throw new Error(
      `"${path}" is open (${who}) and the registrar's ACL names no identity of this session; give the session \`auth\` credentials`,
    );
  }
  try {
    await session.setAcl(path, tightened, stat.aversion);
  } catch (error) {
    // BAD_VERSION (the ACL changed meanwhile) is retried by the caller.
    if (!isZooKeeperError(error, "NO_AUTH")) throw error;
    throw new Error(
      `"${path}" is open (${who}) and this session may not change its ACL (it lacks admin on it). ` +
        `Fix: delete it so the server creates it with its ACL (zkCli: deleteall ${path}), ` +
        `or set its ACL (zkCli: setAcl ${path} ${formatAcl(tightened)})`,
    );
  }
  log(
    `zkrpc: "${path}" was open (${who}); set its ACL to ${
      formatAcl(tightened)
    }`,
  );
  return true;
}

/**
 * After tightening an open service path, deletes the members created while
 * it was open by someone outside the registrar's ACL (they could be fakes).
 */
async function removeForeignMembers(
  session: ZooKeeperSession,
  servicePath: string,
  desired: AclEntry[],
  log: (message: string) => void,
): Promise<void> {
  for (const child of await session.getChildren(servicePath)) {
    const path = `${servicePath}/${child}`;
    let acl: AclEntry[];
    try {
      ({ acl } = await session.getAcl(path));
    } catch (error) {
      if (isZooKeeperError(error, "NO_NODE")) continue;
      throw error;
    }
    const foreign = acl.some((entry) =>
      excess(entry, desired, ["write", "create", "delete", "admin"]).length > 0
    );
    if (!foreign) continue;
    try {
      await session.delete(path);
      log(
        `zkrpc: deleted member "${path}": created while "${servicePath}" was open, by someone outside the registrar's ACL (${
          formatAcl(acl)
        })`,
      );
    } catch (error) {
      if (!isZooKeeperError(error, "NO_NODE")) throw error;
    }
  }
}
