/**
 * Watches the children of a service path in ZooKeeper and keeps the list of
 * live members.
 *
 * @module
 */

import { coalesced } from "./_coalesced.ts";
import { isZooKeeperPath } from "../discovery/service_path.ts";
import { type MemberData, parseMember } from "../discovery/member.ts";
import type {
  DiscoveryState,
  Membership,
  MembershipChange,
} from "../discovery/membership.ts";
import type { SessionKeeper } from "./keeper.ts";
import { isZooKeeperError, type ZooKeeperSession } from "./session.ts";
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
   * @default console.warn
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
 * The one watch of a service path on a keeper's sessions, shared by every
 * {@linkcode ZooKeeperMembership} of that (keeper, path) and closed with the
 * last of them: one child watch, one read of each member's data, one
 * listener on the keeper, whatever the number of channels.
 */
class MemberWatch {
  readonly keeper: SessionKeeper;
  readonly path: string;
  readonly members = new Map<string, MemberData>();
  /** Members whose data is unusable, with why. */
  readonly invalid = new Map<string, Error>();
  state: DiscoveryState = "connecting";
  lastConfirmed: Date | undefined;
  dataReads = 0;
  /** Why the watch stopped for good (the keeper gave up, no permission). */
  failure: Error | undefined;
  readonly subscribers = new Set<Subscriber>();
  #closed = false;
  #sync: () => Promise<void>;
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

  /** Stops for good: the list can never be confirmed again. */
  #fail(error: Error | undefined): void {
    this.failure = error;
    this.#setState("closed");
    this.#stop();
  }

  /** Reads the child list (arming a watch), then the data of new children. */
  async #read(): Promise<void> {
    const session = this.keeper.session;
    if (this.#closed || session === undefined) return;
    const watch = () => {
      if (session === this.keeper.session) {
        void this.#sync().catch(this.#report);
      }
    };
    let children: string[];
    try {
      children = await this.#children(session, watch);
      const added = new Map<string, MemberData>();
      const unknown = children.filter((id) =>
        !this.members.has(id) && !this.invalid.has(id)
      );
      const read = await Promise.all(
        unknown.map((id) => this.#readMember(session, id)),
      );
      unknown.forEach((id, i) => {
        const member = read[i];
        if (member !== undefined) added.set(id, member);
      });
      if (this.#closed) return;
      const listed = new Set(children);
      const removed = [...this.members.keys()].filter((id) => !listed.has(id));
      for (const id of removed) this.members.delete(id);
      for (const id of this.invalid.keys()) {
        if (!listed.has(id)) this.invalid.delete(id);
      }
      for (const [id, member] of added) this.members.set(id, member);
      this.lastConfirmed = new Date();
      this.#setState("fresh");
      if (added.size > 0 || removed.length > 0) {
        for (const subscriber of this.subscribers) {
          subscriber.change({ added, removed });
        }
      }
    } catch (error) {
      if (!isZooKeeperError(error)) throw error;
      // No permission to read the path: retrying cannot help.
      if (isPermanentFailure(error)) return this.#fail(error);
      // Connection loss, a timeout or an expiry: the keeper's next
      // "connected" or "session" event asks for another read.
    }
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
 * The members of one service path, kept current with a child watch that is
 * re-armed on every event. Each member's data is read once, when it appears
 * (member data does not change); the data of several new members is read in
 * parallel. While ZooKeeper is unreachable the last known list is kept; after
 * a session expiry the list is read again.
 *
 * Every membership of the same path on the same {@linkcode SessionKeeper}
 * (e.g. the channels of one service made by one `zooKeeperDiscovery()`)
 * shares one watch: one child watch, one read per member and one set of
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
        console.warn(`zkrpc: skipping member ${path}/${id}: ${error.message}`));
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
