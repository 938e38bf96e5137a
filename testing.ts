/**
 * For the `deno test` suites of your service: throw-away ZooKeeper servers, in
 * the spirit of Curator's `TestingServer`/`TestingCluster` and kazoo's test
 * harness: {@linkcode startZooKeeper} starts a standalone server on a free
 * loopback port, {@linkcode startZooKeeperEnsemble} a real quorum, and
 * {@linkcode expireSession} expires a session on purpose, and
 * {@linkcode provisionZooKeeper} finds (or installs) Java and ZooKeeper.
 *
 * Needs Java and ZooKeeper 3.x: `ZOOKEEPER_HOME`, an explicit `classpath`
 * option, Debian's package, Homebrew's, or an Apache release in zkrpc's cache
 * directory. When none is there, the first start installs Debian's
 * `zookeeper` package if the machine can (Debian/Ubuntu, root or
 * password-less `sudo`, and the permissions to run `apt-get`/`sudo`);
 * `ZKRPC_NO_INSTALL=1` turns that off.
 *
 * ## Permissions
 *
 * This is the one place that lists them. A suite that uses this module runs
 * with exactly these `deno test` flags (a test of zkrpc runs such a suite with
 * them). Without any one of the first four it fails at the first start,
 * naming what is missing (`NotCapable`, or "no ZooKeeper jars found" without
 * the read permission); without the fifth, `JAVA_HOME` and `ZOOKEEPER_HOME`
 * are ignored, never prompted for:
 *
 * ```sh
 * deno test --allow-net=127.0.0.1 --allow-run=java --allow-read=/usr/share/java --allow-write=/tmp --allow-env=ZOOKEEPER_HOME,JAVA_HOME
 * ```
 *
 * | flag                                   | why                                                        | change it when                                                                                                          |
 * | -------------------------------------- | ---------------------------------------------------------- | ----------------------------------------------------------------------------------------------------------------------- |
 * | `--allow-net=127.0.0.1`                | ZooKeeper, your servers and clients, all on loopback       | your tests reach other hosts: add them                                                                                  |
 * | `--allow-run=java`                     | starts ZooKeeper's JVM                                     | `JAVA_HOME` is set (then `$JAVA_HOME/bin/java` runs): `--allow-run=$JAVA_HOME/bin/java`                                 |
 * | `--allow-read=/usr/share/java`         | finds Debian's `zookeeper.jar`                             | `ZOOKEEPER_HOME` is set: `--allow-read=$ZOOKEEPER_HOME`; Homebrew or zkrpc's cache directory: that directory            |
 * | `--allow-write=/tmp`                   | ZooKeeper's temporary data directory (removed on `stop()`) | `TMPDIR` is elsewhere: that directory                                                                                   |
 * | `--allow-env=ZOOKEEPER_HOME,JAVA_HOME` | where ZooKeeper and Java are (without it: the defaults)    | never                                                                                                                   |
 *
 * These flags find an installed ZooKeeper but never install one: when it is
 * missing, the first start fails at once with the install command for the
 * platform (`deno task provision` in a zkrpc checkout installs it).
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
