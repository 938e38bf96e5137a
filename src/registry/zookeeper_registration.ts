/**
 * Keeps one server registered as an ephemeral sequential znode, across
 * reconnects and session expiries, without ever leaving a second node.
 *
 * @module
 */

import { coalesced } from "./_coalesced.ts";
import { encodeMember, type MemberData } from "./member.ts";
import type { SessionKeeper } from "./session_keeper.ts";
import {
  isZooKeeperError,
  type ZooKeeperAcl,
  type ZooKeeperSession,
} from "./zookeeper_session.ts";

/**
 * Options for {@linkcode ZooKeeperRegistration}.
 *
 * @example A fixed id and a world-readable ACL
 * ```ts
 * import type { ZooKeeperRegistrationOptions } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const options: ZooKeeperRegistrationOptions = {
 *   id: crypto.randomUUID(),
 *   acl: "creator_all_world_read",
 * };
 * assert.equal(options.acl, "creator_all_world_read");
 * ```
 */
export interface ZooKeeperRegistrationOptions {
  /** ACL for the member node and the service path it creates. @default open */
  acl?: ZooKeeperAcl;
  /**
   * The unique id in the node's name. Two registrations with the same id
   * share one node, so give each server its own.
   * @default crypto.randomUUID()
   */
  id?: string;
}

/**
 * A server's membership in a service. The node is named
 * `server-<uuid>-<sequence>`: the uuid lets the registration find its own node
 * after a create whose reply was lost (Curator's "protected" mode), and the
 * node's `ephemeralOwner` tells whether it belongs to the current session.
 *
 * On every new or reconnected session it makes sure exactly one node of its own
 * exists, owned by that session. After {@linkcode ZooKeeperRegistration.close}
 * it never registers again.
 *
 * @example Registering a server
 * ```ts ignore
 * import { SessionKeeper, ZooKeeperRegistration } from "@zkrpc/zkrpc";
 *
 * await using keeper = new SessionKeeper("127.0.0.1:2181");
 * const registration = new ZooKeeperRegistration(
 *   keeper,
 *   "/rpc/calculator",
 *   { host: "127.0.0.1", port: 9001 },
 * );
 * console.log(await registration.registered());
 * await registration.close();
 * ```
 */
export class ZooKeeperRegistration extends EventTarget {
  #keeper: SessionKeeper;
  #servicePath: string;
  #data: Uint8Array;
  #acl: ZooKeeperAcl | undefined;
  #prefix: string;
  #nodePath: string | undefined;
  #closed = false;
  /** Nodes left to delete after close(), with the session that owns them. */
  #orphans: { path: string; session: ZooKeeperSession }[] = [];
  #ensure: () => Promise<void>;
  #onSession: () => void;
  #firstRegistration = Promise.withResolvers<string>();

  /**
   * Starts registering in the background.
   *
   * @param keeper Supplies the ZooKeeper session.
   * @param servicePath The service path, e.g. `/rpc/calculator`.
   * @param member The data to publish.
   * @param options ACL.
   */
  constructor(
    keeper: SessionKeeper,
    servicePath: string,
    member: MemberData,
    options: ZooKeeperRegistrationOptions = {},
  ) {
    super();
    this.#keeper = keeper;
    this.#servicePath = servicePath;
    this.#data = encodeMember(member);
    this.#acl = options.acl;
    this.#prefix = `server-${options.id ?? crypto.randomUUID()}-`;
    this.#ensure = coalesced(() => this.#ensureRegistered());
    this.#onSession = () =>
      void this.#ensure().catch((error) =>
        console.error(
          `zkrpc: cannot register under ${this.#servicePath}:`,
          error,
        )
      );
    keeper.addEventListener("session", this.#onSession);
    keeper.addEventListener("connected", this.#onSession);
    if (keeper.session?.state === "connected") this.#onSession();
    this.#firstRegistration.promise.catch(() => {});
  }

  /** The member node's path while registered, else `undefined`. */
  get nodePath(): string | undefined {
    return this.#nodePath;
  }

  /**
   * Resolves with the node's path once the server is first registered.
   *
   * @returns The znode path.
   */
  registered(): Promise<string> {
    return this.#firstRegistration.promise;
  }

  async #ensureRegistered(): Promise<void> {
    const session = this.#keeper.session;
    if (session === undefined) return;
    if (this.#closed) {
      if (this.#orphans.length > 0) await this.#deleteOrphans(session);
      return;
    }
    try {
      const path = await this.#findOrCreate(session);
      if (this.#closed) {
        // close() ran while this node was being created: delete it now, or
        // once ZooKeeper answers again.
        this.#orphans.push({ path, session });
        await this.#deleteOrphans(session);
        return;
      }
      if (path !== this.#nodePath) {
        this.#nodePath = path;
        this.#firstRegistration.resolve(path);
        this.dispatchEvent(new CustomEvent("registered", { detail: path }));
      }
    } catch (error) {
      // Connection loss or expiry: the next session event retries, and the
      // uuid in the name finds a node whose create reply was lost.
      if (!isZooKeeperError(error)) throw error;
    }
  }

  /**
   * Deletes the nodes that `close()` could not delete while ZooKeeper was
   * unreachable, once it answers again (a node of an ended session is gone
   * already), then stops listening.
   */
  async #deleteOrphans(session: ZooKeeperSession): Promise<void> {
    for (const orphan of [...this.#orphans]) {
      if (session === orphan.session) {
        try {
          await session.delete(orphan.path);
        } catch (error) {
          if (!isZooKeeperError(error)) throw error;
          if (!isZooKeeperError(error, "NO_NODE")) return; // next event
        }
      }
      this.#orphans.splice(this.#orphans.indexOf(orphan), 1);
    }
    this.#stopListening();
  }

  #stopListening(): void {
    this.#keeper.removeEventListener("session", this.#onSession);
    this.#keeper.removeEventListener("connected", this.#onSession);
  }

  /** Returns this registration's node, owned by `session`, creating it if needed. */
  async #findOrCreate(session: ZooKeeperSession): Promise<string> {
    await session.mkdirp(this.#servicePath, { acl: this.#acl });
    const children = await session.getChildren(this.#servicePath);
    for (const name of children.filter((c) => c.startsWith(this.#prefix))) {
      const path = `${this.#servicePath}/${name}`;
      const stat = await session.exists(path);
      if (stat === undefined) continue;
      if (stat.ephemeralOwner === session.sessionId) return path;
      // A node of an earlier session that ZooKeeper has not removed yet.
      await session.delete(path, stat.version).catch((error) => {
        if (!isZooKeeperError(error, "NO_NODE")) throw error;
      });
    }
    return await session.create(`${this.#servicePath}/${this.#prefix}`, {
      data: this.#data,
      mode: "ephemeral_sequential",
      acl: this.#acl,
    });
  }

  /**
   * Deletes the member node and stops re-registering. Idempotent. When
   * ZooKeeper is unreachable it returns at once and deletes the node when
   * ZooKeeper answers again (or the node goes with its session).
   *
   * @param signal When already aborted, skips waiting for the delete.
   */
  async close(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#firstRegistration.reject(
      new Error("Cannot register: the registration was closed"),
    );
    await this.#ensure().catch(() => {}); // let a create under way finish
    const path = this.#nodePath;
    this.#nodePath = undefined;
    const session = this.#keeper.session;
    if (path !== undefined && session !== undefined) {
      this.#orphans.push({ path, session });
    }
    if (this.#orphans.length === 0) return this.#stopListening();
    if (session?.state !== "connected" || signal?.aborted) return;
    await this.#deleteOrphans(session);
  }
}
