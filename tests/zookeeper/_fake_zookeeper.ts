/**
 * An in-memory ZooKeeper for the unit tests of the registration and the
 * membership: a tree of znodes (data, version, ephemeral owner, ACL,
 * sequential names), sessions with ZooKeeper's watch semantics (one-shot
 * watches of `exists` / `getData` / `getChildren`, persistent watches
 * forgotten when the connection drops, every watch gone with the session),
 * and a keeper that hands out those sessions with the events of the real
 * `SessionKeeper` (`session`, `connected`, `disconnected`, `expired`,
 * `failed`).
 *
 * Scripting: {@linkcode FakeZooKeeper.failNext} makes the next matching
 * operation fail (optionally after applying it: a reply lost with the
 * connection), {@linkcode FakeZooKeeper.hold} holds matching answers until
 * released (the answer is computed when the request arrives, as ZooKeeper
 * does, so a held answer is stale by the time it is delivered: a late read),
 * and `legacy` makes `addWatch` answer `UNIMPLEMENTED` (ZooKeeper < 3.6).
 * Every request is logged in {@linkcode FakeZooKeeper.ops}.
 *
 * Watch events are delivered in a microtask, in order, before any answer
 * held at that moment.
 *
 * @module
 */

import {
  ZooKeeperError,
  type ZooKeeperErrorCode,
} from "../../src/zookeeper/errors.ts";
import {
  aclEntries,
  type AclEntry,
  expandPermissions,
  type NodeStat,
  type PersistentWatchMode,
  type Watcher,
  type WatchEvent,
  type ZooKeeperAcl,
} from "../../src/zookeeper/types.ts";
import type {
  PersistentWatch,
  ZooKeeperSession,
} from "../../src/zookeeper/session.ts";
import type { SessionKeeper } from "../../src/zookeeper/keeper.ts";

/** The operations a fake session answers. */
export type FakeOp =
  | "create"
  | "delete"
  | "exists"
  | "getData"
  | "setData"
  | "getChildren"
  | "getAcl"
  | "setAcl"
  | "addWatch"
  | "removeWatch";

/** One request a fake session received. */
export interface FakeRequest {
  op: FakeOp;
  path: string;
  session: string;
}

interface Znode {
  data: Uint8Array | undefined;
  version: number;
  aversion: number;
  ephemeralOwner: string | undefined;
  acl: AclEntry[];
}

interface OneShot {
  session: FakeSession;
  kind: "exists" | "getData" | "getChildren";
  path: string;
  watch: Watcher;
}

interface Persistent {
  session: FakeSession;
  path: string;
  mode: PersistentWatchMode;
  watch: Watcher;
}

interface Failure {
  op: FakeOp;
  path: ((path: string) => boolean) | undefined;
  code: ZooKeeperErrorCode;
  /** Apply the request, then fail: its reply was lost. */
  applied: boolean;
}

/** Answers held by {@linkcode FakeZooKeeper.hold}. */
export interface Hold {
  /** The requests held so far (their answers not delivered yet). */
  readonly held: FakeRequest[];
  /** Resolves once `count` requests are held. */
  reached(count?: number): Promise<void>;
  /** Delivers every held answer and stops holding. */
  release(): void;
}

function matches(
  wanted: string | ((path: string) => boolean) | undefined,
): ((path: string) => boolean) | undefined {
  if (wanted === undefined || typeof wanted === "function") return wanted;
  return (path) => path === wanted;
}

/**
 * An ACL as ZooKeeper stores it: `auth` entries become the session's digest
 * identities (`INVALID_ACL` when it has none).
 */
function resolveAcl(
  acl: ZooKeeperAcl,
  authIds: readonly string[],
): AclEntry[] {
  return aclEntries(acl).flatMap((entry) => {
    if (entry.scheme !== "auth") return [entry];
    if (authIds.length === 0) {
      throw new ZooKeeperError("INVALID_ACL", "fake ACL");
    }
    return authIds.map((id) => ({ ...entry, scheme: "digest", id }));
  });
}

/** More requests than any test makes: a loop. */
const MAX_REQUESTS = 5000;

function parentOf(path: string): string {
  const at = path.lastIndexOf("/");
  return at === 0 ? "/" : path.slice(0, at);
}

/** The in-memory ZooKeeper: its znodes, sessions and scripts. */
export class FakeZooKeeper {
  readonly nodes = new Map<string, Znode>([["/", {
    data: undefined,
    version: 0,
    aversion: 0,
    ephemeralOwner: undefined,
    acl: aclEntries("open"),
  }]]);
  /** Every request, in arrival order. */
  readonly ops: FakeRequest[] = [];
  /** `addWatch` answers `UNIMPLEMENTED`, as servers before 3.6. */
  legacy = false;
  #sequence = new Map<string, number>();
  #nextSession = 0x1000;
  #oneShot: OneShot[] = [];
  #persistent: Persistent[] = [];
  #failures: Failure[] = [];
  #holds: {
    op: FakeOp;
    path: ((path: string) => boolean) | undefined;
    release: Promise<void>;
    hold: Hold;
    onHeld: () => void;
  }[] = [];

  /** Opens a connected session. */
  connect(authIds: string[] = []): FakeSession {
    return new FakeSession(
      this,
      (this.#nextSession++).toString(16).padStart(16, "0"),
      authIds,
    );
  }

  /** Requests of `op` (on `path`, when given) so far. */
  count(op: FakeOp, path?: string): number {
    return this.ops.filter((r) =>
      r.op === op && (path === undefined || r.path === path)
    ).length;
  }

  /** The names of the children of `path`, sorted. */
  children(path: string): string[] {
    const prefix = path === "/" ? "/" : `${path}/`;
    return [...this.nodes.keys()]
      .filter((p) =>
        p !== "/" && p.startsWith(prefix) &&
        !p.slice(prefix.length).includes("/")
      )
      .map((p) => p.slice(prefix.length))
      .sort();
  }

  /**
   * Makes the next `op` (on a path `path` matches) fail with `code`; with
   * `applied`, after the request took effect (the reply was lost).
   */
  failNext(
    op: FakeOp,
    code: ZooKeeperErrorCode,
    options: {
      path?: string | ((path: string) => boolean);
      applied?: boolean;
    } = {},
  ): void {
    this.#failures.push({
      op,
      path: matches(options.path),
      code,
      applied: options.applied ?? false,
    });
  }

  /** Holds the answers of `op` (on a path `path` matches) until released. */
  hold(op: FakeOp, path?: string | ((path: string) => boolean)): Hold {
    const { promise: release, resolve } = Promise.withResolvers<void>();
    const held: FakeRequest[] = [];
    const waiters = new Set<{ count: number; resolve: () => void }>();
    const entry = {
      op,
      path: matches(path),
      release,
      onHeld: () => {
        for (const waiter of [...waiters]) {
          if (held.length >= waiter.count) {
            waiters.delete(waiter);
            waiter.resolve();
          }
        }
      },
      hold: {
        held,
        reached: (count = 1) => {
          if (held.length >= count) return Promise.resolve();
          const { promise, resolve } = Promise.withResolvers<void>();
          waiters.add({ count, resolve });
          return promise;
        },
        release: () => {
          const at = this.#holds.indexOf(entry);
          if (at >= 0) this.#holds.splice(at, 1);
          resolve();
        },
      },
    };
    this.#holds.push(entry);
    return entry.hold;
  }

  /** Runs one request of `session`: logs, fails or holds it as scripted. */
  async request<T>(
    session: FakeSession,
    op: FakeOp,
    path: string,
    apply: () => T,
  ): Promise<T> {
    if (typeof path !== "string" || !path.startsWith("/")) {
      // As the real session: a malformed path is a TypeError, never sent.
      throw new TypeError(`fake ${op}: invalid path "${path}"`);
    }
    const request = { op, path, session: session.sessionId };
    this.ops.push(request);
    if (this.ops.length > MAX_REQUESTS) {
      // A code path asking in a loop: fail it instead of spinning forever
      // in microtasks (which would starve every timer, deadlines included).
      throw new Error(`fake ZooKeeper: more than ${MAX_REQUESTS} requests`);
    }
    if (session.state !== "connected") {
      const code = session.state === "disconnected"
        ? "CONNECTION_LOSS"
        : session.state === "expired"
        ? "SESSION_EXPIRED"
        : "CLOSED";
      throw new ZooKeeperError(code, `fake ${op}`, { path });
    }
    const at = this.#failures.findIndex((f) =>
      f.op === op && (f.path === undefined || f.path(path))
    );
    const failure = at >= 0 ? this.#failures.splice(at, 1)[0] : undefined;
    if (failure !== undefined && !failure.applied) {
      await Promise.resolve();
      throw new ZooKeeperError(failure.code, `fake ${op}`, { path });
    }
    const hold = this.#holds.find((h) =>
      h.op === op && (h.path === undefined || h.path(path))
    );
    let result: { value: T } | { error: unknown };
    try {
      result = { value: apply() };
    } catch (error) {
      result = { error };
    }
    if (hold !== undefined) {
      hold.hold.held.push(request);
      hold.onHeld();
      await hold.release;
    } else {
      await Promise.resolve();
    }
    // Events queued before this answer are delivered first.
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    if (session.state !== "connected") {
      // The connection dropped or the session ended before the answer.
      throw new ZooKeeperError(
        session.state === "disconnected"
          ? "CONNECTION_LOSS"
          : session.state === "expired"
          ? "SESSION_EXPIRED"
          : "CLOSED",
        `fake ${op}`,
        { path },
      );
    }
    if (failure !== undefined) {
      throw new ZooKeeperError(failure.code, `fake ${op}`, { path });
    }
    if ("error" in result) throw result.error;
    return result.value;
  }

  stat(path: string): NodeStat | undefined {
    const node = this.nodes.get(path);
    if (node === undefined) return undefined;
    return {
      czxid: 0n,
      mzxid: 0n,
      pzxid: 0n,
      ctime: 0,
      mtime: 0,
      version: node.version,
      cversion: 0,
      aversion: node.aversion,
      ephemeralOwner: node.ephemeralOwner,
      dataLength: node.data?.length ?? 0,
      numChildren: this.children(path).length,
    };
  }

  /** Creates a node (by any session, or by the test itself). */
  createNode(
    path: string,
    data: Uint8Array | undefined,
    options: {
      owner?: string | undefined;
      sequential?: boolean;
      acl?: ZooKeeperAcl;
      authIds?: readonly string[];
    } = {},
  ): string {
    const parent = parentOf(path);
    if (!this.nodes.has(parent)) {
      throw new ZooKeeperError("NO_NODE", "fake create", { path });
    }
    if (this.nodes.get(parent)!.ephemeralOwner !== undefined) {
      throw new ZooKeeperError("NO_CHILDREN_FOR_EPHEMERALS", "fake create", {
        path,
      });
    }
    if (options.sequential) {
      const next = this.#sequence.get(parent) ?? 0;
      this.#sequence.set(parent, next + 1);
      path += String(next).padStart(10, "0");
    }
    if (this.nodes.has(path)) {
      throw new ZooKeeperError("NODE_EXISTS", "fake create", { path });
    }
    this.nodes.set(path, {
      data,
      version: 0,
      aversion: 0,
      ephemeralOwner: options.owner,
      acl: resolveAcl(options.acl ?? "open", options.authIds ?? []),
    });
    this.#fire(path, "created");
    this.#fire(parent, "children_changed");
    return path;
  }

  /** Deletes a node (by any session, or by the test itself). */
  deleteNode(path: string, version = -1): void {
    const node = this.nodes.get(path);
    if (node === undefined) {
      throw new ZooKeeperError("NO_NODE", "fake delete", { path });
    }
    if (version !== -1 && version !== node.version) {
      throw new ZooKeeperError("BAD_VERSION", "fake delete", { path });
    }
    if (this.children(path).length > 0) {
      throw new ZooKeeperError("NOT_EMPTY", "fake delete", { path });
    }
    this.nodes.delete(path);
    this.#fire(path, "deleted");
    this.#fire(parentOf(path), "children_changed");
  }

  /** Replaces a node's data (by any session, or by the test itself). */
  setNodeData(path: string, data: Uint8Array | undefined): NodeStat {
    const node = this.nodes.get(path);
    if (node === undefined) {
      throw new ZooKeeperError("NO_NODE", "fake setData", { path });
    }
    node.data = data;
    node.version++;
    this.#fire(path, "data_changed");
    return this.stat(path)!;
  }

  addOneShot(watch: OneShot): void {
    if (
      !this.#oneShot.some((w) =>
        w.session === watch.session && w.kind === watch.kind &&
        w.path === watch.path && w.watch === watch.watch
      )
    ) {
      this.#oneShot.push(watch);
    }
  }

  addPersistent(watch: Persistent): void {
    if (
      !this.#persistent.some((w) =>
        w.session === watch.session && w.path === watch.path &&
        w.mode === watch.mode && w.watch === watch.watch
      )
    ) {
      this.#persistent.push(watch);
    }
  }

  removePersistent(
    session: FakeSession,
    path: string,
    mode: PersistentWatchMode,
    watch: Watcher,
  ): void {
    this.#persistent = this.#persistent.filter((w) =>
      !(w.session === session && w.path === path && w.mode === mode &&
        w.watch === watch)
    );
  }

  /** The persistent watches of `session` (ZooKeeper's side). */
  persistentWatches(
    session?: FakeSession,
  ): { path: string; mode: PersistentWatchMode }[] {
    return this.#persistent.filter((w) =>
      session === undefined || w.session === session
    )
      .map(({ path, mode }) => ({ path, mode }));
  }

  /** The connection of `session` dropped: ZooKeeper forgets its persistent watches. */
  dropConnection(session: FakeSession): void {
    this.#persistent = this.#persistent.filter((w) => w.session !== session);
  }

  /** `session` ended: its watches go, then its ephemeral nodes. */
  endSession(session: FakeSession): void {
    this.#persistent = this.#persistent.filter((w) => w.session !== session);
    this.#oneShot = this.#oneShot.filter((w) => w.session !== session);
    for (const [path, node] of [...this.nodes]) {
      if (node.ephemeralOwner === session.sessionId) this.deleteNode(path);
    }
  }

  #fire(path: string, type: WatchEvent["type"]): void {
    const event: WatchEvent = { type, path };
    const due: Watcher[] = [];
    const kinds: OneShot["kind"][] = type === "children_changed"
      ? ["getChildren"]
      : type === "deleted"
      ? ["exists", "getData", "getChildren"]
      : type === "created"
      ? ["exists"]
      : ["exists", "getData"];
    this.#oneShot = this.#oneShot.filter((w) => {
      if (w.path !== path || !kinds.includes(w.kind)) return true;
      if (
        w.session.state === "connected" || w.session.state === "disconnected"
      ) due.push(w.watch);
      return false;
    });
    for (const w of this.#persistent) {
      if (w.session.state !== "connected") continue;
      const recursive = w.mode === "persistent_recursive";
      if (recursive && type === "children_changed") continue;
      const concerned = w.path === path ||
        (recursive && (w.path === "/" || path.startsWith(`${w.path}/`)));
      if (concerned) due.push(w.watch);
    }
    for (const watch of due) queueMicrotask(() => watch({ ...event }));
  }
}

/** A session of the {@linkcode FakeZooKeeper}, shaped as `ZooKeeperSession`. */
export class FakeSession extends EventTarget {
  readonly zk: FakeZooKeeper;
  readonly sessionId: string;
  readonly authIds: readonly string[];
  state: "connected" | "disconnected" | "expired" | "closed" = "connected";

  constructor(zk: FakeZooKeeper, sessionId: string, authIds: string[]) {
    super();
    this.zk = zk;
    this.sessionId = sessionId;
    this.authIds = authIds;
  }

  /** This session as the type the code under test takes. */
  get real(): ZooKeeperSession {
    return this as unknown as ZooKeeperSession;
  }

  create(
    path: string,
    data?: Uint8Array | string | {
      data?: Uint8Array | string | undefined;
      mode?: string;
      acl?: ZooKeeperAcl | undefined;
    },
    options: {
      data?: Uint8Array | string | undefined;
      mode?: string;
      acl?: ZooKeeperAcl | undefined;
    } = {},
  ): Promise<string> {
    if (
      data !== undefined && typeof data !== "string" &&
      !(data instanceof Uint8Array)
    ) {
      options = data;
      data = options.data;
    }
    const bytes = typeof data === "string"
      ? new TextEncoder().encode(data)
      : data;
    const mode = options.mode ?? "persistent";
    return this.zk.request(
      this,
      "create",
      path,
      () =>
        this.zk.createNode(path, bytes, {
          owner: mode.startsWith("ephemeral") ? this.sessionId : undefined,
          sequential: mode.endsWith("sequential"),
          acl: options.acl ?? "open",
          authIds: this.authIds,
        }),
    );
  }

  async mkdirp(
    path: string,
    options: { acl?: ZooKeeperAcl | undefined } = {},
  ): Promise<void> {
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

  delete(path: string, version = -1): Promise<void> {
    return this.zk.request(
      this,
      "delete",
      path,
      () => this.zk.deleteNode(path, version),
    );
  }

  exists(
    path: string,
    options: { watch?: Watcher | undefined } = {},
  ): Promise<NodeStat | undefined> {
    return this.zk.request(this, "exists", path, () => {
      if (options.watch) {
        this.zk.addOneShot({
          session: this,
          kind: "exists",
          path,
          watch: options.watch,
        });
      }
      return this.zk.stat(path);
    });
  }

  getData(
    path: string,
    options: { watch?: Watcher | undefined } = {},
  ): Promise<{ data: Uint8Array | undefined; stat: NodeStat }> {
    return this.zk.request(this, "getData", path, () => {
      const node = this.zk.nodes.get(path);
      if (node === undefined) {
        throw new ZooKeeperError("NO_NODE", "fake getData", { path });
      }
      if (options.watch) {
        this.zk.addOneShot({
          session: this,
          kind: "getData",
          path,
          watch: options.watch,
        });
      }
      return { data: node.data?.slice(), stat: this.zk.stat(path)! };
    });
  }

  setData(path: string, data: Uint8Array | string): Promise<NodeStat> {
    const bytes = typeof data === "string"
      ? new TextEncoder().encode(data)
      : data;
    return this.zk.request(
      this,
      "setData",
      path,
      () => this.zk.setNodeData(path, bytes),
    );
  }

  getChildren(
    path: string,
    options: { watch?: Watcher | undefined } = {},
  ): Promise<string[]> {
    return this.zk.request(this, "getChildren", path, () => {
      if (!this.zk.nodes.has(path)) {
        throw new ZooKeeperError("NO_NODE", "fake getChildren", { path });
      }
      if (options.watch) {
        this.zk.addOneShot({
          session: this,
          kind: "getChildren",
          path,
          watch: options.watch,
        });
      }
      return this.zk.children(path);
    });
  }

  getAcl(path: string): Promise<{ acl: AclEntry[]; stat: NodeStat }> {
    return this.zk.request(this, "getAcl", path, () => {
      const node = this.zk.nodes.get(path);
      if (node === undefined) {
        throw new ZooKeeperError("NO_NODE", "fake getAcl", { path });
      }
      return {
        acl: node.acl.map((e) => ({
          ...e,
          permissions: expandPermissions(e.permissions),
        })),
        stat: this.zk.stat(path)!,
      };
    });
  }

  setAcl(path: string, acl: ZooKeeperAcl): Promise<NodeStat> {
    return this.zk.request(this, "setAcl", path, () => {
      const node = this.zk.nodes.get(path);
      if (node === undefined) {
        throw new ZooKeeperError("NO_NODE", "fake setAcl", { path });
      }
      node.acl = resolveAcl(acl, this.authIds);
      node.aversion++;
      return this.zk.stat(path)!;
    });
  }

  async addWatch(
    path: string,
    watch: Watcher,
    options: { mode?: PersistentWatchMode } = {},
  ): Promise<PersistentWatch> {
    const mode = options.mode ?? "persistent_recursive";
    await this.zk.request(this, "addWatch", path, () => {
      if (this.zk.legacy) {
        throw new ZooKeeperError("UNIMPLEMENTED", "fake addWatch", { path });
      }
      this.zk.addPersistent({ session: this, path, mode, watch });
    });
    let removed: Promise<void> | undefined;
    const remove = () =>
      removed ??= this.zk.request(this, "removeWatch", path, () => {
        this.zk.removePersistent(this, path, mode, watch);
      }).catch(() => {});
    return { path, mode, remove, [Symbol.asyncDispose]: remove };
  }

  /** The connection drops (the session lives on). */
  disconnect(): void {
    if (this.state !== "connected") return;
    this.state = "disconnected";
    this.zk.dropConnection(this);
    this.dispatchEvent(new Event("disconnected"));
  }

  /** The session is connected again. */
  reconnect(): void {
    if (this.state !== "disconnected") return;
    this.state = "connected";
    this.dispatchEvent(new Event("connected"));
  }

  /** ZooKeeper expired the session: its ephemeral nodes go. */
  expire(): void {
    if (this.state === "expired" || this.state === "closed") return;
    this.state = "expired";
    this.zk.endSession(this);
    this.dispatchEvent(new Event("expired"));
  }

  close(): Promise<void> {
    if (this.state !== "expired" && this.state !== "closed") {
      this.state = "closed";
      this.zk.endSession(this);
      this.dispatchEvent(new Event("closed"));
    }
    return Promise.resolve();
  }
}

/**
 * A stand-in for `SessionKeeper` over a {@linkcode FakeZooKeeper}: the test
 * drives its sessions (start, disconnect, reconnect, expire, fail) and it
 * dispatches the real keeper's events.
 */
export class FakeKeeper extends EventTarget {
  readonly zk: FakeZooKeeper;
  readonly connectionString = "fake-zookeeper:2181";
  session: FakeSession | undefined;
  failure: Error | undefined;
  lastError: Error | undefined;
  closed = false;
  #authIds: string[];
  #listeners = new Map<string, Set<EventListenerOrEventListenerObject>>();

  /** The listeners registered on the keeper now, by event type. */
  listeners(type?: string): number {
    let count = 0;
    for (const [t, set] of this.#listeners) {
      if (type === undefined || t === type) count += set.size;
    }
    return count;
  }

  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    if (listener !== null) {
      let set = this.#listeners.get(type);
      if (set === undefined) this.#listeners.set(type, set = new Set());
      set.add(listener);
      if (typeof options === "object" && options.once) {
        const forget = () => set!.delete(listener);
        super.addEventListener(type, forget, { once: true });
      }
    }
    super.addEventListener(type, listener, options);
  }

  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    if (listener !== null) this.#listeners.get(type)?.delete(listener);
    super.removeEventListener(type, listener, options);
  }

  constructor(
    zk: FakeZooKeeper,
    options: { start?: boolean; authIds?: string[] } = {},
  ) {
    super();
    this.zk = zk;
    this.#authIds = options.authIds ?? [];
    if (options.start ?? true) this.start();
  }

  /** This keeper as the type the code under test takes. */
  get real(): SessionKeeper {
    return this as unknown as SessionKeeper;
  }

  /** A new session is established (`"session"`). */
  start(): FakeSession {
    const session = this.zk.connect(this.#authIds);
    this.session = session;
    this.lastError = undefined;
    this.dispatchEvent(new CustomEvent("session", { detail: session }));
    return session;
  }

  /** The connection drops (`"disconnected"`); the session lives on. */
  disconnect(): void {
    this.session?.disconnect();
    this.dispatchEvent(new Event("disconnected"));
  }

  /** The session is connected again (`"connected"`). */
  reconnect(): void {
    this.session?.reconnect();
    this.dispatchEvent(new Event("connected"));
  }

  /**
   * The session expires (`"expired"`, its ephemeral nodes gone); no session
   * until {@linkcode FakeKeeper.start}.
   */
  expire(error = new Error("connection refused")): void {
    const session = this.session;
    this.session = undefined;
    this.lastError = error;
    session?.expire();
    this.dispatchEvent(new Event("expired"));
  }

  /** The keeper gives up for good (`"failed"`). */
  fail(error: Error): void {
    const session = this.session;
    this.session = undefined;
    this.failure = error;
    this.lastError = error;
    void session?.close();
    this.dispatchEvent(new Event("failed"));
  }
}
