/**
 * {@linkcode zooKeeperDiscovery}: the one ZooKeeper entry point. It owns one
 * session and hands out registrars, memberships and channels that share it.
 *
 * @module
 */

import { DistributedChannel } from "../channel/channel.ts";
import type { DistributedChannelOptions } from "../channel/channel.ts";
import type { Discovery, MembershipOptions } from "../discovery/discovery.ts";
import { servicePath } from "../discovery/service_path.ts";
import type { SessionKeeperOptions } from "../discovery/session_options.ts";
import { SessionKeeper } from "./keeper.ts";
import { ZooKeeperMembership } from "./membership.ts";
import {
  type ZooKeeperRegistrar,
  zooKeeperRegistrar,
  type ZooKeeperRegistrarOptions,
} from "./registrar.ts";
import type { ZooKeeperAcl } from "./session.ts";

/**
 * Options for {@linkcode zooKeeperDiscovery}.
 *
 * @example One session for a server's registration and its clients
 * ```ts
 * import type { ZooKeeperDiscoveryOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const options: ZooKeeperDiscoveryOptions = {
 *   zookeeper: "127.0.0.1:2181",
 *   root: "/rpc",
 *   session: { sessionTimeout: 4_000 },
 * };
 * assert.equal(options.root, "/rpc");
 * ```
 */
export interface ZooKeeperDiscoveryOptions {
  /**
   * Connection string, `host:port[,host:port...][/chroot]`, or a keeper to
   * share (it is not closed by {@linkcode ZooKeeperDiscovery.close}). When
   * omitted: `ZOOKEEPER_HOSTS` if the process may read it without a prompt,
   * else `127.0.0.1:2181`.
   *
   * @default {"$ZOOKEEPER_HOSTS or 127.0.0.1:2181"}
   */
  zookeeper?: string | SessionKeeper | undefined;
  /**
   * Root of the registry: services live at `<root>/<service>`.
   *
   * @default {"/rpc"}
   */
  root?: string | undefined;
  /** Options of the session opened here (ignored with a shared keeper). */
  session?: SessionKeeperOptions | undefined;
  /**
   * Default ACL of the nodes the registrars create.
   *
   * @default {undefined}
   */
  acl?: ZooKeeperAcl | undefined;
}

/** What a registrar of {@linkcode ZooKeeperDiscovery.registrar} takes besides the service. */
export type ZooKeeperDiscoveryRegistrarOptions = Omit<
  ZooKeeperRegistrarOptions,
  "zookeeper" | "session" | "root" | "service"
>;

/** What a channel of {@linkcode ZooKeeperDiscovery.channel} takes besides the service. */
export type ZooKeeperDiscoveryChannelOptions = Omit<
  DistributedChannelOptions,
  "discovery" | "service" | "membership"
>;

/**
 * One ZooKeeper session, and everything that uses it: registrars for
 * `serve()`, memberships, channels. Close it after them.
 *
 * @example Register a server and call it through one session
 * ```ts ignore
 * import { serve } from "@zkrpc/zkrpc";
 * import { zooKeeperDiscovery } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using zk = zooKeeperDiscovery({ zookeeper: "127.0.0.1:2181" });
 * const registrar = zk.registrar("calculator");
 * await using _server = serve({ add: (a: number, b: number) => a + b }, {
 *   hostname: "127.0.0.1",
 *   registrar,
 * });
 * await registrar.registered();
 * await using channel = zk.channel("calculator");
 * console.log(await channel.call("add", [1, 2]));
 * ```
 */
export class ZooKeeperDiscovery implements Discovery, AsyncDisposable {
  #keeper: SessionKeeper;
  #owned: boolean;
  #root: string | undefined;
  #acl: ZooKeeperAcl | undefined;

  /**
   * Opens (or shares) the session. Same as {@linkcode zooKeeperDiscovery}.
   *
   * @param options Where ZooKeeper is and where services live.
   */
  constructor(options: ZooKeeperDiscoveryOptions = {}) {
    if (options.root !== undefined) {
      servicePath({ root: options.root, service: "s" });
    }
    this.#owned = !(options.zookeeper instanceof SessionKeeper);
    this.#keeper = options.zookeeper instanceof SessionKeeper
      ? options.zookeeper
      : new SessionKeeper(options.zookeeper, options.session);
    this.#root = options.root;
    this.#acl = options.acl;
  }

  /** The session keeper all users share. */
  get keeper(): SessionKeeper {
    return this.#keeper;
  }

  /** The ZooKeeper connection string. */
  get connectionString(): string {
    return this.#keeper.connectionString;
  }

  /** Why the last attempt to reach ZooKeeper failed, if it did. */
  get lastError(): Error | undefined {
    return this.#keeper.lastError;
  }

  /**
   * A registrar for `serve({ registrar })` that registers under
   * `<root>/<service>`.
   *
   * @param service The service name.
   * @param options Advertised address, metadata, ACL, logging.
   * @returns The registrar.
   */
  registrar(
    service: string,
    options: ZooKeeperDiscoveryRegistrarOptions = {},
  ): ZooKeeperRegistrar {
    return zooKeeperRegistrar({
      acl: this.#acl,
      ...options,
      zookeeper: this.#keeper,
      root: this.#root,
      service,
    });
  }

  /**
   * Starts following a service's members; close it when done.
   *
   * @param service The service name.
   * @param options Where its members live and what to do with bad ones.
   * @returns The membership.
   */
  membership(
    service: string,
    options: MembershipOptions = {},
  ): ZooKeeperMembership {
    return new ZooKeeperMembership(
      this.#keeper,
      servicePath({ root: this.#root, service, path: options.path }),
      options.onInvalidMember === undefined
        ? {}
        : { onInvalidMember: options.onInvalidMember },
    );
  }

  /**
   * A channel to a service; closing it leaves this session open.
   *
   * @param service The service name.
   * @param options How to call it.
   * @returns The channel.
   */
  channel(
    service: string,
    options: ZooKeeperDiscoveryChannelOptions = {},
  ): DistributedChannel {
    return new DistributedChannel({ ...options, service, discovery: this });
  }

  /** Closes the session (unless it was shared in). Idempotent. */
  async close(): Promise<void> {
    if (this.#owned) await this.#keeper.close();
  }

  /** Same as {@linkcode ZooKeeperDiscovery.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Opens the one ZooKeeper session of a process (or part of it) and returns
 * what hands out registrars, memberships and channels over it. Options are
 * checked here, synchronously; the session connects in the background.
 *
 * @param options Where ZooKeeper is and where services live.
 * @returns The discovery; close it after what it handed out.
 * @throws {TypeError} For a malformed connection string, root or option.
 *
 * @example Bad configuration fails at once
 * ```ts
 * import { zooKeeperDiscovery } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => zooKeeperDiscovery({ zookeeper: "zk:xx" }), TypeError);
 * assert.throws(() => zooKeeperDiscovery({ root: "rpc" }), TypeError);
 * ```
 */
export function zooKeeperDiscovery(
  options: ZooKeeperDiscoveryOptions = {},
): ZooKeeperDiscovery {
  return new ZooKeeperDiscovery(options);
}

/**
 * Options of {@linkcode zooKeeperChannel}: the channel's options, and where
 * its members live in ZooKeeper.
 *
 * @example A channel on the seed tutorial's flat layout
 * ```ts
 * import type { ZooKeeperChannelOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const options: ZooKeeperChannelOptions = {
 *   zookeeper: "127.0.0.1:2181",
 *   service: "calculator",
 *   path: "/rpc",
 * };
 * assert.equal(options.path, "/rpc");
 * ```
 */
export interface ZooKeeperChannelOptions
  extends Omit<DistributedChannelOptions, "discovery" | "membership"> {
  /**
   * Connection string, a keeper or a discovery to share (a shared one is
   * left open when the channel closes). When omitted: as
   * {@linkcode ZooKeeperDiscoveryOptions.zookeeper}.
   *
   * @default {"$ZOOKEEPER_HOSTS or 127.0.0.1:2181"}
   */
  zookeeper?: string | SessionKeeper | ZooKeeperDiscovery | undefined;
  /** Options of the session opened here (none with a shared one). */
  session?: SessionKeeperOptions | undefined;
  /**
   * Root of the registry.
   *
   * @default {"/rpc"}
   */
  root?: string | undefined;
  /**
   * The exact path whose children are the members; overrides `root` and
   * `service` (e.g. `"/rpc"` for the seed tutorial's flat layout).
   *
   * @default {undefined}
   */
  path?: string | undefined;
}

/**
 * A channel that follows a service in ZooKeeper over a session of its own
 * (closed with the channel), or over a shared keeper or discovery. The same
 * as `new DistributedChannel({ discovery, service })` with a
 * {@linkcode ZooKeeperDiscovery} that the channel owns.
 *
 * @param options The channel's options and where its members live.
 * @returns The channel.
 * @throws {TypeError} For a malformed service name, root or path (before
 * any connection), or `session`/`root` beside a shared discovery.
 *
 * @example Calling a service found in ZooKeeper
 * ```ts ignore
 * import { zooKeeperChannel } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using channel = zooKeeperChannel({
 *   zookeeper: "127.0.0.1:2181",
 *   service: "calculator",
 * });
 * console.log(await channel.call("divide", [10, 2]));
 * ```
 */
export function zooKeeperChannel(
  options: ZooKeeperChannelOptions,
): DistributedChannel {
  const { zookeeper, session, root, path, ...rest } = options;
  const shared = zookeeper instanceof ZooKeeperDiscovery;
  if (shared && (session !== undefined || root !== undefined)) {
    throw new TypeError(
      "Cannot create channel: `session` and `root` belong to the shared ZooKeeperDiscovery given as `zookeeper`",
    );
  }
  const discovery = shared
    ? zookeeper
    : new ZooKeeperDiscovery({ zookeeper, session, root });
  const membership = (service: string, more: MembershipOptions = {}) => {
    const membership = discovery.membership(service, { ...more, path });
    if (!shared) {
      // The session opened for this channel ends with its membership.
      const close = membership.close.bind(membership);
      membership.close = async () => {
        try {
          await close();
        } finally {
          await discovery.close();
        }
      };
    }
    return membership;
  };
  try {
    const service = rest.service ?? path;
    return new DistributedChannel({
      ...rest,
      ...(service === undefined ? {} : { service }),
      discovery: { membership },
    });
  } catch (error) {
    if (!shared) discovery.close().catch(() => {});
    throw error;
  }
}
