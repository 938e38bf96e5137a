/**
 * Finds the `java` executable: an explicit path, `$JAVA_HOME/bin/java`,
 * Homebrew's `openjdk` when ZooKeeper came from Homebrew, else `java` on
 * `PATH`.
 *
 * @module
 */

import type { ZooKeeperClasspath } from "./classpath.ts";
import type { Host } from "./host.ts";

/** The outcome of {@linkcode locateJava}. */
export type JavaLocation =
  /** The executable to run. */
  | { found: string }
  /** `JAVA_HOME` points at nothing usable; installing would not help. */
  | { broken: string }
  /** No Java runtime. */
  | { missing: string };

/**
 * Returns the `java` executable to run.
 *
 * @param explicit A path given by the caller; wins when set (not checked:
 * starting it reports a bad one).
 * @param host The machine.
 * @param zookeeper Where ZooKeeper was found, when it was.
 * @returns The executable, or why there is none.
 */
export function locateJava(
  explicit: string | undefined,
  host: Host,
  zookeeper?: ZooKeeperClasspath,
): JavaLocation {
  if (explicit !== undefined) return { found: explicit };
  const home = host.env("JAVA_HOME");
  if (home) {
    const java = `${home}/bin/java`;
    return host.exists(java)
      ? { found: java }
      : { broken: `JAVA_HOME is "${home}" but ${java} does not exist` };
  }
  if (zookeeper?.source === "homebrew") {
    // Homebrew's openjdk is keg-only: not on PATH, and macOS's /usr/bin/java
    // is a stub that asks to install a JDK.
    const java = `${zookeeper.home}/opt/openjdk/bin/java`;
    if (host.exists(java)) return { found: java };
  }
  if (host.which("java") !== undefined) return { found: "java" };
  // Without PATH we cannot tell; let starting it decide.
  if (!host.canReadEnv("PATH")) return { found: "java" };
  return { missing: "no java on PATH and JAVA_HOME is unset" };
}
