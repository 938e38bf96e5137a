/**
 * Plain TypeScript shapes for znode metadata, creation modes, ACLs and watch
 * events, and their conversion to and from the wire's records.
 *
 * @module
 */

import type { AclRecord, StatRecord } from "./_wire_client.ts";

/**
 * How a znode is created.
 *
 * @example Telling ephemeral modes apart
 * ```ts
 * import type { CreateMode } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const isEphemeral = (mode: CreateMode): boolean =>
 *   mode.startsWith("ephemeral");
 * assert.ok(isEphemeral("ephemeral_sequential"));
 * assert.ok(!isEphemeral("persistent"));
 * ```
 */
export type CreateMode =
  | "persistent"
  | "ephemeral"
  | "persistent_sequential"
  | "ephemeral_sequential";

/**
 * One permission of an ACL entry.
 *
 * @example Granting read and write
 * ```ts
 * import type { AclEntry, ZooKeeperPermission } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const readWrite: ZooKeeperPermission[] = ["read", "write"];
 * const entry: AclEntry = { scheme: "ip", id: "10.0.0.1", permissions: readWrite };
 * assert.ok(entry.permissions.includes("write"));
 * ```
 */
export type ZooKeeperPermission =
  | "read"
  | "write"
  | "create"
  | "delete"
  | "admin"
  | "all";

/**
 * One ACL entry: who (`scheme` + `id`) may do what.
 *
 * @example A digest entry for one user
 * ```ts
 * import type { AclEntry } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const sha1 = await crypto.subtle.digest(
 *   "SHA-1",
 *   new TextEncoder().encode("admin:secret"),
 * );
 * const id = `admin:${btoa(String.fromCharCode(...new Uint8Array(sha1)))}`;
 * const admin: AclEntry = { scheme: "digest", id, permissions: ["all"] };
 * assert.equal(admin.id.length, "admin:".length + 28);
 * ```
 */
export interface AclEntry {
  /** `world`, `auth`, `digest` or `ip`. */
  scheme: string;
  /**
   * `anyone` for `world`, `""` for `auth` (whoever the creating session
   * authenticated as), `user:base64(sha1(user:password))` for `digest`.
   */
  id: string;
  /** What the id may do. */
  permissions: ZooKeeperPermission[];
}

/**
 * A znode's ACL: `"open"` (anyone may do anything), `"creator_all"` (only the
 * digest identities the creating session added with the `auth` option),
 * `"creator_all_world_read"` (the creator may do anything, anyone may read),
 * or explicit entries.
 *
 * @example A preset and explicit entries
 * ```ts
 * import type { ZooKeeperAcl } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const preset: ZooKeeperAcl = "creator_all_world_read";
 * const explicit: ZooKeeperAcl = [
 *   { scheme: "ip", id: "10.0.0.1", permissions: ["all"] },
 *   { scheme: "world", id: "anyone", permissions: ["read"] },
 * ];
 * assert.equal(typeof preset, "string");
 * assert.ok(Array.isArray(explicit));
 * ```
 */
export type ZooKeeperAcl =
  | "open"
  | "creator_all"
  | "creator_all_world_read"
  | readonly AclEntry[];

/**
 * A znode's metadata (ZooKeeper's `Stat`).
 *
 * @example Checking who owns a node
 * ```ts ignore
 * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
 * import type { NodeStat } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
 * const stat: NodeStat | undefined = await session.exists("/rpc");
 * if (stat !== undefined) {
 *   console.log(`version ${stat.version}, ${stat.numChildren} children`);
 *   console.log(stat.ephemeralOwner === session.sessionId);
 * }
 * ```
 */
export interface NodeStat {
  /** Transaction id of the creation. */
  czxid: bigint;
  /** Transaction id of the last data change. */
  mzxid: bigint;
  /** Transaction id of the last change of children. */
  pzxid: bigint;
  /** Creation time, milliseconds since the epoch. */
  ctime: number;
  /** Last modification time, milliseconds since the epoch. */
  mtime: number;
  /** Number of data changes. */
  version: number;
  /** Number of changes of children. */
  cversion: number;
  /** Number of ACL changes. */
  aversion: number;
  /** Hex session id of the owner for an ephemeral node, else `undefined`. */
  ephemeralOwner: string | undefined;
  /** Length of the data in bytes. */
  dataLength: number;
  /** Number of children. */
  numChildren: number;
}

/**
 * What a watch reports.
 *
 * @example Deciding whether to read the children again
 * ```ts
 * import type { WatchEvent } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const event: WatchEvent = { type: "children_changed", path: "/rpc/calculator" };
 * const reread = event.type === "children_changed" || event.type === "deleted";
 * assert.ok(reread);
 * ```
 */
export interface WatchEvent {
  /** What happened to the node. */
  type: "created" | "deleted" | "data_changed" | "children_changed";
  /**
   * The path of the node the event is about: the watched path, or for a
   * recursive watch the node below it that changed.
   */
  path: string;
}

/**
 * A watch callback (one-shot or persistent).
 *
 * @example A watcher that records events
 * ```ts
 * import type { Watcher, WatchEvent } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const events: WatchEvent[] = [];
 * const watcher: Watcher = (event) => {
 *   events.push(event);
 * };
 * watcher({ type: "data_changed", path: "/config" });
 * assert.equal(events[0]?.path, "/config");
 * ```
 */
export type Watcher = (event: WatchEvent) => void;

/**
 * How a persistent watch follows a node: `"persistent"` reports changes of
 * the node itself and of its list of children; `"persistent_recursive"`
 * reports the creation, deletion and data changes of the node and of every
 * node below it, each with that node's path.
 *
 * @example The default mode
 * ```ts
 * import type { PersistentWatchMode } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const mode: PersistentWatchMode = "persistent_recursive";
 * assert.equal(mode, "persistent_recursive");
 * ```
 */
export type PersistentWatchMode = "persistent" | "persistent_recursive";

/** ZooKeeper's `CreateMode` flags. */
const MODES: Record<CreateMode, number> = {
  persistent: 0,
  ephemeral: 1,
  persistent_sequential: 2,
  ephemeral_sequential: 3,
};

/** ZooKeeper's `Perms` bits. */
const PERMISSIONS: Record<ZooKeeperPermission, number> = {
  read: 1,
  write: 2,
  create: 4,
  delete: 8,
  admin: 16,
  all: 31,
};

const WORLD = { scheme: "world", id: "anyone" };
const CREATOR = { scheme: "auth", id: "" };

const EVENT_TYPES: Record<number, WatchEvent["type"]> = {
  1: "created",
  2: "deleted",
  3: "data_changed",
  4: "children_changed",
};

/**
 * Converts a creation mode to the client's number.
 *
 * @param mode The mode.
 * @returns The client's constant.
 */
export function toClientMode(mode: CreateMode): number {
  const value = MODES[mode];
  if (value === undefined) {
    throw new TypeError(`Cannot create node: unknown mode "${mode}"`);
  }
  return value;
}

/**
 * Converts an ACL to the client's `ACL` objects.
 *
 * @param acl The ACL.
 * @returns The client's ACL list.
 */
export function toClientAcl(acl: ZooKeeperAcl): AclRecord[] {
  switch (acl) {
    case "open":
      return [{ permission: PERMISSIONS.all, id: WORLD }];
    case "creator_all":
      return [{ permission: PERMISSIONS.all, id: CREATOR }];
    case "creator_all_world_read":
      return [
        { permission: PERMISSIONS.all, id: CREATOR },
        { permission: PERMISSIONS.read, id: WORLD },
      ];
  }
  const entries = acl as readonly AclEntry[];
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new TypeError("Cannot create node: the ACL must not be empty");
  }
  return entries.map((entry: AclEntry) => {
    if (
      typeof entry !== "object" || entry === null ||
      typeof entry.scheme !== "string" || entry.scheme === "" ||
      typeof entry.id !== "string" || !Array.isArray(entry.permissions)
    ) {
      throw new TypeError(
        "Cannot create node: an ACL entry needs a non-empty string scheme, a string id and a list of permissions",
      );
    }
    let mask = 0;
    for (const permission of entry.permissions) {
      const bit = PERMISSIONS[permission];
      if (bit === undefined) {
        throw new TypeError(
          `Cannot create node: unknown permission "${permission}"`,
        );
      }
      mask |= bit;
    }
    if (mask === 0) {
      throw new TypeError(
        `Cannot create node: the ACL entry for ${entry.scheme}:${entry.id} grants no permission`,
      );
    }
    return { permission: mask, id: { scheme: entry.scheme, id: entry.id } };
  });
}

/**
 * The entries of an ACL, presets spelled out: `"open"` is `world:anyone`
 * with every permission, `"creator_all"` is `auth:` (the creating session's
 * identities) with every permission, `"creator_all_world_read"` adds
 * `world:anyone` read.
 *
 * @param acl The ACL.
 * @returns Its entries.
 */
export function aclEntries(acl: ZooKeeperAcl): AclEntry[] {
  const anyone = (permissions: ZooKeeperPermission[]): AclEntry => ({
    scheme: "world",
    id: "anyone",
    permissions,
  });
  const creator: AclEntry = { scheme: "auth", id: "", permissions: ["all"] };
  switch (acl) {
    case "open":
      return [anyone(["all"])];
    case "creator_all":
      return [creator];
    case "creator_all_world_read":
      return [creator, anyone(["read"])];
  }
  return (acl as readonly AclEntry[]).map((entry) => ({
    ...entry,
    permissions: [...entry.permissions],
  }));
}

const SINGLE_PERMISSIONS = [
  "read",
  "write",
  "create",
  "delete",
  "admin",
] as const satisfies ZooKeeperPermission[];

/**
 * The single permissions (never `"all"`) an entry grants.
 *
 * @param permissions An entry's permissions.
 * @returns `read`, `write`, `create`, `delete`, `admin`, in that order.
 */
export function expandPermissions(
  permissions: readonly ZooKeeperPermission[],
): ZooKeeperPermission[] {
  const all = permissions.includes("all");
  return SINGLE_PERMISSIONS.filter((p) => all || permissions.includes(p));
}

/**
 * Converts the client's `ACL` objects to entries.
 *
 * @param acls What the client's `getACL` returned.
 * @returns The entries, permissions spelled out one by one.
 */
export function fromClientAcl(acls: unknown): AclEntry[] {
  if (!Array.isArray(acls)) return [];
  return acls.map((item) => {
    const acl = item as {
      permission: number;
      id: { scheme: string; id: string };
    };
    return {
      scheme: acl.id.scheme,
      id: acl.id.id,
      permissions: SINGLE_PERMISSIONS.filter((p) =>
        (acl.permission & PERMISSIONS[p]) !== 0
      ),
    };
  });
}

/**
 * Converts the wire's `Stat` to a {@linkcode NodeStat}.
 *
 * @param stat The stat as the client read it.
 * @returns The plain stat.
 */
export function toNodeStat(stat: StatRecord): NodeStat {
  const owner = stat.ephemeralOwner;
  return {
    czxid: stat.czxid,
    mzxid: stat.mzxid,
    pzxid: stat.pzxid,
    ctime: Number(stat.ctime),
    mtime: Number(stat.mtime),
    version: stat.version,
    cversion: stat.cversion,
    aversion: stat.aversion,
    ephemeralOwner: owner === 0n
      ? undefined
      : BigInt.asUintN(64, owner).toString(16).padStart(16, "0"),
    dataLength: stat.dataLength,
    numChildren: stat.numChildren,
  };
}

/**
 * Converts the client's watch event.
 *
 * @param event The client's event.
 * @returns The plain event.
 */
export function toWatchEvent(
  event: { type: number; path: string },
): WatchEvent {
  return {
    type: EVENT_TYPES[event.type] ?? "data_changed",
    path: event.path,
  };
}
