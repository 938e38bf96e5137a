/**
 * The ZooKeeper {@linkcode Registrar} for {@linkcode serve}: registers the
 * server's advertised address under `<root>/<service>`.
 *
 * @module
 */

import type {
  RegisterContext,
  Registrar,
  Registration,
} from "../discovery/registrar.ts";
import type { MemberData } from "../discovery/member.ts";
import { SessionKeeper, type SessionKeeperOptions } from "./keeper.ts";
import { ZooKeeperRegistration } from "./registration.ts";
import type { ZooKeeperAcl } from "./session.ts";
import { aclEntries, toClientAcl } from "./types.ts";
import {
  checkMilliseconds,
  checkSessionOptions,
  defaultZooKeeperHosts,
  parseConnectionString,
} from "./config.ts";
import { PROTOCOL_VERSION } from "../protocol/frame.ts";
import { servicePath } from "../discovery/service_path.ts";
import { pickAdvertisedAddress } from "./_advertised_address.ts";
import { REGISTRAR_DEFAULTS } from "../_defaults.ts";

const REGISTER = "Cannot register in ZooKeeper";

/**
 * Where and how a server registers in ZooKeeper.
 *
 * @example Registering with an advertised host and metadata
 * ```ts
 * import type { ZooKeeperRegistrarOptions } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const options: ZooKeeperRegistrarOptions = {
 *   zookeeper: "127.0.0.1:2181",
 *   service: "calculator",
 *   advertisedHost: "10.0.0.5",
 *   metadata: { zone: "a" },
 * };
 * assert.equal(options.service, "calculator");
 * ```
 */
export interface ZooKeeperRegistrarOptions {
  /**
   * Connection string, `host:port[,host:port...][/chroot]`, or a keeper to
   * share. When omitted: `ZOOKEEPER_HOSTS` if the process may read it
   * without a prompt (`--allow-env=ZOOKEEPER_HOSTS`), else `127.0.0.1:2181`.
   *
   * @default {"$ZOOKEEPER_HOSTS or 127.0.0.1:2181"}
   */
  zookeeper?: string | SessionKeeper | undefined;
  /**
   * The service name (`[A-Za-z0-9_.-]+`); the node goes under
   * `<root>/<service>`. Needed unless `path` is given.
   *
   * @default {undefined}
   */
  service?: string | undefined;
  /**
   * Root of the registry.
   *
   * @default {"/rpc"}
   */
  root?: string | undefined;
  /**
   * The exact parent path of the member node; overrides `root` and `service`
   * (e.g. `"/rpc"` for the seed tutorial's flat layout).
   *
   * @default {undefined}
   */
  path?: string | undefined;
  /**
   * Host clients should connect to (containers, NAT). When omitted, the
   * bound hostname, or for `0.0.0.0` / `::` a non-loopback IPv4 address of
   * the machine (the first on the same network as a ZooKeeper server named
   * by address, else the first), which needs `--allow-sys=networkInterfaces`:
   * without it registration fails with an error naming the flag and this
   * option (never a silent `127.0.0.1`).
   *
   * @default {the bound hostname}
   */
  advertisedHost?: string | undefined;
  /**
   * Port clients should connect to (a NAT or container port mapping).
   *
   * @default {the bound port}
   */
  advertisedPort?: number | undefined;
  /**
   * Extra metadata published with the member (e.g. `{ zone: "a" }`).
   *
   * @default {undefined}
   */
  metadata?: Record<string, unknown> | undefined;
  /**
   * Relative weight, more than 0.
   *
   * @default {1}
   */
  weight?: number | undefined;
  /**
   * Whether clients must use TLS. Normally left out: the registrar learns it
   * from the server (`serve({ tls })`). Set it only when something in front
   * of the server changes the transport (a TLS-terminating proxy).
   *
   * @default {whether the server serves TLS}
   */
  tls?: boolean | undefined;
  /**
   * ACL of the member node and the paths it creates. When set (and not
   * `"open"`), an existing service path whose ACL lets others create or
   * delete members is tightened, or registration fails naming the path and
   * the fix; see {@linkcode ZooKeeperRegistrationOptions.acl}. `creator_all`
   * ACLs need `session.auth`.
   *
   * @default {"open"}
   */
  acl?: ZooKeeperAcl | undefined;
  /**
   * Options for the server's own ZooKeeper session (timeouts, `auth`);
   * ignored when `zookeeper` is a keeper.
   *
   * @default {the session defaults}
   */
  session?: SessionKeeperOptions | undefined;
  /**
   * Milliseconds after which a server that is serving but not yet
   * registered logs so once, with the reason (ZooKeeper unreachable,
   * refused...); it logs again when it registers. `0` disables it.
   *
   * @default {5000}
   */
  warnAfter?: number | undefined;
  /**
   * Receives the registrar's notices: not registered after `warnAfter`,
   * registered after that, the node deleted by someone else and recreated,
   * an open path tightened.
   *
   * @default {console.warn}
   */
  log?: ((message: string) => void) | undefined;
}

/**
 * A {@linkcode Registrar} that can tell when and where it registered.
 *
 * @example A registrar before the server starts
 * ```ts
 * import { zooKeeperRegistrar } from "@zkrpc/zkrpc/zookeeper";
 * import type { ZooKeeperRegistrar } from "@zkrpc/zkrpc/zookeeper";
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
   * (after `serve()` called {@linkcode Registrar.register}); rejects when
   * registration failed for good (the server then closes itself).
   */
  registered(): Promise<string>;
  /** The member node's path while registered, else `undefined`. */
  readonly nodePath: string | undefined;
}

/**
 * Returns a {@linkcode Registrar} that registers a server in ZooKeeper. The
 * options are checked here, synchronously. The registration happens in the
 * background: a server started while ZooKeeper is down serves direct
 * connections at once, logs after `warnAfter` that it is not registered and
 * why, and registers as soon as ZooKeeper answers; its `ready` resolves only
 * then (once ZooKeeper acknowledged the member node's create). A server that
 * stops serving (`setServing(false)`) has its member node deleted, and a new
 * one created when it serves again. A registration that fails for good (no
 * permission, an open service path it may not fix, no address to advertise)
 * releases its session and timers and closes the server, so its `finished`
 * settles and the process can exit.
 *
 * @param options Where to register.
 * @returns The registrar for `serve({ registrar })`.
 * @throws {TypeError} For a malformed connection string, service name, path,
 * host, ACL or option.
 * @throws {RangeError} For a port, weight or timeout out of range.
 *
 * @example Serving and registering
 * ```ts ignore
 * import { serve } from "@zkrpc/zkrpc";
 * import { zooKeeperRegistrar } from "@zkrpc/zkrpc/zookeeper";
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
 *
 * @example Bad configuration fails at once
 * ```ts
 * import { zooKeeperRegistrar } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => zooKeeperRegistrar({ zookeeper: "zk:xx", service: "calculator" }),
 *   { name: "TypeError", message: /port "xx" in "zk:xx" is not a number/ },
 * );
 * assert.throws(
 *   () => zooKeeperRegistrar({ zookeeper: "zk:2181", service: "a/b" }),
 *   TypeError,
 * );
 * ```
 */
export function zooKeeperRegistrar(
  options: ZooKeeperRegistrarOptions,
): ZooKeeperRegistrar {
  const path = checkOptions(options);
  const started = Promise.withResolvers<ZooKeeperRegistration>();
  started.promise.catch(() => {});
  let current: ZooKeeperRegistration | undefined;
  const log = options.log ?? ((message: string) => console.warn(message));
  return {
    registered: () => started.promise.then((r) => r.registered()),
    get nodePath() {
      return current?.nodePath;
    },
    register(
      addr: Deno.NetAddr,
      server?: RegisterContext,
    ): Promise<Registration> {
      let member: MemberData;
      try {
        member = {
          ...options.metadata,
          host: advertisedHost(
            addr.hostname,
            options.advertisedHost,
            options.zookeeper,
            log,
          ),
          port: options.advertisedPort ?? addr.port,
          weight: options.weight ?? REGISTRAR_DEFAULTS.weight,
          protocol: PROTOCOL_VERSION,
          startedAt: new Date().toISOString(),
          tls: options.tls ?? server?.tls ?? false,
          pid: Deno.pid,
        };
      } catch (error) {
        started.reject(error);
        return Promise.reject(error);
      }
      const ownKeeper = !(options.zookeeper instanceof SessionKeeper);
      const keeper = options.zookeeper instanceof SessionKeeper
        ? options.zookeeper
        : new SessionKeeper(
          options.zookeeper ?? defaultZooKeeperHosts(),
          options.session,
        );
      const registration = new ZooKeeperRegistration(keeper, path, member, {
        acl: options.acl,
        log,
      });
      current = registration;
      started.resolve(registration);
      const where = `${member.host}:${member.port}`;
      let warned = false;
      const warnAfter = options.warnAfter ?? REGISTRAR_DEFAULTS.warnAfter;
      const warning = warnAfter === 0 ? undefined : setTimeout(() => {
        if (registration.nodePath !== undefined) return;
        warned = true;
        const reason = registration.lastError;
        log(
          `zkrpc: serving on ${where} but not registered under "${path}" after ${warnAfter} ms: ${
            reason === undefined
              ? `no ZooKeeper session yet (connecting to ${keeper.connectionString})`
              : reason.message
          }`,
        );
      }, warnAfter);
      const onRegistered = (event: Event) => {
        clearTimeout(warning);
        if (!warned) return;
        warned = false;
        log(
          `zkrpc: registered under "${path}" as "${
            (event as CustomEvent<string>).detail
          }"; clients can find ${where} now`,
        );
      };
      let closing: Promise<void> | undefined;
      const release = (): Promise<void> =>
        closing ??= (async () => {
          clearTimeout(warning);
          registration.removeEventListener("registered", onRegistered);
          registration.removeEventListener("error", onError);
          try {
            await registration.close();
          } finally {
            if (ownKeeper) await keeper.close();
          }
        })();
      const onError = (event: Event) => {
        const error = (event as CustomEvent<Error>).detail;
        release().catch(() => {}).finally(() => server?.fail(error));
      };
      registration.addEventListener("registered", onRegistered);
      registration.addEventListener("error", onError);
      return Promise.resolve({
        member,
        deregister: release,
        registered: () => registration.registered(),
        withdraw: () => registration.withdraw(),
        restore: () => registration.restore(),
      });
    },
  };
}

/** Checks every option; returns the service path. */
function checkOptions(options: ZooKeeperRegistrarOptions): string {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${REGISTER}: the options must be an object`);
  }
  const zookeeper = options.zookeeper;
  if (!(zookeeper instanceof SessionKeeper)) {
    parseConnectionString(zookeeper ?? defaultZooKeeperHosts());
  }
  const path = servicePath(options);
  checkSessionOptions(options.session ?? {});
  const { advertisedHost, advertisedPort, weight, acl } = options;
  if (
    advertisedHost !== undefined &&
    (typeof advertisedHost !== "string" ||
      !/^[A-Za-z0-9._:-]+$/.test(advertisedHost))
  ) {
    throw new TypeError(
      `${REGISTER}: advertisedHost must be a host name or address, got ${
        JSON.stringify(advertisedHost)
      }`,
    );
  }
  if (
    advertisedPort !== undefined &&
    (!Number.isInteger(advertisedPort) || advertisedPort < 1 ||
      advertisedPort > 65535)
  ) {
    throw new RangeError(
      `${REGISTER}: advertisedPort must be an integer in 1..65535, got ${advertisedPort}`,
    );
  }
  if (
    weight !== undefined &&
    (typeof weight !== "number" || !Number.isFinite(weight) || weight <= 0)
  ) {
    throw new RangeError(
      `${REGISTER}: weight must be a finite number more than 0, got ${weight}`,
    );
  }
  checkMilliseconds(options.warnAfter, "warnAfter", 0, REGISTER);
  if (acl !== undefined) {
    try {
      toClientAcl(acl);
    } catch (error) {
      throw new TypeError(
        `${REGISTER}: invalid acl: ${
          (error as Error).message.replace(/^Cannot create node: /, "")
        }`,
      );
    }
    const needsAuth = aclEntries(acl).some((e) => e.scheme === "auth");
    if (
      needsAuth && !(zookeeper instanceof SessionKeeper) &&
      options.session?.auth === undefined
    ) {
      throw new TypeError(
        `${REGISTER}: acl ${
          JSON.stringify(acl)
        } grants the creator's identity, but session.auth gives none; add session: { auth: "user:password" }`,
      );
    }
  }
  return path;
}

function advertisedHost(
  bound: string,
  advertised: string | undefined,
  zookeeper: string | SessionKeeper | undefined,
  log: (message: string) => void,
): string {
  if (advertised !== undefined) return advertised;
  if (bound !== "0.0.0.0" && bound !== "::") return bound;
  const permission = Deno.permissions.querySync({
    name: "sys",
    kind: "networkInterfaces",
  });
  if (permission.state !== "granted") {
    throw new Deno.errors.NotCapable(
      `Cannot advertise a server bound to "${bound}": finding this machine's address needs --allow-sys=networkInterfaces; grant it, or set advertisedHost to the address clients should use`,
    );
  }
  const connectionString = zookeeper instanceof SessionKeeper
    ? zookeeper.connectionString
    : zookeeper ?? defaultZooKeeperHosts();
  const external = pickAdvertisedAddress(
    Deno.networkInterfaces(),
    parseConnectionString(connectionString).servers.map((s) => s.host),
  );
  if (external !== undefined) return external;
  log(
    `zkrpc: the server is bound to "${bound}" but this machine has no non-loopback IPv4 address; advertising 127.0.0.1 (set advertisedHost to override)`,
  );
  return "127.0.0.1";
}
