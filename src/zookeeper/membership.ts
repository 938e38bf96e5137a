/**
 * Watches the children of a service path in ZooKeeper and keeps the list of
 * live members.
 *
 * @module
 */

import { coalesced } from "./_coalesced.ts";
import { isZooKeeperPath } from "../discovery/service_path.ts";
import { type MemberData, parseMember } from "../discovery/member.ts";
import { printableMessage } from "../_printable.ts";
import type {
  DiscoveryState,
  Membership,
  MembershipChange,
} from "../discovery/membership.ts";
import type { SessionKeeper } from "./keeper.ts";
import {
  isZooKeeperError,
  type PersistentWatch,
  type Watcher,
  type WatchEvent,
  type ZooKeeperSession,
} from "./session.ts";
import { isPermanentFailure } from "./_failure.ts";

/**
 * Options for {@linkcode ZooKeeperMembership}.
 *
 * @example Collecting unusable members
 * ```ts
 * import type { ZooKeeperMembershipOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const skipped: string[] = [];
 * const options: ZooKeeperMembershipOptions = {
 *   onInvalidMember: (id) => skipped.push(id),
 * };
 * options.onInvalidMember?.("server-1", new TypeError("no port"));
 * assert.deepEqual(skipped, ["server-1"]);
 * ```
 */
export interface ZooKeeperMembershipOptions {
  /**
   * Called once per member whose data cannot be used (not JSON, no host or
   * port). The member is skipped.
   * @default {console.warn}
   */
  onInvalidMember?: (id: string, error: Error) => void;
}

/** What a {@linkcode MemberWatch} tells each membership that shares it. */
interface Subscriber {
  change(change: MembershipChange): void;
  state(): void;
  invalid(id: string, error: Error): void;
}

/**
 * How a membership follows its path: `"persistent"` with a persistent
 * recursive watch (ZooKeeper 3.6+: one event per change, the data of a new
 * member read once), `"children"` with one-shot child watches (older
 * servers: the list is read again after each change).
 *
 * @example Telling the modes apart
 * ```ts
 * import type { MembershipWatchMode } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const mode: MembershipWatchMode = "persistent";
 * assert.notEqual(mode, "children");
 * ```
 */
export type MembershipWatchMode = "persistent" | "children";

/**
 * Member reads a membership keeps in flight at once: enough to hide the
 * round trip, few enough that the client never parses thousands of queued
 * answers in one go, nor ZooKeeper queues them.
 */
const READS_IN_FLIGHT = 64;

/**
 * The longest random pause before re-listing after a child watch fired
 * (`"children"` mode), in ms: a burst of changes costs one list, and the
 * channels of many processes do not all ask at the same instant.
 */
const RELIST_JITTER = 50;

/**
 * The one watch of a service path on a keeper's sessions, shared by every
 * {@linkcode ZooKeeperMembership} of that (keeper, path) and closed with the
 * last of them: one ZooKeeper watch, one read of each member's data, one
 * listener on the keeper, whatever the number of channels.
 *
 * On every new connection or session it arms a persistent recursive watch,
 * then lists the children once and reads the members it does not know (in
 * parallel); afterwards each `created` event reads that one member and each
 * `deleted` event removes one. A server that answers `addWatch` with
 * `UNIMPLEMENTED` (ZooKeeper < 3.6) moves the session to one-shot child
 * watches (list again after each change, after a short random pause).
 */
class MemberWatch {
  readonly keeper: SessionKeeper;
  readonly path: string;
  readonly members = new Map<string, MemberData>();
  /** Members whose data is unusable, with why. */
  readonly invalid = new Map<string, Error>();
  state: DiscoveryState = "connecting";
  mode: MembershipWatchMode | undefined;
  lastConfirmed: Date | undefined;
  dataReads = 0;
  /** Why the watch stopped for good (the keeper gave up, no permission). */
  failure: Error | undefined;
  readonly subscribers = new Set<Subscriber>();
  /** Ids ZooKeeper reported, by the last list and the events since. */
  #present = new Set<string>();
  /** Members whose data is being read. */
  #reading = new Set<string>();
  /**
   * While a list is in flight: the ids created and deleted meanwhile (an
   * event may be handled before the list's answer that it followed). A
   * deleted id is a tombstone: sequential names are never reused, so a late
   * list or read never brings it back.
   */
  #sinceList: { created: Set<string>; deleted: Set<string> } | undefined;
  /** The session that answered `addWatch` with `UNIMPLEMENTED`. */
  #legacySession: ZooKeeperSession | undefined;
  #watch: PersistentWatch | undefined;
  #watcher: { session: ZooKeeperSession; watch: Watcher } | undefined;
  #closed = false;
  #sync: () => Promise<void>;
  #relist: ReturnType<typeof setTimeout> | undefined;
  #listeners: [string, EventListener][];

  constructor(keeper: SessionKeeper, path: string) {
    this.keeper = keeper;
    this.path = path;
    this.#sync = coalesced(() => this.#read());
    const resync = () => void this.#sync().catch(this.#report);
    this.#listeners = [
      ["session", resync],
      ["connected", resync],
      ["disconnected", () => this.#setState("disconnected")],
      ["expired", () => this.#setState("resyncing")],
      ["failed", () => this.#fail(keeper.failure)],
    ];
    for (const [type, listener] of this.#listeners) {
      keeper.addEventListener(type, listener);
    }
    if (keeper.failure !== undefined) this.#fail(keeper.failure);
    else if (keeper.session?.state === "connected") resync();
  }

  /** Logs what a background read could not handle, instead of crashing. */
  #report = (error: unknown): void => {
    console.error(`zkrpc: cannot read the members of ${this.path}:`, error);
  };

  #setState(state: DiscoveryState): void {
    if (this.#closed || this.state === state) return;
    this.state = state;
    for (const subscriber of this.subscribers) subscriber.state();
  }

  #emit(added: Map<string, MemberData>, removed: string[]): void {
    if (this.#closed || (added.size === 0 && removed.length === 0)) return;
    for (const subscriber of this.subscribers) {
      subscriber.change({ added, removed });
    }
  }

  /** Stops for good: the list can never be confirmed again. */
  #fail(error: Error | undefined): void {
    this.failure = error;
    this.#setState("closed");
    this.#stop();
  }

  /**
   * On a new connection or session: arms the watch (persistent, or a child
   * watch), lists the children, applies the difference and reads the new
   * members.
   */
  async #read(): Promise<void> {
    const session = this.keeper.session;
    if (this.#closed || session === undefined) return;
    try {
      let children: string[];
      if (this.#legacySession !== session && await this.#arm(session)) {
        this.#sinceList = { created: new Set(), deleted: new Set() };
        children = await this.#list(session);
      } else {
        this.#setMode("children");
        this.#sinceList = { created: new Set(), deleted: new Set() };
        children = await this.#children(session, () => {
          if (session === this.keeper.session) this.#scheduleRelist();
        });
      }
      if (this.#closed || session !== this.keeper.session) return;
      this.#applyList(session, children);
    } catch (error) {
      if (!isZooKeeperError(error)) throw error;
      // No permission to read the path: retrying cannot help.
      if (isPermanentFailure(error)) return this.#fail(error);
      // Connection loss, a timeout or an expiry: the keeper's next
      // "connected" or "session" event asks for another read.
    } finally {
      this.#sinceList = undefined;
    }
  }

  /**
   * Arms the persistent recursive watch on this connection; `false` when the
   * server does not know `addWatch` (then the session stays on child
   * watches).
   */
  async #arm(session: ZooKeeperSession): Promise<boolean> {
    try {
      // One watcher per session: arming again on a reconnection adds none.
      if (this.#watcher?.session !== session) {
        const watch = (event: WatchEvent) => {
          if (session === this.keeper.session) this.#onEvent(session, event);
        };
        this.#watcher = { session, watch };
      }
      this.#watch = await session.addWatch(this.path, this.#watcher.watch, {
        mode: "persistent_recursive",
      });
      this.#setMode("persistent");
      return true;
    } catch (error) {
      if (!isZooKeeperError(error, "UNIMPLEMENTED")) throw error;
      this.#legacySession = session;
      return false;
    }
  }

  #setMode(mode: MembershipWatchMode): void {
    if (this.mode === mode) return;
    this.mode = mode;
    for (const subscriber of this.subscribers) subscriber.state();
  }

  /** Lists the children without a watch (the persistent one covers them). */
  async #list(session: ZooKeeperSession): Promise<string[]> {
    try {
      return await session.getChildren(this.path);
    } catch (error) {
      if (isZooKeeperError(error, "NO_NODE")) return []; // the watch sees it come
      throw error;
    }
  }

  /** Replaces the known list with `children` and reads the new members. */
  #applyList(session: ZooKeeperSession, children: string[]): void {
    const { created, deleted } = this.#sinceList ?? {
      created: new Set<string>(),
      deleted: new Set<string>(),
    };
    const listed = new Set(children);
    for (const id of created) listed.add(id);
    for (const id of deleted) listed.delete(id);
    this.#present = listed;
    const removed = [...this.members.keys()].filter((id) => !listed.has(id));
    for (const id of removed) this.members.delete(id);
    for (const id of this.invalid.keys()) {
      if (!listed.has(id)) this.invalid.delete(id);
    }
    this.lastConfirmed = new Date();
    const unknown = [...listed].filter((id) =>
      !this.members.has(id) && !this.invalid.has(id) && !this.#reading.has(id)
    );
    if (unknown.length === 0) {
      this.#setState("fresh");
      this.#emit(new Map(), removed);
      return;
    }
    void this.#readMembers(session, unknown).then((added) => {
      this.#setState("fresh");
      this.#emit(added, removed);
    }).catch((error) => {
      // A read failed (connection loss...): the next "connected" or
      // "session" lists again; the removals stand.
      this.#emit(new Map(), removed);
      if (!isZooKeeperError(error)) this.#report(error);
    });
  }

  /** Reads members, pipelined; keeps those still present when read. */
  async #readMembers(
    session: ZooKeeperSession,
    ids: string[],
  ): Promise<Map<string, MemberData>> {
    for (const id of ids) this.#reading.add(id);
    const added = new Map<string, MemberData>();
    try {
      // Pipelined, at most READS_IN_FLIGHT at a time.
      const read: (MemberData | undefined)[] = [];
      let next = 0;
      const worker = async () => {
        while (next < ids.length) {
          const i = next++;
          read[i] = await this.#readMember(session, ids[i] as string);
        }
      };
      await Promise.all(
        Array.from(
          { length: Math.min(READS_IN_FLIGHT, ids.length) },
          worker,
        ),
      );
      ids.forEach((id, i) => {
        const member = read[i];
        if (
          member !== undefined && this.#present.has(id) &&
          !this.members.has(id)
        ) {
          this.members.set(id, member);
          added.set(id, member);
        }
      });
    } finally {
      for (const id of ids) this.#reading.delete(id);
    }
    return added;
  }

  /** Applies one event of the persistent watch. */
  #onEvent(session: ZooKeeperSession, event: WatchEvent): void {
    if (this.#closed) return;
    const prefix = `${this.path}/`;
    if (!event.path.startsWith(prefix)) return; // the service path itself
    const id = event.path.slice(prefix.length);
    if (id.includes("/")) return; // below a member
    if (event.type === "created") {
      this.#sinceList?.created.add(id);
      this.#present.add(id);
      if (
        this.members.has(id) || this.invalid.has(id) || this.#reading.has(id)
      ) return;
      void this.#readMembers(session, [id]).then((added) => {
        this.#emit(added, []);
      }).catch((error) => {
        // Lost with the connection: the re-list after it reads it.
        if (!isZooKeeperError(error)) this.#report(error);
      });
    } else if (event.type === "deleted") {
      this.#sinceList?.deleted.add(id);
      this.#present.delete(id);
      this.invalid.delete(id);
      if (this.members.delete(id)) this.#emit(new Map(), [id]);
    }
  }

  /** `"children"` mode: lists again after a short random pause. */
  #scheduleRelist(): void {
    if (this.#closed || this.#relist !== undefined) return;
    this.#relist = setTimeout(() => {
      this.#relist = undefined;
      void this.#sync().catch(this.#report);
    }, Math.random() * RELIST_JITTER);
  }

  /** Lists the children; when the path does not exist yet, watches for it. */
  async #children(
    session: ZooKeeperSession,
    watch: () => void,
  ): Promise<string[]> {
    while (true) {
      try {
        return await session.getChildren(this.path, { watch });
      } catch (error) {
        if (!isZooKeeperError(error, "NO_NODE")) throw error;
      }
      if (await session.exists(this.path, { watch }) === undefined) return [];
    }
  }

  async #readMember(
    session: ZooKeeperSession,
    id: string,
  ): Promise<MemberData | undefined> {
    this.dataReads++;
    let data: Uint8Array | undefined;
    try {
      ({ data } = await session.getData(`${this.path}/${id}`));
    } catch (error) {
      if (isZooKeeperError(error, "NO_NODE")) return undefined; // left already
      throw error;
    }
    try {
      return parseMember(data);
    } catch (error) {
      if (!this.#present.has(id)) return undefined;
      this.invalid.set(id, error as Error);
      for (const subscriber of this.subscribers) {
        subscriber.invalid(id, error as Error);
      }
      return undefined;
    }
  }

  /** Removes a subscriber; the last one closes the watch. */
  unsubscribe(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
    if (this.subscribers.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#relist);
    this.#relist = undefined;
    void this.#watch?.remove();
    for (const [type, listener] of this.#listeners) {
      this.keeper.removeEventListener(type, listener);
    }
    const watches = WATCHES.get(this.keeper);
    if (watches?.get(this.path) === this) watches.delete(this.path);
  }
}

/** The open watches of each keeper, by path. */
const WATCHES = new WeakMap<SessionKeeper, Map<string, MemberWatch>>();

/** The open watch of (keeper, path), or a new one. */
function sharedWatch(keeper: SessionKeeper, path: string): MemberWatch {
  let watches = WATCHES.get(keeper);
  if (watches === undefined) {
    watches = new Map();
    WATCHES.set(keeper, watches);
  }
  let watch = watches.get(path);
  if (watch === undefined) {
    watch = new MemberWatch(keeper, path);
    if (watch.failure === undefined) watches.set(path, watch);
  }
  return watch;
}

/**
 * The members of one service path, kept current with a persistent recursive
 * watch (ZooKeeper 3.6+): on every new connection or session it arms the
 * watch, lists the children once and reads the members it does not know
 * (pipelined); then each `created` event reads that one member and each
 * `deleted` event removes one, so a change costs one event (and one read for
 * an add) whatever the number of members. Each member's data is read once
 * (member data does not change), and a member deleted while being read is
 * never added. ZooKeeper does not replay what happened while a client was
 * away, so the list is read again after every reconnection and new session.
 * A server that answers `addWatch` with `UNIMPLEMENTED` (before 3.6) is
 * followed with one-shot child watches for the rest of that session
 * ({@linkcode ZooKeeperMembership.watchMode} says which). While ZooKeeper is
 * unreachable the last known list is kept.
 *
 * Every membership of the same path on the same {@linkcode SessionKeeper}
 * (e.g. the channels of one service made by one `zooKeeperDiscovery()`)
 * shares one watch: one ZooKeeper watch, one read per member and one set of
 * listeners on the keeper, however many channels there are; the watch ends
 * with the last membership closed.
 *
 * When the keeper gives up for good (a missing chroot, an unknown host,
 * hosts denied by `--allow-net`: see `SessionKeeper.failure`), or ZooKeeper
 * denies reading the path (`NO_AUTH`), the state becomes `"closed"` and
 * {@linkcode ZooKeeperMembership.lastError} names the cause.
 *
 * @example Watching a service
 * ```ts ignore
 * import { SessionKeeper, ZooKeeperMembership } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using keeper = new SessionKeeper("127.0.0.1:2181");
 * const membership = new ZooKeeperMembership(keeper, "/rpc/calculator");
 * membership.addEventListener("change", () => console.log(membership.members));
 * ```
 */
export class ZooKeeperMembership extends EventTarget implements Membership {
  #watch: MemberWatch;
  #subscriber: Subscriber;
  #closed = false;
  #members: ReadonlyMap<string, MemberData> | undefined;

  /**
   * Starts watching `path` through the keeper's sessions (or joins the watch
   * already open on that keeper and path).
   *
   * @param keeper Supplies the ZooKeeper session.
   * @param path The service path, e.g. `/rpc/calculator`.
   * @param options Warning hook.
   * @throws {TypeError} When `path` is not a ZooKeeper path.
   */
  constructor(
    keeper: SessionKeeper,
    path: string,
    options: ZooKeeperMembershipOptions = {},
  ) {
    super();
    if (!isZooKeeperPath(path) || path === "/") {
      throw new TypeError(
        `Cannot watch members: path must be an absolute ZooKeeper path like "/rpc/calculator", got ${
          JSON.stringify(path)
        }`,
      );
    }
    const onInvalidMember = options.onInvalidMember ??
      ((id, error) =>
        console.warn(
          printableMessage(
            `zkrpc: skipping member ${path}/${id}: ${error.message}`,
          ),
        ));
    this.#subscriber = {
      change: (detail) =>
        this.dispatchEvent(
          new CustomEvent<MembershipChange>("change", { detail }),
        ),
      state: () => this.dispatchEvent(new Event("state")),
      invalid: (id, error) => {
        try {
          onInvalidMember(id, error);
        } catch (thrown) {
          reportError(thrown);
        }
      },
    };
    this.#watch = sharedWatch(keeper, path);
    this.#watch.subscribers.add(this.#subscriber);
    // Members found unusable before this membership joined.
    for (const [id, error] of this.#watch.invalid) {
      this.#subscriber.invalid(id, error);
    }
  }

  /** The watched path. */
  get path(): string {
    return this.#watch.path;
  }

  /** The live members by znode name (the last known list once closed). */
  get members(): ReadonlyMap<string, MemberData> {
    return this.#members ?? this.#watch.members;
  }

  /** How current the list is. */
  get state(): DiscoveryState {
    return this.#closed ? "closed" : this.#watch.state;
  }

  /**
   * How the list is followed on the current session: `"persistent"` (a
   * persistent recursive watch, ZooKeeper 3.6+), `"children"` (one-shot
   * child watches: the server answered `addWatch` with `UNIMPLEMENTED`), or
   * `undefined` before the first list. A change of mode fires `"state"`.
   */
  get watchMode(): MembershipWatchMode | undefined {
    return this.#watch.mode;
  }

  /** When ZooKeeper last confirmed the list. */
  get lastConfirmed(): Date | undefined {
    return this.#watch.lastConfirmed;
  }

  /** `"ZooKeeper at <connection string>"`. */
  get source(): string {
    return `ZooKeeper at ${this.#watch.keeper.connectionString}`;
  }

  /**
   * Why the last attempt to reach ZooKeeper failed, if it did, or why the
   * membership stopped for good.
   */
  get lastError(): Error | undefined {
    return this.#watch.failure ?? this.#watch.keeper.lastError;
  }

  /**
   * How many member data reads the watch made (one per new member), shared
   * by the memberships of the same keeper and path.
   */
  get dataReads(): number {
    return this.#watch.dataReads;
  }

  /** Stops watching. The keeper stays open. Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      const wasClosed = this.state === "closed";
      this.#members = new Map(this.#watch.members);
      this.#closed = true;
      this.#watch.unsubscribe(this.#subscriber);
      if (!wasClosed) this.dispatchEvent(new Event("state"));
    }
    return Promise.resolve();
  }
}
