/**
 * Internal: what the standalone server (`start_zookeeper.ts`) and the
 * ensemble (`start_zookeeper_ensemble.ts`) share: one ZooKeeper JVM in a
 * directory of its own ({@linkcode prepareNodeDir}, {@linkcode ZooKeeperNode}),
 * the temporary directory that holds the nodes ({@linkcode OwnedTempDir}),
 * and the retry when another process takes a picked port first
 * ({@linkcode inFreshTempDir}).
 *
 * @module
 */

import { onUnload } from "./cleanup.ts";
import { provision, type ZooKeeperInstallation } from "./provision.ts";
import { writeZooKeeperConfig, type ZooKeeperConfig } from "./config.ts";
import {
  PortInUseError,
  ZooKeeperProcess,
  type ZooKeeperProcessOptions,
} from "./zookeeper_process.ts";

/**
 * Lays out a node's directory `dir`: `conf/zoo.cfg` with `config`, and
 * `data/` (holding `myid` when given: an ensemble member).
 */
export async function prepareNodeDir(
  dir: string,
  config: ZooKeeperConfig,
  myid?: number,
): Promise<void> {
  await Deno.mkdir(`${dir}/conf`, { recursive: true });
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  if (myid !== undefined) {
    await Deno.writeTextFile(`${dir}/data/myid`, `${myid}\n`);
  }
  await writeZooKeeperConfig(`${dir}/conf`, config);
}

/**
 * One ZooKeeper JVM with its directory `dir` (`conf/`, `data/`,
 * `zookeeper.log`). `serving` is how a (re)started node proves it serves.
 */
export class ZooKeeperNode {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logFile: string;
  readonly process: ZooKeeperProcess;
  #serving: (process: ZooKeeperProcess) => Promise<void>;

  /**
   * @param dir The node's directory, laid out by {@linkcode prepareNodeDir}.
   * @param setup How to run the JVM.
   * @param serving Resolves once a just spawned JVM serves.
   */
  constructor(
    dir: string,
    setup: Omit<ZooKeeperProcessOptions, "confDir" | "logFile">,
    serving: (process: ZooKeeperProcess) => Promise<void>,
  ) {
    this.host = setup.hostname;
    this.port = setup.port;
    this.dataDir = `${dir}/data`;
    this.logFile = `${dir}/zookeeper.log`;
    this.process = new ZooKeeperProcess({
      ...setup,
      confDir: `${dir}/conf`,
      logFile: this.logFile,
    });
    this.#serving = serving;
  }

  get connectionString(): string {
    return `${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.process.running;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Waits until the spawned JVM serves. */
  waitUntilServing(): Promise<void> {
    return this.#serving(this.process);
  }

  /** Spawns the JVM and waits until it serves. */
  async start(checkPorts = true): Promise<void> {
    await this.process.spawn(checkPorts);
    await this.waitUntilServing();
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }

  async kill(): Promise<void> {
    await this.process.kill();
  }

  /**
   * Starts the node again on its ports with its data (stopping it first)
   * and waits until it serves; kills it when it does not.
   */
  async restart(): Promise<void> {
    await this.process.stop();
    try {
      await this.start(false);
    } catch (error) {
      await this.process.kill();
      throw error;
    }
  }
}

/**
 * A temporary directory that holds ZooKeeper nodes: removed once, after its
 * nodes were stopped, or at process exit if nobody removed it.
 */
export class OwnedTempDir {
  readonly path: string;
  #removed = false;
  #unregister: () => void;

  constructor(path: string) {
    this.path = path;
    this.#unregister = onUnload(() =>
      Deno.removeSync(path, { recursive: true })
    );
  }

  /** Whether {@linkcode OwnedTempDir.remove} was called. */
  get removed(): boolean {
    return this.#removed;
  }

  /** Runs `stopNodes` and removes the directory; only the first call does. */
  async remove(stopNodes: () => Promise<void>): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    await stopNodes();
    await Deno.remove(this.path, { recursive: true }).catch(() => {});
    this.#unregister();
  }
}

/**
 * Starts throw-away ZooKeeper nodes: finds (or installs) ZooKeeper and Java
 * from `options.classpath` and `options.java`, has `build` lay out the
 * nodes in a fresh temporary directory ({@linkcode inFreshTempDir}, tried
 * up to `attempts` times) and `start` them; when starting fails, what was
 * built is stopped (which removes its directory) and the error rethrown.
 *
 * @param options Where ZooKeeper and Java are.
 * @param prefix The temporary directory's prefix.
 * @param attempts Tries in all, against ports taken meanwhile.
 * @param build Lays out the nodes in the directory.
 * @param start Starts what `build` made and waits until it serves.
 * @returns What `build` made, serving.
 */
export async function launchNodes<T extends { stop(): Promise<void> }>(
  options: Parameters<typeof provision>[0],
  prefix: string,
  attempts: number,
  build: (root: string, found: ZooKeeperInstallation) => Promise<T>,
  start: (built: T) => Promise<void>,
): Promise<T> {
  const found = await provision(options);
  return await inFreshTempDir(prefix, attempts, async (root) => {
    const built = await build(root, found);
    try {
      await start(built);
    } catch (error) {
      await built.stop();
      throw error;
    }
    return built;
  });
}

/**
 * Runs `start` in a fresh temporary directory (prefix `prefix`), removing
 * the directory when it throws; when it throws a `PortInUseError`, tries
 * again in a new directory, up to `attempts` times in all (ports picked free
 * may be taken by another process before ZooKeeper binds them).
 */
export async function inFreshTempDir<T>(
  prefix: string,
  attempts: number,
  start: (root: string) => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    const root = await Deno.makeTempDir({ prefix });
    try {
      return await start(root);
    } catch (error) {
      await Deno.remove(root, { recursive: true }).catch(() => {});
      if (error instanceof PortInUseError && attempt < attempts) continue;
      throw error;
    }
  }
}
