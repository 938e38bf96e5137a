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
import { isZooKeeperError, type ZooKeeperSession } from "./session.ts";

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

/**
 * The members of one service path, kept current with a child watch that is
 * re-armed on every event. Each member's data is read once, when it appears
 * (member data does not change). While ZooKeeper is unreachable the last known
 * list is kept; after a session expiry the list is read again.
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
  #keeper: SessionKeeper;
  #path: string;
  #onInvalidMember: (id: string, error: Error) => void;
  #members = new Map<string, MemberData>();
  #invalid = new Set<string>();
  #state: DiscoveryState = "connecting";
  #lastConfirmed: Date | undefined;
  #dataReads = 0;
  #closed = false;
  #sync: () => Promise<void>;
  #listeners: [string, EventListener][];

  /**
   * Starts watching `path` through the keeper's sessions.
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
    this.#keeper = keeper;
    this.#path = path;
    this.#onInvalidMember = options.onInvalidMember ??
      ((id, error) =>
        console.warn(
          printableMessage(
            `zkrpc: skipping member ${path}/${id}: ${error.message}`,
          ),
        ));
    this.#sync = coalesced(() => this.#read());
    const resync = () => void this.#sync().catch(this.#report);
    this.#listeners = [
      ["session", resync],
      ["connected", resync],
      ["disconnected", () => this.#setState("disconnected")],
      ["expired", () => this.#setState("resyncing")],
    ];
    for (const [type, listener] of this.#listeners) {
      keeper.addEventListener(type, listener);
    }
    if (keeper.session?.state === "connected") resync();
  }

  /** Logs what a background read could not handle, instead of crashing. */
  #report = (error: unknown): void => {
    console.error(`zkrpc: cannot read the members of ${this.#path}:`, error);
  };

  /** The watched path. */
  get path(): string {
    return this.#path;
  }

  /** The live members by znode name. */
  get members(): ReadonlyMap<string, MemberData> {
    return this.#members;
  }

  /** How current the list is. */
  get state(): DiscoveryState {
    return this.#state;
  }

  /** When ZooKeeper last confirmed the list. */
  get lastConfirmed(): Date | undefined {
    return this.#lastConfirmed;
  }

  /** `"ZooKeeper at <connection string>"`. */
  get source(): string {
    return `ZooKeeper at ${this.#keeper.connectionString}`;
  }

  /** Why the last attempt to reach ZooKeeper failed, if it did. */
  get lastError(): Error | undefined {
    return this.#keeper.lastError;
  }

  /** How many member data reads this watcher made (one per new member). */
  get dataReads(): number {
    return this.#dataReads;
  }

  #setState(state: DiscoveryState): void {
    if (this.#closed || this.#state === state) return;
    this.#state = state;
    this.dispatchEvent(new Event("state"));
  }

  /** Reads the child list (arming a watch), then the data of new children. */
  async #read(): Promise<void> {
    const session = this.#keeper.session;
    if (this.#closed || session === undefined) return;
    const watch = () => {
      if (session === this.#keeper.session) {
        void this.#sync().catch(this.#report);
      }
    };
    let children: string[];
    try {
      children = await this.#children(session, watch);
      const added = new Map<string, MemberData>();
      for (const id of children) {
        if (this.#members.has(id) || this.#invalid.has(id)) continue;
        const member = await this.#readMember(session, id);
        if (member !== undefined) added.set(id, member);
      }
      if (this.#closed) return;
      const listed = new Set(children);
      const removed = [...this.#members.keys()].filter((id) => !listed.has(id));
      for (const id of removed) this.#members.delete(id);
      for (const id of this.#invalid) {
        if (!listed.has(id)) this.#invalid.delete(id);
      }
      for (const [id, member] of added) this.#members.set(id, member);
      this.#lastConfirmed = new Date();
      this.#setState("fresh");
      if (added.size > 0 || removed.length > 0) {
        this.dispatchEvent(
          new CustomEvent<MembershipChange>("change", {
            detail: { added, removed },
          }),
        );
      }
    } catch (error) {
      // Connection loss, a timeout or an expiry: the keeper's next
      // "connected" or "session" event asks for another read.
      if (!isZooKeeperError(error)) throw error;
    }
  }

  /** Lists the children; when the path does not exist yet, watches for it. */
  async #children(
    session: ZooKeeperSession,
    watch: () => void,
  ): Promise<string[]> {
    while (true) {
      try {
        return await session.getChildren(this.#path, { watch });
      } catch (error) {
        if (!isZooKeeperError(error, "NO_NODE")) throw error;
      }
      if (await session.exists(this.#path, { watch }) === undefined) return [];
    }
  }

  async #readMember(
    session: ZooKeeperSession,
    id: string,
  ): Promise<MemberData | undefined> {
    this.#dataReads++;
    let data: Uint8Array | undefined;
    try {
      ({ data } = await session.getData(`${this.#path}/${id}`));
    } catch (error) {
      if (isZooKeeperError(error, "NO_NODE")) return undefined; // left already
      throw error;
    }
    try {
      return parseMember(data);
    } catch (error) {
      this.#invalid.add(id);
      this.#onInvalidMember(id, error as Error);
      return undefined;
    }
  }

  /** Stops watching. The keeper stays open. Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#setState("closed");
      this.#closed = true;
      for (const [type, listener] of this.#listeners) {
        this.#keeper.removeEventListener(type, listener);
      }
    }
    return Promise.resolve();
  }
}
