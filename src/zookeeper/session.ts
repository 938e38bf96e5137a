/**
 * A promise-based ZooKeeper session over zkrpc's own client (`_wire_client.ts`), with bounded
 * connect, operation and close, typed errors and session state events.
 *
 * @module
 */

import {
  type AclRecord,
  type Callback,
  type Client,
  clients,
  CM_AUTH_FAILED,
  CM_CLOSED,
  CM_CONNECTED,
  CM_CONNECTING,
  CM_DISCONNECTED,
  CM_SESSION_EXPIRED,
  type StatRecord,
} from "./_wire_client.ts";
import { ZooKeeperError } from "./errors.ts";
import { deadline, isTimeoutError } from "../_async.ts";
import { classifyFailure } from "./_failure.ts";
import {
  type FinalCode,
  PendingOperations,
  validatePath,
} from "./_operations.ts";
import { SessionWatches } from "./_watches.ts";
import type { ZooKeeperSessionOptions } from "../discovery/session_options.ts";
export type { ZooKeeperSessionOptions };
import { checkSessionOptions, parseConnectionString } from "./config.ts";
import { ZOOKEEPER_SESSION_DEFAULTS } from "../_defaults.ts";
import {
  type AclEntry,
  type CreateMode,
  fromClientAcl,
  type NodeStat,
  type PersistentWatchMode,
  toClientAcl,
  toClientMode,
  toNodeStat,
  type Watcher,
  type ZooKeeperAcl,
} from "./types.ts";

export type {
  AclEntry,
  CreateMode,
  NodeStat,
  PersistentWatchMode,
  Watcher,
  WatchEvent,
  ZooKeeperAcl,
  ZooKeeperPermission,
} from "./types.ts";
export {
  isZooKeeperError,
  ZooKeeperError,
  type ZooKeeperErrorCode,
} from "./errors.ts";

/**
 * Where a session stands. `expired` and `closed` are final: make a new
 * session.
 *
 * @example Telling final states apart
 * ```ts
 * import type { ZooKeeperSessionState } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const isFinal = (state: ZooKeeperSessionState): boolean =>
 *   state === "expired" || state === "closed";
 * assert.ok(isFinal("expired"));
 * assert.ok(!isFinal("disconnected"));
 * ```
 */
export type ZooKeeperSessionState =
  | "connected"
  | "disconnected"
  | "expired"
  | "closed";

/**
 * What {@linkcode ZooKeeperSession.getAcl} returns.
 *
 * @example Who may create members under a service path
 * ```ts ignore
 * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
 * import type { NodeAcl } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
 * const { acl }: NodeAcl = await session.getAcl("/rpc/calculator");
 * console.log(acl.filter((entry) => entry.permissions.includes("create")));
 * ```
 */
export interface NodeAcl {
  /** The node's ACL; permissions spelled out one by one, never `"all"`. */
  acl: AclEntry[];
  /** The node's metadata (`aversion` is the ACL's version). */
  stat: NodeStat;
}

/**
 * Options for {@linkcode ZooKeeperSession.create}.
 *
 * @example Options for a server's member node
 * ```ts
 * import type { CreateOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const options: CreateOptions = {
 *   data: JSON.stringify({ host: "127.0.0.1", port: 9001 }),
 *   mode: "ephemeral_sequential",
 *   acl: "open",
 * };
 * assert.equal(options.mode, "ephemeral_sequential");
 * ```
 */
export interface CreateOptions {
  /**
   * The node's data, when not given as the second argument of
   * {@linkcode ZooKeeperSession.create}.
   *
   * @default {undefined}
   */
  data?: Uint8Array | string | undefined;
  /**
   * How the node is created.
   *
   * @default {"persistent"}
   */
  mode?: CreateMode | undefined;
  /**
   * Who may do what with the node.
   *
   * @default {"open"}
   */
  acl?: ZooKeeperAcl | undefined;
}

/**
 * Options for reads that can leave a one-shot watch.
 *
 * @example A one-shot watch that resolves a promise
 * ```ts
 * import type { WatchOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const changed = Promise.withResolvers<string>();
 * const options: WatchOptions = { watch: (event) => changed.resolve(event.path) };
 * options.watch?.({ type: "children_changed", path: "/rpc/calculator" });
 * assert.equal(await changed.promise, "/rpc/calculator");
 * ```
 */
export interface WatchOptions {
  /**
   * Called once, on the next change of the node (or its children, for
   * {@linkcode ZooKeeperSession.getChildren}). Re-arm by reading again.
   * Watches survive reconnections of the same session but not its expiry or
   * close, which are reported by the session's events instead.
   *
   * @default {undefined}
   */
  watch?: Watcher | undefined;
}

/**
 * Options for {@linkcode ZooKeeperSession.addWatch}.
 *
 * @example A recursive watch
 * ```ts
 * import type { AddWatchOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const options: AddWatchOptions = { mode: "persistent_recursive" };
 * assert.equal(options.mode, "persistent_recursive");
 * ```
 */
export interface AddWatchOptions {
  /**
   * What the watch reports.
   *
   * @default {"persistent_recursive"}
   */
  mode?: PersistentWatchMode | undefined;
}

/**
 * A persistent watch added by {@linkcode ZooKeeperSession.addWatch}; remove
 * it (or `await using` it) when done.
 *
 * @example Remove a watch when done
 * ```ts ignore
 * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
 * await using _watch = await session.addWatch("/rpc", (event) => {
 *   console.log(event.type, event.path);
 * });
 * ```
 */
export interface PersistentWatch extends AsyncDisposable {
  /** The watched path. */
  readonly path: string;
  /** What the watch reports. */
  readonly mode: PersistentWatchMode;
  /**
   * Stops calling the watcher; when no watcher is left on this path and
   * mode, asks ZooKeeper to remove the watch (when connected; this also
   * removes the session's one-shot watches on that exact path, as
   * ZooKeeper's `removeWatches` can only remove "any" watch there). Never
   * rejects. Idempotent.
   */
  remove(): Promise<void>;
}

/**
 * What {@linkcode ZooKeeperSession.getData} returns.
 *
 * @example Reading a node's data and version
 * ```ts ignore
 * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
 * import type { NodeData } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
 * await session.create("/config", "v1");
 * const { data, stat }: NodeData = await session.getData("/config");
 * console.log(new TextDecoder().decode(data), stat.version);
 * ```
 */
export interface NodeData {
  /** The node's data, `undefined` when it has none. */
  data: Uint8Array | undefined;
  /** The node's metadata. */
  stat: NodeStat;
}

/**
 * One ZooKeeper session: a promise wrapper over zkrpc's ZooKeeper client.
 *
 * Every operation is bounded: it rejects with a {@linkcode ZooKeeperError}
 * whose `code` is `TIMEOUT` after `operationTimeout` (also while waiting for
 * a reconnection), `SESSION_EXPIRED` once the session has expired, and
 * `CLOSED` after {@linkcode ZooKeeperSession.close}. Server errors keep
 * ZooKeeper's names (`NO_NODE`, `NODE_EXISTS`, `NOT_EMPTY`, `BAD_VERSION`,
 * `NO_AUTH`...).
 *
 * Events (plain `Event`s): `connected` (again, after a reconnection),
 * `disconnected` (the connection dropped; the client keeps reconnecting and
 * the session, its ephemeral nodes and watches live on until the server
 * expires it), `expired` (final: ephemeral nodes are gone; make a new session)
 * and `closed`.
 *
 * @example Create, read and delete a node
 * ```ts ignore
 * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
 * await session.create("/demo", new TextEncoder().encode("hi"));
 * const { data } = await session.getData("/demo");
 * assert.equal(new TextDecoder().decode(data), "hi");
 * await session.delete("/demo");
 * ```
 */
export class ZooKeeperSession extends EventTarget implements AsyncDisposable {
  #connectionString: string;
  #client: Client;
  #state: ZooKeeperSessionState | "connecting" = "connecting";
  #sessionId = "";
  #sessionPassword: Uint8Array = new Uint8Array(16);
  #operations: PendingOperations;
  #watches = new SessionWatches(() => this.#state === "closed");
  #closing: Promise<void> | undefined;
  #lastConnectError: Error | undefined;
  /** Servers whose last attempt failed for good. */
  #deniedServers = new Set<string>();
  /** Rejects the first connect; set while it waits. */
  #failOpen: ((error: ZooKeeperError) => void) | undefined;
  #credentials: readonly string[];
  #authIds: readonly string[] = [];

  private constructor(
    connectionString: string,
    options: ZooKeeperSessionOptions,
  ) {
    super();
    const parsed = parseConnectionString(connectionString);
    checkSessionOptions(options);
    this.#connectionString = connectionString;
    this.#operations = new PendingOperations(
      options.operationTimeout ?? ZOOKEEPER_SESSION_DEFAULTS.operationTimeout,
    );
    const onConnectError = options.onConnectError;
    const servers = new Set(
      parsed.servers.map(({ host, port }) => `${host}:${port}`),
    );
    const onSocketError = (error: Error, server: string): void => {
      const failure = classifyFailure(error);
      this.#lastConnectError = error;
      if (failure.connectCode === undefined) {
        this.#deniedServers.delete(server);
      } else if (this.#state === "connecting") {
        // Every server failed for good: connecting again cannot help.
        this.#deniedServers.add(server);
        if (this.#deniedServers.size === servers.size) {
          this.#failOpen?.(
            new ZooKeeperError(
              failure.connectCode,
              `Cannot connect to ZooKeeper at ${this.#connectionString}: ${failure.reason}`,
              { cause: error },
            ),
          );
        }
      }
      if (onConnectError === undefined) return;
      try {
        onConnectError(error);
      } catch (thrown) {
        reportError(thrown);
      }
    };
    try {
      this.#client = clients.create(
        connectionString,
        options.sessionTimeout ?? ZOOKEEPER_SESSION_DEFAULTS.sessionTimeout,
        { onSocketError },
      );
    } catch (error) {
      throw new TypeError(
        `Cannot connect to ZooKeeper: invalid connection string "${connectionString}"`,
        { cause: error },
      );
    }
    const auth = options.auth === undefined
      ? []
      : typeof options.auth === "string"
      ? [options.auth]
      : options.auth;
    for (const credential of auth) {
      this.#client.addAuthInfo("digest", new TextEncoder().encode(credential));
    }
    this.#credentials = auth;
    this.#client.onState((state) => this.#onClientState(state));
    this.#client.onWatchEvent((event) => this.#watches.dispatch(event));
  }

  /**
   * Opens a session and waits until it is connected.
   *
   * @param connectionString `host:port[,host:port...][/chroot]`.
   * @param options Timeouts and credentials.
   * @returns The connected session.
   * @throws {TypeError} (rejects at once) when the connection string or an
   * option is malformed, e.g. `port "xx" in "h:xx" is not a number`.
   * @throws {RangeError} (rejects at once) when a port or timeout is out of
   * range.
   * @throws {ZooKeeperError} `TIMEOUT` when no server accepted the session
   * within `connectTimeout` (the message names the connection string and the
   * last reason an attempt failed); `AUTH_FAILED` when the server rejected
   * the credentials.
   *
   * @example Connect with a short timeout
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181", {
   *   connectTimeout: 2000,
   *   sessionTimeout: 4000,
   * });
   * assert.equal(session.state, "connected");
   * ```
   */
  static async connect(
    connectionString: string,
    options: ZooKeeperSessionOptions = {},
  ): Promise<ZooKeeperSession> {
    const session = new ZooKeeperSession(connectionString, options);
    const authIds = Promise.all(session.#credentials.map(digestId));
    try {
      await session.#open(
        options.connectTimeout ?? ZOOKEEPER_SESSION_DEFAULTS.connectTimeout,
        options.signal,
      );
    } finally {
      // Also when the open failed: no digest is left running.
      session.#authIds = await authIds;
    }
    const { chroot } = parseConnectionString(connectionString);
    if (chroot !== undefined) await session.#checkChroot(chroot);
    return session;
  }

  /** The session's state. */
  get state(): ZooKeeperSessionState {
    return this.#state === "connecting" ? "disconnected" : this.#state;
  }

  /** The connection string the session was opened with. */
  get connectionString(): string {
    return this.#connectionString;
  }

  /** The session id as 16 hex digits, as ZooKeeper's logs print it. */
  get sessionId(): string {
    return this.#sessionId;
  }

  /** The session password (16 bytes); with the id it can resume the session. */
  get sessionPassword(): Uint8Array {
    return this.#sessionPassword.slice();
  }

  /**
   * The `digest` identities the session authenticated as (from the `auth`
   * option), as ACLs name them: `user:base64(sha1("user:password"))`.
   */
  get authIds(): readonly string[] {
    return this.#authIds;
  }

  /** The session timeout the server granted, in milliseconds. */
  get sessionTimeout(): number {
    return this.#client.sessionTimeout;
  }

  /**
   * Creates a node.
   *
   * @param path Absolute path; for sequential modes, the prefix.
   * @param data Bytes (or a string, stored as UTF-8); or the options, with
   * the data in `options.data`.
   * @param options Mode and ACL.
   * @returns The created path (with the sequence suffix for sequential modes).
   *
   * @example Register an ephemeral sequential member
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.mkdirp("/rpc/calculator");
   * const path = await session.create(
   *   "/rpc/calculator/server",
   *   JSON.stringify({ host: "127.0.0.1", port: 9001 }),
   *   { mode: "ephemeral_sequential" },
   * );
   * assert.match(path, /^\/rpc\/calculator\/server\d{10}$/);
   * ```
   */
  create(
    path: string,
    data?: Uint8Array | string | CreateOptions,
    options: CreateOptions = {},
  ): Promise<string> {
    if (
      data !== undefined && typeof data !== "string" &&
      !(data instanceof Uint8Array)
    ) {
      options = data;
      data = options.data;
    }
    let mode: number;
    let acl: AclRecord[];
    try {
      mode = toClientMode(options.mode ?? "persistent");
      acl = toClientAcl(options.acl ?? "open");
    } catch (error) {
      return Promise.reject(error);
    }
    const bytes = data === undefined ? undefined : toBytes(data);
    return this.#run(
      `Cannot create "${path}"`,
      path,
      (callback) => this.#client.create(path, bytes, acl, mode, callback),
      (created) => created as string,
    );
  }

  /**
   * Creates `path` and any missing ancestors as persistent nodes; existing
   * nodes are left alone.
   *
   * @param path Absolute path.
   * @param options The ACL for the nodes it creates.
   *
   * @example Make sure a service path exists
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.mkdirp("/rpc/calculator");
   * assert.ok(await session.exists("/rpc/calculator"));
   * ```
   */
  async mkdirp(
    path: string,
    options: { acl?: ZooKeeperAcl | undefined } = {},
  ): Promise<void> {
    validatePath(path, "Cannot create");
    let current = "";
    for (const segment of path.split("/").slice(1)) {
      current += `/${segment}`;
      try {
        await this.create(current, undefined, {
          mode: "persistent",
          acl: options.acl ?? "open",
        });
      } catch (error) {
        if (error instanceof ZooKeeperError && error.code === "NODE_EXISTS") {
          continue;
        }
        throw error;
      }
    }
  }

  /**
   * Reads a node's data and metadata.
   *
   * @param path Absolute path.
   * @param options An optional one-shot watch on the node's data.
   * @returns The data and stat.
   *
   * @example Read a node
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.create("/greeting", "hello");
   * const { data, stat } = await session.getData("/greeting");
   * assert.equal(new TextDecoder().decode(data), "hello");
   * assert.equal(stat.version, 0);
   * ```
   */
  getData(path: string, options: WatchOptions = {}): Promise<NodeData> {
    return this.#read(
      `Cannot read "${path}"`,
      path,
      "getData",
      options.watch,
      (data, stat) => ({
        data: data == null ? undefined : new Uint8Array(data as Uint8Array),
        stat: toNodeStat(stat as StatRecord),
      }),
    );
  }

  /**
   * Replaces a node's data.
   *
   * @param path Absolute path.
   * @param data Bytes (or a string, stored as UTF-8).
   * @param version Expected version; `-1` matches any.
   * @returns The node's new stat.
   *
   * @example Update a node
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.create("/config", "a");
   * const stat = await session.setData("/config", "b", 0);
   * assert.equal(stat.version, 1);
   * ```
   */
  setData(
    path: string,
    data: Uint8Array | string,
    version = -1,
  ): Promise<NodeStat> {
    if (typeof data !== "string" && !(data instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError(
          `Cannot write "${path}": data must be a string or a Uint8Array`,
        ),
      );
    }
    const bytes = toBytes(data);
    return this.#run(
      `Cannot write "${path}"`,
      path,
      (callback) => this.#client.setData(path, bytes, version, callback),
      (stat) => toNodeStat(stat as StatRecord),
    );
  }

  /**
   * Lists a node's children (names, not paths).
   *
   * @param path Absolute path.
   * @param options An optional one-shot watch on the list of children.
   * @returns The children's names, unsorted.
   *
   * @example Watch the members of a service
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.mkdirp("/rpc/calculator");
   * const changed = Promise.withResolvers<void>();
   * await session.getChildren("/rpc/calculator", {
   *   watch: () => changed.resolve(),
   * });
   * await session.create("/rpc/calculator/server", "{}", {
   *   mode: "ephemeral_sequential",
   * });
   * await changed.promise;
   * assert.equal((await session.getChildren("/rpc/calculator")).length, 1);
   * ```
   */
  getChildren(path: string, options: WatchOptions = {}): Promise<string[]> {
    return this.#read(
      `Cannot list "${path}"`,
      path,
      "getChildren",
      options.watch,
      (children) => [...(children as string[])],
    );
  }

  /**
   * Tells whether a node exists.
   *
   * @param path Absolute path.
   * @param options An optional one-shot watch that fires when the node is
   * created, changed or deleted.
   * @returns The node's stat, or `undefined` when it does not exist.
   *
   * @example Check for a node
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * assert.equal(await session.exists("/nothing-here"), undefined);
   * ```
   */
  exists(
    path: string,
    options: WatchOptions = {},
  ): Promise<NodeStat | undefined> {
    return this.#read(
      `Cannot check "${path}"`,
      path,
      "exists",
      options.watch,
      (stat) => stat == null ? undefined : toNodeStat(stat as StatRecord),
    );
  }

  /**
   * Reads a node's ACL.
   *
   * @param path Absolute path.
   * @returns The ACL and the node's stat.
   *
   * @example Is a node open to anyone?
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.create("/open", "", { acl: "open" });
   * const { acl } = await session.getAcl("/open");
   * assert.deepEqual(acl, [{
   *   scheme: "world",
   *   id: "anyone",
   *   permissions: ["read", "write", "create", "delete", "admin"],
   * }]);
   * ```
   */
  getAcl(path: string): Promise<NodeAcl> {
    return this.#run(
      `Cannot read the ACL of "${path}"`,
      path,
      (callback) => this.#client.getACL(path, callback),
      (acl, stat) => ({
        acl: fromClientAcl(acl),
        stat: toNodeStat(stat as StatRecord),
      }),
    );
  }

  /**
   * Replaces a node's ACL (needs the `admin` permission on it).
   *
   * @param path Absolute path.
   * @param acl The new ACL.
   * @param version Expected ACL version (`stat.aversion`); `-1` matches any.
   * @returns The node's new stat.
   *
   * @example Make a node read-only for everyone but its creator
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181", {
   *   auth: "admin:secret",
   * });
   * await session.create("/config", "v1");
   * await session.setAcl("/config", "creator_all_world_read");
   * ```
   */
  setAcl(path: string, acl: ZooKeeperAcl, version = -1): Promise<NodeStat> {
    let entries: AclRecord[];
    try {
      entries = toClientAcl(acl);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(
      `Cannot set the ACL of "${path}"`,
      path,
      (callback) => this.#client.setACL(path, entries, version, callback),
      (stat) => toNodeStat(stat as StatRecord),
    );
  }

  /**
   * Deletes a node (which must have no children).
   *
   * @param path Absolute path.
   * @param version Expected version; `-1` matches any.
   *
   * @example Delete a node
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.create("/scratch");
   * await session.delete("/scratch");
   * assert.equal(await session.exists("/scratch"), undefined);
   * ```
   */
  delete(path: string, version = -1): Promise<void> {
    return this.#run(
      `Cannot delete "${path}"`,
      path,
      (callback) => this.#client.remove(path, version, callback),
      () => undefined,
    );
  }

  /**
   * Adds a persistent watch (ZooKeeper 3.6 or later): unlike the one-shot
   * watches of the reads, it stays armed and calls `watch` for every change;
   * in the default `"persistent_recursive"` mode, for the creation
   * (`"created"`), deletion (`"deleted"`) and data change (`"data_changed"`)
   * of `path` and of every node below it, with that node's path. The path
   * need not exist yet.
   *
   * The watch lasts as long as the connection: ZooKeeper forgets it when the
   * client reconnects, and does not replay what happened meanwhile. After a
   * `connected` event, call `addWatch` again (the same `watch` is not added
   * twice) and read again what the watch was following.
   *
   * @param path Absolute path.
   * @param watch Called with each event.
   * @param options The mode.
   * @returns The watch, to remove when done.
   * @throws {ZooKeeperError} `UNIMPLEMENTED` from a server older than 3.6
   * (which then also closes the connection).
   *
   * @example Follow the members of a service
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.mkdirp("/rpc/calculator");
   * const created = Promise.withResolvers<string>();
   * await using _watch = await session.addWatch("/rpc/calculator", (event) => {
   *   if (event.type === "created") created.resolve(event.path);
   * });
   * await session.create("/rpc/calculator/server", "{}", {
   *   mode: "ephemeral_sequential",
   * });
   * assert.match(await created.promise, /^\/rpc\/calculator\/server\d+$/);
   * ```
   */
  async addWatch(
    path: string,
    watch: Watcher,
    options: AddWatchOptions = {},
  ): Promise<PersistentWatch> {
    const { key, mode, added } = this.#watches.add(path, watch, options.mode);
    try {
      await this.#run(
        `Cannot watch "${path}"`,
        path,
        (callback) => this.#client.addWatch(path, mode, callback),
        () => undefined,
      );
    } catch (error) {
      if (added) this.#watches.forget(key, watch);
      throw error;
    }
    let removing: Promise<void> | undefined;
    const remove = () => removing ??= this.#removeWatch(key, watch);
    return { path, mode, remove, [Symbol.asyncDispose]: remove };
  }

  async #removeWatch(key: string, watch: Watcher): Promise<void> {
    const entry = this.#watches.forget(key, watch);
    if (entry === undefined) return;
    if (this.#state !== "connected") return; // gone with the connection
    await this.#run(
      `Cannot remove the watch on "${entry.path}"`,
      entry.path,
      (callback) =>
        this.#client.removeWatches(entry.path, entry.mode, callback),
      () => undefined,
    ).catch(() => {});
  }

  /**
   * Closes the session: ZooKeeper deletes its ephemeral nodes at once.
   * Pending operations reject with `CLOSED`. During an outage it does not wait
   * for the server: it destroys the socket and every timer. Idempotent.
   *
   * @example Close a session
   * ```ts ignore
   * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
   * import assert from "node:assert/strict";
   *
   * const session = await ZooKeeperSession.connect("127.0.0.1:2181");
   * await session.close();
   * assert.equal(session.state, "closed");
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Closes the session; see {@linkcode ZooKeeperSession.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    const wasConnected = this.#state === "connected" &&
      this.#client.isConnected();
    const final = this.#state === "expired" || this.#state === "closed";
    if (!final) this.#finish("closed", "CLOSED");
    if (wasConnected) {
      // Ask the server to end the session so ephemeral nodes go at once.
      await this.#client.endSession();
    }
    await this.#release();
    if (final && this.#state !== "closed") {
      this.#state = "closed";
      this.dispatchEvent(new Event("closed"));
    }
  }

  /** Destroys the client's socket and timers, whatever its state. */
  #release(): Promise<void> {
    return this.#client.release();
  }

  /**
   * The client prefixes every path with the chroot, and ZooKeeper
   * answers NO_NODE for each of them when the chroot does not exist, which
   * looks like an empty registry: fail at once, naming it, instead.
   */
  async #checkChroot(chroot: string): Promise<void> {
    let stat: NodeStat | undefined;
    try {
      stat = await this.exists("/");
    } catch (error) {
      await this.close();
      throw error;
    }
    if (stat !== undefined) return;
    await this.close();
    throw new ZooKeeperError(
      "NO_CHROOT",
      `Cannot connect to ZooKeeper at ${this.#connectionString}: chroot ${chroot} does not exist`,
      { path: chroot },
    );
  }

  async #open(connectTimeout: number, signal?: AbortSignal): Promise<void> {
    const opened = Promise.withResolvers<void>();
    this.#failOpen = (error) => opened.reject(error);
    const unwatch = this.#operations.watch(
      () => opened.resolve(),
      (error) => opened.reject(error),
    );
    this.#client.connect();
    try {
      await deadline(opened.promise, connectTimeout, { signal });
    } catch (error) {
      if (this.#state !== "closed" && this.#state !== "expired") {
        this.#state = "closed";
      }
      await this.#release();
      if (!isTimeoutError(error) || signal?.reason === error) throw error;
      const last = this.#lastConnectError;
      throw new ZooKeeperError(
        "TIMEOUT",
        `Cannot connect to ZooKeeper at ${this.#connectionString}: no server accepted the session within ${connectTimeout} ms${
          last === undefined ? "" : ` (last attempt: ${last.message})`
        }`,
        last === undefined ? {} : { cause: last },
      );
    } finally {
      this.#failOpen = undefined;
      unwatch();
    }
  }

  #onClientState(state: number): void {
    if (this.#state === "closed" || this.#state === "expired") return;
    switch (state) {
      case CM_CONNECTED: {
        this.#sessionId = this.#client.sessionId;
        this.#sessionPassword = this.#client.sessionPassword;
        const first = this.#state === "connecting";
        this.#state = "connected";
        if (!first) this.dispatchEvent(new Event("connected"));
        this.#operations.connected();
        break;
      }
      case CM_DISCONNECTED:
      case CM_CONNECTING:
        if (this.#state === "connected") {
          this.#state = "disconnected";
          this.dispatchEvent(new Event("disconnected"));
        }
        break;
      case CM_SESSION_EXPIRED:
        this.#finish("expired", "SESSION_EXPIRED");
        this.#release().catch(() => {});
        break;
      case CM_AUTH_FAILED:
        this.#finish("closed", "AUTH_FAILED");
        this.#release().catch(() => {});
        break;
      case CM_CLOSED:
        this.#finish("closed", "CLOSED");
        break;
    }
  }

  /** Enters a final state: rejects everything pending and tells listeners. */
  #finish(state: "expired" | "closed", code: FinalCode): void {
    const wasConnecting = this.#state === "connecting";
    this.#state = state;
    this.#operations.end(
      code,
      code === "AUTH_FAILED"
        ? `Cannot use ZooKeeper session at ${this.#connectionString}`
        : `Cannot use ZooKeeper session 0x${this.#sessionId}`,
    );
    if (!wasConnecting) this.dispatchEvent(new Event(state));
  }

  #run<T>(
    what: string,
    path: string,
    invoke: (callback: Callback) => void,
    map: (...results: unknown[]) => T,
  ): Promise<T> {
    try {
      validatePath(path, what);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#state === "closed" || this.#state === "expired") {
      return Promise.reject(
        new ZooKeeperError(
          this.#state === "closed" ? "CLOSED" : "SESSION_EXPIRED",
          what,
          { path },
        ),
      );
    }
    return this.#operations.run(
      what,
      path,
      this.#state === "connected",
      invoke,
      map,
    );
  }

  /** A read that may leave a one-shot watch. */
  #read<T>(
    what: string,
    path: string,
    read: "getData" | "getChildren" | "exists",
    watch: Watcher | undefined,
    map: (...results: unknown[]) => T,
  ): Promise<T> {
    const watcher = this.#watches.oneShot(watch);
    return this.#run(
      what,
      path,
      (callback) => this.#client[read](path, watcher, callback),
      map,
    );
  }
}

/**
 * The id ZooKeeper's `digest` scheme gives `user:password` in ACLs:
 * `user:base64(sha1("user:password"))`. WebCrypto rather than `node:crypto`,
 * which would add ~0.25 MiB to the old generation of every process that
 * imports this module (docs/performance.md, "Seventh round").
 */
async function digestId(credential: string): Promise<string> {
  const user = credential.slice(0, credential.indexOf(":"));
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-1", new TextEncoder().encode(credential)),
  );
  return `${user}:${btoa(String.fromCharCode(...hash))}`;
}

/** A node's data as bytes: a string as UTF-8. */
function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? new TextEncoder().encode(data) : data;
}
