/**
 * The ZooKeeper {@linkcode Registrar} for {@linkcode serve}: registers the
 * server's advertised address under `<root>/<service>`.
 *
 * @module
 */

import type { Registrar, Registration } from "../server.ts";
import type { MemberData } from "./member.ts";
import { SessionKeeper, type SessionKeeperOptions } from "./session_keeper.ts";
import { ZooKeeperRegistration } from "./zookeeper_registration.ts";
import type { ZooKeeperAcl } from "./zookeeper_session.ts";
import { PROTOCOL_VERSION } from "../protocol/frame.ts";
import {
  connectionStringHosts,
  pickAdvertisedAddress,
} from "./_advertised_address.ts";

/**
 * Where and how a server registers in ZooKeeper.
 *
 * @example Registering with an advertised host and metadata
 * ```ts
 * import type { ZooKeeperRegistryOptions } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const options: ZooKeeperRegistryOptions = {
 *   zookeeper: "127.0.0.1:2181",
 *   service: "calculator",
 *   advertisedHost: "10.0.0.5",
 *   metadata: { zone: "a" },
 * };
 * assert.equal(options.service, "calculator");
 * ```
 */
export interface ZooKeeperRegistryOptions {
  /** Connection string, `host:port[,host:port…][/chroot]`, or a keeper to share. */
  zookeeper: string | SessionKeeper;
  /** The service name; the node goes under `<root>/<service>`. */
  service?: string;
  /** Root of the registry. @default "/rpc" */
  root?: string;
  /**
   * The exact parent path of the member node; overrides `root` and `service`
   * (e.g. `"/rpc"` for the seed tutorial's flat layout).
   */
  path?: string;
  /**
   * Host clients should connect to. When omitted, the bound hostname, or for
   * `0.0.0.0` / `::` a non-loopback IPv4 address of the machine (needs
   * `--allow-sys=networkInterfaces`): the first on the same network as a
   * ZooKeeper server named by address, else the first; else `127.0.0.1`.
   */
  advertisedHost?: string;
  /** Extra metadata published with the member (e.g. `{ zone: "a" }`). */
  metadata?: Record<string, unknown>;
  /** Relative weight. @default 1 */
  weight?: number;
  /** Whether the server speaks TLS. @default false */
  tls?: boolean;
  /** ACL of the member node and the paths it creates. @default "open" */
  acl?: ZooKeeperAcl;
  /** Options for the server's own ZooKeeper session (timeouts, `auth`). */
  session?: SessionKeeperOptions;
}

/**
 * A {@linkcode Registrar} that can tell when and where it registered.
 *
 * @example A registrar before the server starts
 * ```ts
 * import { zooKeeperRegistrar } from "@zkrpc/zkrpc";
 * import type { ZooKeeperRegistrar } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const registrar: ZooKeeperRegistrar = zooKeeperRegistrar({
 *   zookeeper: "127.0.0.1:2181",
 *   service: "calculator",
 * });
 * // Not registered until `serve(handlers, { registrar })` registers it.
 * assert.equal(registrar.nodePath, undefined);
 * ```
 */
export interface ZooKeeperRegistrar extends Registrar {
  /**
   * Resolves with the member node's path once the server is registered
   * (after `serve()` called {@linkcode Registrar.register}).
   */
  registered(): Promise<string>;
  /** The member node's path while registered, else `undefined`. */
  readonly nodePath: string | undefined;
}

/**
 * Returns a {@linkcode Registrar} that registers a server in ZooKeeper. The
 * registration happens in the background: a server started while ZooKeeper
 * is down serves at once and registers as soon as ZooKeeper answers.
 *
 * @param options Where to register.
 * @returns The registrar for `serve({ registrar })`.
 *
 * @example Serving and registering
 * ```ts ignore
 * import { serve, zooKeeperRegistrar } from "@zkrpc/zkrpc";
 *
 * const registrar = zooKeeperRegistrar({
 *   zookeeper: "127.0.0.1:2181",
 *   service: "calculator",
 * });
 * await using _server = serve({ divide: (a: number, b: number) => a / b }, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   registrar,
 * });
 * await registrar.registered();
 * ```
 */
export function zooKeeperRegistrar(
  options: ZooKeeperRegistryOptions,
): ZooKeeperRegistrar {
  const started = Promise.withResolvers<ZooKeeperRegistration>();
  let current: ZooKeeperRegistration | undefined;
  return {
    registered: () => started.promise.then((r) => r.registered()),
    get nodePath() {
      return current?.nodePath;
    },
    register(addr: Deno.NetAddr): Promise<Registration> {
      const ownKeeper = typeof options.zookeeper === "string";
      const keeper = typeof options.zookeeper === "string"
        ? new SessionKeeper(options.zookeeper, options.session)
        : options.zookeeper;
      const member: MemberData = {
        ...options.metadata,
        host: advertisedHost(
          addr.hostname,
          options.advertisedHost,
          connectionStringHosts(keeper.connectionString),
        ),
        port: addr.port,
        weight: options.weight ?? 1,
        protocol: PROTOCOL_VERSION,
        startedAt: new Date().toISOString(),
        tls: options.tls ?? false,
        pid: Deno.pid,
      };
      const registration = new ZooKeeperRegistration(
        keeper,
        servicePath(options),
        member,
        options.acl === undefined ? {} : { acl: options.acl },
      );
      current = registration;
      started.resolve(registration);
      return Promise.resolve({
        async deregister() {
          try {
            await registration.close();
          } finally {
            if (ownKeeper) await keeper.close();
          }
        },
      });
    },
  };
}

/**
 * The parent path of a service's member nodes.
 *
 * @param options `path`, or `root` and `service`.
 * @returns E.g. `/rpc/calculator`.
 *
 * @example
 * ```ts
 * import { servicePath } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * assert.equal(servicePath({ service: "calculator" }), "/rpc/calculator");
 * assert.equal(servicePath({ path: "/rpc" }), "/rpc");
 * assert.equal(servicePath({ root: "/", service: "calculator" }), "/calculator");
 * assert.throws(() => servicePath({ root: "/rpc/", service: "calculator" }), TypeError);
 * ```
 */
export function servicePath(
  options: { path?: string; root?: string; service?: string },
): string {
  if (options.path !== undefined) {
    return checkPath(options.path, "path");
  }
  if (options.service === undefined || !/^[\w.-]+$/.test(options.service)) {
    throw new TypeError(
      `Cannot find service path: service name must match [A-Za-z0-9_.-]+, got ${
        JSON.stringify(options.service)
      }`,
    );
  }
  const root = options.root ?? "/rpc";
  return `${root === "/" ? "" : checkPath(root, "root")}/${options.service}`;
}

/** A ZooKeeper path: absolute, no empty segment, no trailing slash. */
function checkPath(path: string, name: string): string {
  if (!/^(\/[^/]+)+$/.test(path)) {
    throw new TypeError(
      `Cannot find service path: ${name} must be an absolute ZooKeeper path like "/rpc" (no trailing or double slash), got ${
        JSON.stringify(path)
      }`,
    );
  }
  return path;
}

function advertisedHost(
  bound: string,
  advertised: string | undefined,
  zookeeperHosts: string[],
): string {
  if (advertised !== undefined) return advertised;
  if (bound !== "0.0.0.0" && bound !== "::") return bound;
  try {
    const external = pickAdvertisedAddress(
      Deno.networkInterfaces(),
      zookeeperHosts,
    );
    if (external !== undefined) return external;
  } catch {
    // No --allow-sys: fall back to loopback.
  }
  return "127.0.0.1";
}
