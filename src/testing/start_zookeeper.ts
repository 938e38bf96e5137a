/**
 * A throw-away standalone ZooKeeper server for tests.
 *
 * @module
 */

import { baseConfig, type ZooKeeperJvmOptions } from "./config.ts";
import { getFreePorts } from "./free_port.ts";
import type { ZooKeeperProcessOptions } from "./zookeeper_process.ts";
import {
  launchNodes,
  OwnedTempDir,
  prepareNodeDir,
  ZooKeeperNode,
} from "./_zookeeper_node.ts";

export type { ZooKeeperConfig, ZooKeeperJvmOptions } from "./config.ts";

/**
 * Options for {@linkcode startZooKeeper}.
 *
 * @example A fast-ticking server with extra settings
 * ```ts
 * import type { StartZooKeeperOptions } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * const options: StartZooKeeperOptions = {
 *   tickTime: 200,
 *   config: { maxClientCnxns: 0 },
 *   jvmOptions: ["-Xmx256m"],
 * };
 * assert.equal(options.tickTime, 200);
 * ```
 */
export interface StartZooKeeperOptions extends ZooKeeperJvmOptions {
  /**
   * Client port. `0` picks a free port (and picks again if another process
   * takes it before ZooKeeper binds it).
   *
   * @default {0}
   */
  port?: number;
  /**
   * Milliseconds to wait for the server to answer `ruok` with `imok`.
   *
   * @default {30000}
   */
  startupTimeout?: number;
  /**
   * The address the client port is bound to, and that
   * {@linkcode ZooKeeperServer.connectionString} names. This process polls
   * it, so it must be reachable from here.
   *
   * @default {"127.0.0.1"}
   */
  host?: string;
  /**
   * Command the `java` command line is appended to, e.g. `["ip", "netns",
   * "exec", "ns1"]` to run the JVM inside a network namespace (with `host`
   * an address of that namespace). The ports are then not checked from this
   * process, which may live in another network stack; give `port` (a fresh
   * namespace has every port free). Stopping the server signals the command
   * (`ip netns exec` replaces itself with `java`).
   *
   * @default {[]}
   */
  commandPrefix?: string[];
}

/**
 * A running standalone ZooKeeper started by {@linkcode startZooKeeper}.
 * `await using` stops it and removes its files when the scope ends.
 *
 * @example Crashing and restarting a server
 * ```ts
 * import { startZooKeeper } from "@zkrpc/zkrpc/testing";
 * import type { ZooKeeperServer } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * await using zk: ZooKeeperServer = await startZooKeeper();
 * await zk.kill();
 * assert.equal(zk.running, false);
 * await zk.restart();
 * assert.ok(zk.running);
 * ```
 */
export interface ZooKeeperServer extends AsyncDisposable {
  /** `host:port`, ready for a ZooKeeper client. */
  readonly connectionString: string;
  /** The address the server listens on (`127.0.0.1` unless `host` was given). */
  readonly host: string;
  /** The client port; the same across {@linkcode ZooKeeperServer.restart}. */
  readonly port: number;
  /** ZooKeeper's data directory (inside a temporary directory). */
  readonly dataDir: string;
  /** The file that collects the JVM's output. */
  readonly logFile: string;
  /** Whether the JVM is running. */
  readonly running: boolean;
  /** The JVM's process id while it runs. */
  readonly pid: number | undefined;
  /**
   * Stops the JVM, waits until it has exited, and removes the temporary
   * directory. Idempotent; the server cannot be restarted afterwards.
   */
  stop(): Promise<void>;
  /**
   * Kills the JVM with SIGKILL, as a crash would, and waits until it has
   * exited. The data stays, so {@linkcode ZooKeeperServer.restart} brings the
   * same server back.
   */
  kill(): Promise<void>;
  /**
   * Starts the server again on the same port with the same data (stopping it
   * first if it runs) and waits until it serves.
   */
  restart(): Promise<void>;
}

class StandaloneServer extends ZooKeeperNode implements ZooKeeperServer {
  #dir: OwnedTempDir;

  constructor(
    dir: OwnedTempDir,
    setup: Omit<ZooKeeperProcessOptions, "confDir" | "logFile">,
    startupTimeout: number,
  ) {
    super(
      dir.path,
      setup,
      (process) =>
        process.waitFor("ruok", (answer) => answer === "imok", startupTimeout),
    );
    this.#dir = dir;
  }

  override async stop(): Promise<void> {
    await this.#dir.remove(() => super.stop());
  }

  override async restart(): Promise<void> {
    if (this.#dir.removed) {
      throw new Error(
        "Cannot restart ZooKeeper: it was stopped and its data removed; use kill() to simulate an outage",
      );
    }
    await super.restart();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop().catch(() => {}); // dispose never throws
  }
}

/**
 * Starts a throw-away standalone ZooKeeper on a free loopback port (or the
 * given `host`, `port` and `commandPrefix`) with its own temporary data
 * directory, and waits until it answers `ruok` with
 * `imok`. In the spirit of Curator's `TestingServer`.
 *
 * ZooKeeper and Java are found by `provisionZooKeeper()` (the
 * `classpath` option, `ZOOKEEPER_HOME`, Debian's
 * `/usr/share/java/zookeeper.jar`, Homebrew, zkrpc's cache directory; Java
 * from `JAVA_HOME` or `PATH`), which installs Debian's `zookeeper` package
 * when they are missing and the process may (opt out with
 * `ZKRPC_NO_INSTALL=1`). Needs `--allow-run`, `--allow-net=127.0.0.1`,
 * `--allow-read`, `--allow-write` (temporary directory) and `--allow-env`.
 *
 * @param options Port, classpath, timeouts, extra configuration.
 * @returns The running server; dispose of it (or call `stop()`) to remove it.
 * @throws {Error} When ZooKeeper or Java is missing, a port is taken, the JVM
 * exits, or the server does not serve within `startupTimeout`; the message
 * includes the tail of ZooKeeper's log when there is one.
 *
 * @example Start a server for one test
 * ```ts
 * import { startZooKeeper } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * await using zk = await startZooKeeper();
 * assert.match(zk.connectionString, /^127\.0\.0\.1:\d+$/);
 * ```
 */
export async function startZooKeeper(
  options: StartZooKeeperOptions = {},
): Promise<ZooKeeperServer> {
  const {
    port: requestedPort = 0,
    startupTimeout = 30_000,
    tickTime = 500,
    config = {},
    jvmOptions = [],
    host = "127.0.0.1",
    commandPrefix = [],
  } = options;
  return await launchNodes(
    options,
    "zkrpc-zookeeper-",
    requestedPort === 0 ? 3 : 1,
    async (root, { classpath, java }) => {
      const port = requestedPort === 0 ? getFreePorts(1)[0]! : requestedPort;
      await prepareNodeDir(root, {
        ...baseConfig(`${root}/data`, port, tickTime, host),
        ...config,
      });
      return new StandaloneServer(new OwnedTempDir(root), {
        java,
        classpath,
        hostname: host,
        port,
        ports: [port],
        jvmOptions,
        commandPrefix,
      }, startupTimeout);
    },
    (server) => server.start(),
  );
}
