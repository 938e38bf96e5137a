/**
 * The provisioning step: find Java and the ZooKeeper jars, install Debian's
 * `zookeeper` package when they are missing and the machine allows it, or
 * stop with the commands for this platform. `startZooKeeper()`,
 * `startZooKeeperEnsemble()`, the demo, the bench, `deno task
 * provision` and CI all come through here.
 *
 * @module
 */

import { type Host, systemHost } from "./host.ts";
import {
  type Argv,
  NO_INSTALL_ENV,
  type PlanOptions,
  planProvisioning,
  type ProvisioningPlan,
} from "./provision_plan.ts";

/**
 * Options for {@linkcode provisionZooKeeper}.
 *
 * @example Never install anything
 * ```ts
 * import type { ProvisionZooKeeperOptions } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * const options: ProvisionZooKeeperOptions = { install: false };
 * assert.equal(options.install, false);
 * ```
 */
export interface ProvisionZooKeeperOptions {
  /**
   * Classpath holding the ZooKeeper jars, as entries or one `:`-joined string.
   * When unset, `ZOOKEEPER_HOME` (its jars and `lib/*.jar`) is used, then
   * Debian's `/usr/share/java/zookeeper.jar`, Homebrew's `zookeeper` (macOS),
   * then an Apache release unpacked in `$XDG_CACHE_HOME/zkrpc` or
   * `~/.cache/zkrpc`.
   *
   * @default {undefined}
   */
  classpath?: string | string[];
  /**
   * The `java` executable.
   *
   * @default {"$JAVA_HOME/bin/java, else java on PATH"}
   */
  java?: string;
  /**
   * Whether zkrpc may install Debian's `zookeeper` package when ZooKeeper or
   * Java is missing. `false`, or the environment variable
   * `ZKRPC_NO_INSTALL=1`, stops with the install command instead.
   *
   * @default {true}
   */
  install?: boolean;
  /**
   * Receives what the step is about to do (one line before installing).
   *
   * @default {console.error}
   */
  log?: (message: string) => void;
}

/**
 * A runnable ZooKeeper found by {@linkcode provisionZooKeeper}.
 *
 * @example Reading an installation
 * ```ts
 * import type { ZooKeeperInstallation } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * const found: ZooKeeperInstallation = {
 *   classpath: ["/usr/share/java/zookeeper.jar"],
 *   source: "debian",
 *   java: "java",
 *   installed: false,
 * };
 * assert.equal(found.source, "debian");
 * ```
 */
export interface ZooKeeperInstallation {
  /** Classpath entries holding the ZooKeeper server classes. */
  classpath: string[];
  /**
   * Where they were found: the `classpath` option, `ZOOKEEPER_HOME`, Debian's
   * package, Homebrew's, or zkrpc's cache directory.
   */
  source: "option" | "ZOOKEEPER_HOME" | "debian" | "homebrew" | "cache";
  /** The `java` executable. */
  java: string;
  /** Whether this call installed packages. */
  installed: boolean;
}

/** One install at a time per process; later callers wait for it. */
let installing: Promise<void> | undefined;

/**
 * {@linkcode provisionZooKeeper} with the machine and Debian's jar
 * injectable, for `deno task provision` and tests.
 *
 * @param options As for {@linkcode provisionZooKeeper}, plus `debianJar` and
 * `cacheDir`.
 * @param host The machine.
 * @returns The installation.
 */
export async function provision(
  options:
    & ProvisionZooKeeperOptions
    & Pick<PlanOptions, "debianJar" | "cacheDir"> = {},
  host: Host = systemHost(),
): Promise<ZooKeeperInstallation> {
  const { log = console.error, ...planOptions } = options;
  let plan = planProvisioning(host, planOptions);
  let installed = false;
  if (plan.action === "install") {
    const packages = plan.packages.join(" ");
    if (installing === undefined) {
      log(
        `zkrpc: ${plan.why}; installing Debian's ${packages} package${
          packages === "zookeeper" ? " (it brings a Java runtime)" : ""
        }: ${plan.command}\n` +
          `zkrpc: set ${NO_INSTALL_ENV}=1 to never install anything`,
      );
      installing = runSteps(plan.steps).finally(() => installing = undefined);
      installed = true;
    }
    await installing;
    plan = planProvisioning(host, { ...planOptions, install: false });
    if (plan.action === "stop") {
      throw new Error(
        `Cannot start ZooKeeper: installed ${packages} but still ${plan.why}`,
      );
    }
  }
  if (plan.action !== "found") throw new Error(stopMessage(plan));
  return {
    classpath: plan.classpath.entries,
    source: plan.classpath.source,
    java: plan.java,
    installed,
  };
}

function stopMessage(
  plan: Exclude<ProvisioningPlan, { action: "found" }>,
): string {
  if (plan.action === "install") return `Cannot start ZooKeeper: ${plan.why}`;
  const commands = plan.commands.map((line) => `  ${line}`).join("\n");
  return `Cannot start ZooKeeper: ${plan.why}. To install on ${plan.platform}:\n${commands}`;
}

/**
 * Runs the install commands one after another. Their progress is visible:
 * stderr is inherited and stdout is copied to this process's stderr (so a
 * caller's stdout, such as the demo's `--json`, stays clean).
 */
async function runSteps(steps: Argv[]): Promise<void> {
  for (const [command, ...args] of steps) {
    const line = [command, ...args].join(" ");
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command, {
        args,
        env: { DEBIAN_FRONTEND: "noninteractive" },
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } catch (error) {
      throw new Error(
        `Cannot install ZooKeeper: cannot run "${line}": ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
    for await (const chunk of child.stdout) {
      let written = 0;
      while (written < chunk.length) {
        written += await Deno.stderr.write(chunk.subarray(written));
      }
    }
    const status = await child.status;
    if (!status.success) {
      throw new Error(
        `Cannot install ZooKeeper: "${line}" exited with code ${status.code}`,
      );
    }
  }
}

/**
 * Finds Java and the ZooKeeper jars, and installs them when they are missing
 * and the machine allows it: on Debian/Ubuntu with `apt-get`, running as root
 * or with `sudo` that needs no password, it says what it is about to do and
 * runs `apt-get update` and `apt-get install -y zookeeper` (which brings a
 * Java runtime) with their progress on stderr. Otherwise it throws with the
 * reason and the exact commands for this platform (Debian/Ubuntu, Fedora,
 * macOS with Homebrew, or an Apache release).
 *
 * Opt out with `install: false` or `ZKRPC_NO_INSTALL=1`. Installing also needs
 * the permissions to read `ZKRPC_NO_INSTALL` (`--allow-env`), to run
 * `apt-get` or `sudo` (`--allow-run=/usr/bin/apt-get,/usr/bin/sudo`) and to
 * know the user id (`--allow-sys=uid`); without them it stops with the
 * commands, never prompts. `startZooKeeper()` calls this first.
 *
 * @param options Explicit classpath and Java, the install switch, a logger.
 * @returns The classpath and `java` to run ZooKeeper with.
 * @throws {Error} When ZooKeeper or Java is missing and cannot be installed,
 * or an explicit setting (`classpath`, `ZOOKEEPER_HOME`, `JAVA_HOME`) points
 * at nothing usable; the message starts with "Cannot start ZooKeeper" and
 * ends with the commands that fix it.
 * @throws {TypeError} When `classpath` is empty.
 *
 * @example Find ZooKeeper without installing anything
 * ```ts ignore
 * import { provisionZooKeeper } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * const zookeeper = await provisionZooKeeper({ install: false });
 * assert.ok(zookeeper.classpath.length > 0);
 * ```
 */
export function provisionZooKeeper(
  options: ProvisionZooKeeperOptions = {},
): Promise<ZooKeeperInstallation> {
  return provision(options);
}
