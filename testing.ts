/**
 * Throw-away ZooKeeper servers for `deno test` suites, in the spirit of
 * Curator's `TestingServer`/`TestingCluster` and kazoo's test harness:
 * {@linkcode startZooKeeper} starts a standalone server on a free loopback
 * port, {@linkcode startZooKeeperEnsemble} a real quorum, and
 * {@linkcode expireSession} expires a session on purpose, and
 * {@linkcode provisionZooKeeper} finds (or installs) Java and ZooKeeper.
 *
 * Needs Java and ZooKeeper 3.x: `ZOOKEEPER_HOME`, an explicit `classpath`
 * option, Debian's package, Homebrew's, or an Apache release in zkrpc's cache
 * directory. When none is there, the first start installs Debian's
 * `zookeeper` package if the machine can (Debian/Ubuntu, root or
 * password-less `sudo`, and the permissions to run `apt-get`/`sudo`);
 * `ZKRPC_NO_INSTALL=1` turns that off. Run tests with
 * `--allow-run --allow-net=127.0.0.1 --allow-read --allow-write --allow-env`.
 *
 * @example Run a test against a real ZooKeeper
 * ```ts
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
  provisionZooKeeper,
  type ProvisionZooKeeperOptions,
  type ZooKeeperInstallation,
} from "./src/testing/provision.ts";
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
