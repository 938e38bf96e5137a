/**
 * A throw-away ZooKeeper ensemble (a real quorum on loopback) for tests.
 *
 * @module
 */

import { waitFor, WaitTimeoutError } from "./wait.ts";
import {
  baseConfig,
  type ZooKeeperConfig,
  type ZooKeeperJvmOptions,
} from "./config.ts";
import { fourLetterWord } from "./four_letter_word.ts";
import { getFreePorts } from "./free_port.ts";
import type { ZooKeeperProcessOptions } from "./zookeeper_process.ts";
import {
  launchNodes,
  OwnedTempDir,
  prepareNodeDir,
  ZooKeeperNode,
} from "./_zookeeper_node.ts";

/**
 * Options for {@linkcode startZooKeeperEnsemble}.
 *
 * @example A five-member ensemble
 * ```ts
 * import type { StartZooKeeperEnsembleOptions } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * const options: StartZooKeeperEnsembleOptions = {
 *   size: 5,
 *   tickTime: 200,
 *   startupTimeout: 120_000,
 * };
 * assert.equal(options.size, 5);
 * ```
 */
export interface StartZooKeeperEnsembleOptions extends ZooKeeperJvmOptions {
  /**
   * Number of members (an odd number: a majority must stay up to serve).
   *
   * @default {3}
   */
  size?: number;
  /**
   * Milliseconds to wait for the quorum to elect a leader (and, for
   * {@linkcode ZooKeeperEnsembleMember.restart}, for a member to rejoin).
   *
   * @default {60000}
   */
  startupTimeout?: number;
  /**
   * The address of each member, in `myid` order; its length is the size
   * when `size` is not given. This process polls every member, so each
   * address must be reachable from here. When every member has an address
   * of its own, each uses ZooKeeper's standard ports (client 2181, quorum
   * 2888, election 3888); otherwise the ports are picked free on loopback.
   *
   * @default {"`size` times 127.0.0.1"}
   */
  hosts?: readonly string[];
  /**
   * For each member, in `myid` order, the command its `java` command line is
   * appended to, e.g. `["ip", "netns", "exec", "ns1"]` to run it inside a
   * network namespace that owns its `hosts` address. Ports are not checked
   * from this process for a member with a prefix.
   *
   * @default {[]}
   */
  commandPrefix?: readonly (readonly string[])[];
  /**
   * Number of observers to add: non-voting members (ZooKeeper's way to
   * scale reads and watches without slowing writes), on loopback with free
   * ports, listed in {@linkcode ZooKeeperEnsemble.observers} and not in
   * `members` or `connectionString`. Not with members that have addresses
   * of their own (`hosts`); needs `size` of 2 or more.
   *
   * @default {0}
   */
  observers?: number;
}

/**
 * One member of a {@linkcode ZooKeeperEnsemble}.
 *
 * @example Killing the leader forces an election
 * ```ts
 * import { startZooKeeperEnsemble } from "@zkrpc/zkrpc/testing";
 * import type { ZooKeeperEnsembleMember } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * await using ensemble = await startZooKeeperEnsemble();
 * const old: ZooKeeperEnsembleMember = await ensemble.leader();
 * await old.kill();
 * assert.notEqual((await ensemble.leader()).id, old.id);
 * await old.restart();
 * assert.equal(await old.mode(), "follower");
 * ```
 */
export interface ZooKeeperEnsembleMember {
  /** The member's `myid` (1-based). */
  readonly id: number;
  /** The address it listens on (`127.0.0.1` unless `hosts` was given). */
  readonly host: string;
  /** Its client port. */
  readonly port: number;
  /** `host:port` of this member alone. */
  readonly connectionString: string;
  /** Its data directory. */
  readonly dataDir: string;
  /** The file that collects its JVM's output. */
  readonly logFile: string;
  /** Whether its JVM is running. */
  readonly running: boolean;
  /** Its JVM's process id while it runs. */
  readonly pid: number | undefined;
  /**
   * Its role as `srvr` reports it: `"leader"`, `"follower"`, or `undefined`
   * when it is down or not serving (e.g. during an election).
   */
  mode(): Promise<"leader" | "follower" | "observer" | undefined>;
  /** Stops its JVM gracefully (data is kept) and waits until it exited. */
  stop(): Promise<void>;
  /** Kills its JVM with SIGKILL (data is kept) and waits until it exited. */
  kill(): Promise<void>;
  /**
   * Starts it again with the same ports and data (stopping it first if it
   * runs) and waits until it serves as leader or follower.
   */
  restart(): Promise<void>;
}

/**
 * A running ensemble started by {@linkcode startZooKeeperEnsemble}.
 * `await using` stops every member and removes all files.
 *
 * @example Finding the leader
 * ```ts
 * import { startZooKeeperEnsemble } from "@zkrpc/zkrpc/testing";
 * import type { ZooKeeperEnsemble } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * await using ensemble: ZooKeeperEnsemble = await startZooKeeperEnsemble();
 * assert.equal(ensemble.members.length, 3);
 * const leader = await ensemble.leader();
 * assert.ok(ensemble.connectionString.includes(`:${leader.port}`));
 * ```
 */
export interface ZooKeeperEnsemble extends AsyncDisposable {
  /** The voting members, in `myid` order. */
  readonly members: readonly ZooKeeperEnsembleMember[];
  /**
   * The observers (`options.observers`), in `myid` order after the voting
   * members; connect a client to one with its `connectionString`.
   */
  readonly observers: readonly ZooKeeperEnsembleMember[];
  /** `host:port,host:port,...` of the voting members. */
  readonly connectionString: string;
  /** The temporary directory holding every member's files. */
  readonly dir: string;
  /**
   * Waits until a running member reports `Mode: leader` and returns it.
   *
   * @param options How long to wait (default: the startup timeout).
   */
  leader(options?: { timeout?: number }): Promise<ZooKeeperEnsembleMember>;
  /** Stops every member, waits until they exited, removes all files. */
  stop(): Promise<void>;
}

class Member extends ZooKeeperNode implements ZooKeeperEnsembleMember {
  readonly id: number;

  constructor(
    id: number,
    dir: string,
    setup: Omit<ZooKeeperProcessOptions, "confDir" | "logFile">,
    startupTimeout: number,
  ) {
    super(
      dir,
      setup,
      (process) =>
        process.waitFor(
          "srvr",
          (answer) => parseMode(answer) !== undefined,
          startupTimeout,
        ),
    );
    this.id = id;
  }

  async mode(): Promise<"leader" | "follower" | "observer" | undefined> {
    if (!this.running) return undefined;
    try {
      const answer = await fourLetterWord(
        { hostname: this.host, port: this.port },
        "srvr",
        { timeout: 1000 },
      );
      return parseMode(answer);
    } catch {
      return undefined;
    }
  }
}

function parseMode(
  answer: string,
): "leader" | "follower" | "observer" | undefined {
  const mode = /^Mode: (\w+)/m.exec(answer)?.[1];
  return mode === "leader" || mode === "follower" || mode === "observer"
    ? mode
    : undefined;
}

class Ensemble implements ZooKeeperEnsemble {
  readonly members: readonly Member[];
  readonly observers: readonly Member[];
  #dir: OwnedTempDir;
  #startupTimeout: number;

  constructor(
    dir: OwnedTempDir,
    members: Member[],
    observers: Member[],
    startupTimeout: number,
  ) {
    this.#dir = dir;
    this.members = members;
    this.observers = observers;
    this.#startupTimeout = startupTimeout;
  }

  get dir(): string {
    return this.#dir.path;
  }

  get connectionString(): string {
    return this.members.map((m) => m.connectionString).join(",");
  }

  async leader(
    options: { timeout?: number } = {},
  ): Promise<ZooKeeperEnsembleMember> {
    const timeout = options.timeout ?? this.#startupTimeout;
    let modes: (string | undefined)[] = [];
    try {
      await waitFor(async () => {
        modes = await Promise.all(this.members.map((m) => m.mode()));
        return modes.includes("leader");
      }, { what: "a leader", timeout, interval: 100 });
    } catch (error) {
      if (!(error instanceof WaitTimeoutError)) throw error;
      throw new Error(
        `Cannot find the ZooKeeper leader: no member reported "Mode: leader" within ${timeout} ms (modes: ${
          modes.map((mode, i) => `${this.members[i]!.id}=${mode ?? "down"}`)
            .join(", ")
        })`,
      );
    }
    return this.members[modes.indexOf("leader")]!;
  }

  async stop(): Promise<void> {
    await this.#dir.remove(async () => {
      await Promise.all(
        [...this.members, ...this.observers].map((member) => member.stop()),
      );
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop().catch(() => {}); // dispose never throws
  }
}

/**
 * Starts a real ZooKeeper quorum on loopback: `size` JVMs with distinct
 * client, peer and election ports (all picked free at start), each with its
 * own data directory (or, with `hosts` and `commandPrefix`, one member per
 * address, e.g. one per network namespace), and waits until every member serves and one is leader.
 * In the spirit of Curator's `TestingCluster`.
 *
 * @param options Size, classpath, timeouts, extra configuration.
 * @returns The running ensemble; dispose of it (or call `stop()`) to remove it.
 * @throws {Error} When ZooKeeper or Java is missing, a member cannot start, or
 * no leader is elected within `startupTimeout`; the message includes the tail
 * of the failing member's log.
 *
 * @example Kill the leader and keep serving
 * ```ts
 * import { startZooKeeperEnsemble } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * await using ensemble = await startZooKeeperEnsemble({ size: 3 });
 * const leader = await ensemble.leader();
 * await leader.kill();
 * const next = await ensemble.leader();
 * assert.notEqual(next.id, leader.id);
 * await leader.restart();
 * assert.equal(await leader.mode(), "follower");
 * ```
 */
export async function startZooKeeperEnsemble(
  options: StartZooKeeperEnsembleOptions = {},
): Promise<ZooKeeperEnsemble> {
  const {
    size = options.hosts?.length ?? 3,
    startupTimeout = 60_000,
    tickTime = 500,
    config = {},
    jvmOptions = [],
    commandPrefix = [],
    observers = 0,
  } = options;
  if (!Number.isInteger(observers) || observers < 0) {
    throw new RangeError(
      `Cannot start ZooKeeper ensemble: observers must be 0 or a positive integer, got ${observers}`,
    );
  }
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(
      `Cannot start ZooKeeper ensemble: size must be a positive integer, got ${size}`,
    );
  }
  const hosts = options.hosts ?? Array<string>(size).fill("127.0.0.1");
  if (hosts.length !== size) {
    throw new RangeError(
      `Cannot start ZooKeeper ensemble: ${hosts.length} hosts given for ${size} members`,
    );
  }
  if (commandPrefix.length > size) {
    throw new RangeError(
      `Cannot start ZooKeeper ensemble: ${commandPrefix.length} command prefixes given for ${size} members`,
    );
  }
  // Members with addresses of their own use the standard ports.
  const ownAddresses = new Set(hosts).size === size && size > 1;
  if (observers > 0 && size < 2) {
    throw new RangeError(
      `Cannot start ZooKeeper ensemble: observers need a quorum of at least 2 voting members, got size ${size}`,
    );
  }
  if (ownAddresses && observers > 0) {
    throw new RangeError(
      "Cannot start ZooKeeper ensemble: observers run on loopback and cannot join members that have addresses of their own (hosts)",
    );
  }
  return await launchNodes(
    options,
    "zkrpc-ensemble-",
    ownAddresses ? 1 : 3,
    async (root, { classpath, java }) => {
      const total = size + observers;
      const allHosts = [
        ...hosts,
        ...Array<string>(observers).fill("127.0.0.1"),
      ];
      const ports = ownAddresses
        ? hosts.flatMap(() => [2181, 2888, 3888])
        : getFreePorts(total * 3);
      const servers: ZooKeeperConfig = {};
      for (let i = 0; i < total; i++) {
        servers[`server.${i + 1}`] = `${allHosts[i]}:${ports[3 * i + 1]}:${
          ports[3 * i + 2]
        }${i >= size ? ":observer" : ""}`;
      }
      const members: Member[] = [];
      for (let i = 0; i < total; i++) {
        const id = i + 1;
        const dir = `${root}/member${id}`;
        const clientPort = ports[3 * i]!;
        await prepareNodeDir(dir, {
          ...baseConfig(`${dir}/data`, clientPort, tickTime, allHosts[i]),
          initLimit: 10,
          syncLimit: 5,
          ...servers,
          ...(i >= size ? { peerType: "observer" } : {}),
          ...config,
        }, id);
        members.push(
          new Member(id, dir, {
            java,
            classpath,
            hostname: allHosts[i]!,
            port: clientPort,
            ports: ports.slice(3 * i, 3 * i + 3),
            jvmOptions,
            commandPrefix: [...(commandPrefix[i] ?? [])],
          }, startupTimeout),
        );
      }
      return new Ensemble(
        new OwnedTempDir(root),
        members.slice(0, size),
        members.slice(size),
        startupTimeout,
      );
    },
    async (ensemble) => {
      const members = [...ensemble.members, ...ensemble.observers];
      for (const member of members) await member.process.spawn();
      await Promise.all(members.map((member) => member.waitUntilServing()));
      await ensemble.leader();
    },
  );
}
