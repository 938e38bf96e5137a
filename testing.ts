/**
 * Throw-away ZooKeeper servers for `deno test` suites, in the spirit of
 * Curator's `TestingServer`/`TestingCluster` and kazoo's test harness:
 * {@linkcode startZooKeeper} starts a standalone server on a free loopback
 * port, {@linkcode startZooKeeperEnsemble} a real quorum, and
 * {@linkcode expireSession} expires a session on purpose.
 *
 * Needs Java and ZooKeeper 3.x: `ZOOKEEPER_HOME`, an explicit `classpath`
 * option, or Debian's package (`apt-get install zookeeper`). Run tests with
 * `--allow-run --allow-net=127.0.0.1 --allow-read --allow-write --allow-env`.
 *
 * @example Run a test against a real ZooKeeper
 * ```ts ignore
 * import { startZooKeeper } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * Deno.test("my registry talks to ZooKeeper", async () => {
 *   await using zk = await startZooKeeper();
 *   assert.ok(zk.running);
 * });
 * ```
 *
 * @module
 */

export {
  startZooKeeper,
  type StartZooKeeperOptions,
  type ZooKeeperConfig,
  type ZooKeeperServer,
} from "./src/testing/start_zookeeper.ts";
export {
  expireSession,
  type ExpireSessionOptions,
} from "./src/testing/expire_session.ts";
export {
  startZooKeeperEnsemble,
  type StartZooKeeperEnsembleOptions,
  type ZooKeeperEnsemble,
  type ZooKeeperEnsembleMember,
} from "./src/testing/start_zookeeper_ensemble.ts";
