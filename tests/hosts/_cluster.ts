/**
 * The multi-host cluster the partition scenarios run on: a 3-member
 * ZooKeeper ensemble on hosts `zk1`–`zk3`, the example server bound to
 * `0.0.0.0` on `s1`–`s3` (advertising its own host address), and load
 * clients on `c1`, all on one {@linkcode SimulatedNetwork}. The test process
 * (the controller) watches the registry with a session of its own, which
 * partitions never cut.
 *
 * Timing is shortened so the suite takes minutes, see {@linkcode TIMING}.
 *
 * @module
 */
import {
  startZooKeeperEnsemble,
  type ZooKeeperEnsemble,
} from "../../testing.ts";
import { ZooKeeperSession } from "../../zookeeper.ts";
import { lines } from "../../src/testing/child_process.ts";
import { ServerProcess } from "../../src/testing/server_process.ts";
import { waitFor } from "../_discovery_helpers.ts";
import { RANGE, SimulatedNetwork } from "./_network.ts";
import type {
  LoadClientConfig,
  LoadFailure,
  LoadStatus,
} from "./_load_client.ts";

/**
 * The knobs of the suite (ms unless said): short on purpose, stated in
 * docs/partitions.md next to the figures they produce.
 */
export const TIMING = {
  /** ZooKeeper tick; sessions may last 2–20 ticks. */
  tickTime: 500,
  /**
   * ZooKeeper `syncLimit` in ticks: a member cut from the leader stops
   * serving (and drops its clients) after this many ticks.
   */
  syncLimit: 2,
  /**
   * Session timeout of servers and clients. Sessions survive a minority
   * partition only when it exceeds syncLimit × tickTime plus a reconnect.
   */
  sessionTimeout: 4000,
  /** Connect timeout (ZooKeeper and endpoints). */
  connectTimeout: 1000,
  /** Keepalive ping after this much silence on a connection. */
  keepaliveInterval: 500,
  /** A pinged peer that stays silent this long is dead. */
  keepaliveTimeout: 1000,
  /** Longest ejection of a failing endpoint (back-off cap). */
  maxEjectionTime: 2000,
  /** Call timeout, retries included. */
  callTimeout: 5000,
  /** Each server answers this much later, so calls are in flight. */
  serverDelay: 100,
  /** Pairs of calls (one idempotent, one not) started per second. */
  rate: 20,
  /** How long a partition lasts in a scenario. */
  partition: 6000,
  /** Margin allowed on top of the session timeout for convergence. */
  margin: 7000,
} as const;

/** Service the servers register in. */
export const SERVICE = "calculator";

const CLIENT = new URL("./_load_client.ts", import.meta.url);

/** A registered member as the registry holds it. */
export interface RegisteredMember {
  /** Node name. */
  node: string;
  /** Advertised host. */
  host: string;
  /** Port. */
  port: number;
  /** The server's pid. */
  pid: number;
}

/** A load client running in a host. */
export class LoadClient {
  /** The latest status line. */
  status: LoadStatus | undefined;
  /** Every failure line so far. */
  readonly failures: LoadFailure[] = [];
  /** Last lines on stderr. */
  readonly stderr: string[] = [];
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #ready = Promise.withResolvers<void>();
  #epoch = 0;
  #done: Promise<void>;

  /**
   * @param net The network.
   * @param host Host to run in.
   * @param config The client's configuration.
   */
  constructor(net: SimulatedNetwork, host: string, config: LoadClientConfig) {
    const child = net.spawn(host, [
      Deno.execPath(),
      "run",
      `--allow-net=${RANGE}`,
      CLIENT.href,
      JSON.stringify(config),
    ], { stdin: "piped" });
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#ready.promise.catch(() => {});
    const out = (async () => {
      for await (const line of lines(child.stdout)) {
        const message = JSON.parse(line) as
          | LoadStatus
          | LoadFailure
          | { type: "ready" };
        if (message.type === "ready") this.#ready.resolve();
        else if (message.type === "status") this.status = message;
        else this.failures.push(message);
      }
      this.#ready.reject(
        new Error(`Load client exited:\n${this.stderr.join("\n")}`),
      );
    })();
    const err = (async () => {
      for await (const line of lines(child.stderr)) {
        this.stderr.push(line);
        if (this.stderr.length > 20) this.stderr.shift();
      }
    })();
    this.#done = Promise.all([out, err]).then(() => {});
  }

  /** Resolves once the client knows an endpoint and started calling. */
  ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Starts a new counting window (and forgets the failures so far). */
  async reset(): Promise<void> {
    this.failures.length = 0;
    await this.#stdin.write(new TextEncoder().encode("reset\n"));
    const epoch = ++this.#epoch;
    await waitFor(
      () => this.status?.window.epoch === epoch,
      "the load client's new window",
      5000,
    );
  }

  /**
   * Waits for a status that satisfies `condition`.
   *
   * @param condition Tested on each status line.
   * @param what For the error message.
   * @param timeout Ms.
   */
  async until(
    condition: (status: LoadStatus) => boolean,
    what: string,
    timeout: number,
  ): Promise<void> {
    await waitFor(
      () => this.status !== undefined && condition(this.status),
      `${what} (last status: ${JSON.stringify(this.status)})`,
      timeout,
    );
  }

  /** Stops the load, waits for calls in flight, and ends the process. */
  async stop(): Promise<void> {
    try {
      await this.#stdin.write(new TextEncoder().encode("stop\n"));
      await this.#stdin.close();
    } catch {
      // already gone
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), 15_000);
      }),
    ]);
    clearTimeout(timer);
    if (!exited) this.#child.kill("SIGKILL");
    await this.#child.status;
    await this.#done;
  }
}

/** The whole cluster; `await using` stops everything and removes the hosts. */
export class Cluster implements AsyncDisposable {
  /** The simulated hosts. */
  readonly net: SimulatedNetwork;
  /** The ensemble (members on `zk1`–`zk3`). */
  readonly ensemble: ZooKeeperEnsemble;
  /** The controller's registry session. */
  readonly observer: ZooKeeperSession;
  /** Servers by host name. */
  readonly servers: Map<string, ServerProcess> = new Map();
  #clients: LoadClient[] = [];

  private constructor(
    net: SimulatedNetwork,
    ensemble: ZooKeeperEnsemble,
    observer: ZooKeeperSession,
  ) {
    this.net = net;
    this.ensemble = ensemble;
    this.observer = observer;
  }

  /**
   * Creates the hosts, starts the ensemble and the servers, and waits until
   * all three servers are registered.
   *
   * @param extraHosts More hosts to create (for scenarios of their own).
   * @returns The cluster.
   */
  static async start(extraHosts: string[] = []): Promise<Cluster> {
    const zk = ["zk1", "zk2", "zk3"];
    const net = await SimulatedNetwork.create([
      ...zk,
      "s1",
      "s2",
      "s3",
      "c1",
      ...extraHosts,
    ]);
    let ensemble: ZooKeeperEnsemble | undefined;
    let observer: ZooKeeperSession | undefined;
    try {
      ensemble = await startZooKeeperEnsemble({
        hosts: zk.map((name) => net.host(name).address),
        commandPrefix: zk.map((name) => net.prefixFor(name)),
        tickTime: TIMING.tickTime,
        config: { syncLimit: TIMING.syncLimit },
        startupTimeout: 90_000,
      });
      for (const member of ensemble.members) net.track(member.pid!);
      observer = await ZooKeeperSession.connect(ensemble.connectionString, {
        sessionTimeout: 10_000,
      });
      const cluster = new Cluster(net, ensemble, observer);
      for (const name of ["s1", "s2", "s3"]) await cluster.startServer(name);
      await cluster.waitForMembers(3, 30_000);
      return cluster;
    } catch (error) {
      await observer?.close();
      await ensemble?.stop();
      await net.close();
      throw error;
    }
  }

  /**
   * Starts `examples/server.ts 0.0.0.0 9001` in host `name` and waits until
   * it registered.
   *
   * @param name Host name.
   * @param args Extra server arguments.
   * @returns The server.
   */
  async startServer(name: string, args: string[] = []): Promise<ServerProcess> {
    const server = new ServerProcess({
      name,
      zookeeper: this.ensemble.connectionString,
      service: SERVICE,
      hostname: "0.0.0.0",
      port: 9001,
      allowNet: ["0.0.0.0", RANGE],
      permissions: ["--allow-sys=networkInterfaces"],
      commandPrefix: this.net.prefixFor(name),
      args: [
        "--delay",
        String(TIMING.serverDelay),
        "--session-timeout",
        String(TIMING.sessionTimeout),
        ...args,
      ],
    });
    this.net.track(server.pid);
    this.servers.set(name, server);
    try {
      await server.registered();
    } catch (error) {
      await server.stop("SIGKILL");
      throw error;
    }
    return server;
  }

  /**
   * Starts a load client in `host` and waits until it calls.
   *
   * @param host Host name.
   * @returns The client.
   */
  async startClient(host = "c1"): Promise<LoadClient> {
    const client = new LoadClient(this.net, host, {
      zookeeper: this.ensemble.connectionString,
      service: SERVICE,
      rate: TIMING.rate,
      timeout: TIMING.callTimeout,
      sessionTimeout: TIMING.sessionTimeout,
      connectTimeout: TIMING.connectTimeout,
      keepaliveInterval: TIMING.keepaliveInterval,
      keepaliveTimeout: TIMING.keepaliveTimeout,
      maxEjectionTime: TIMING.maxEjectionTime,
    });
    this.#clients.push(client);
    await client.ready();
    return client;
  }

  /** The members registered now, as the controller reads them. */
  async members(): Promise<RegisteredMember[]> {
    const path = `/rpc/${SERVICE}`;
    const nodes = await this.observer.getChildren(path).catch(() => []);
    const members: RegisteredMember[] = [];
    for (const node of nodes) {
      try {
        const { data } = await this.observer.getData(`${path}/${node}`);
        const member = JSON.parse(new TextDecoder().decode(data)) as {
          host: string;
          port: number;
          pid: number;
        };
        members.push({ node, ...member });
      } catch {
        // deleted meanwhile
      }
    }
    return members;
  }

  /**
   * Waits until `count` members are registered.
   *
   * @param count How many.
   * @param timeout Ms.
   */
  async waitForMembers(count: number, timeout: number): Promise<void> {
    let last: RegisteredMember[] = [];
    await waitFor(
      async () => {
        last = await this.members();
        return last.length === count;
      },
      `${count} registered members`,
      timeout,
    ).catch((error) => {
      throw new Error(`${(error as Error).message}: ${JSON.stringify(last)}`);
    });
  }

  /** Stops clients, servers, the ensemble, and removes the hosts. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.net.heal().catch(() => {});
    await Promise.all(this.#clients.map((client) => client.stop()));
    await Promise.all(
      [...this.servers.values()].map((server) => server.stop("SIGKILL")),
    );
    await this.observer.close().catch(() => {});
    await this.ensemble.stop();
    await this.net.close();
  }
}
