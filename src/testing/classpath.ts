/**
 * Finds the ZooKeeper jars, in this order: an explicit classpath,
 * `ZOOKEEPER_HOME`, Debian's `/usr/share/java/zookeeper.jar`, Homebrew's
 * `zookeeper` formula (macOS), and an Apache release unpacked in zkrpc's
 * cache directory.
 *
 * @module
 */

import type { Host } from "./host.ts";

/** Debian's jar (package `libzookeeper-java`, pulled in by `zookeeper`). */
export const DEBIAN_JAR = "/usr/share/java/zookeeper.jar";
const DEBIAN_LOG_BINDING = "/usr/share/java/slf4j-simple.jar";
/** Where Homebrew keeps the `zookeeper` formula (Apple silicon, Intel). */
export const HOMEBREW_PREFIXES = ["/opt/homebrew", "/usr/local"];

/** Where the ZooKeeper classes were found. */
export interface ZooKeeperClasspath {
  /** Classpath entries, in order. */
  entries: string[];
  /** Which rule found them. */
  source: "option" | "ZOOKEEPER_HOME" | "debian" | "homebrew" | "cache";
  /** The installation's directory, for the rules that have one. */
  home?: string;
}

/** The outcome of {@linkcode locateZooKeeper}. */
export type ZooKeeperLocation =
  | { found: ZooKeeperClasspath }
  /** An explicit setting points at nothing usable; installing would not help. */
  | { broken: string }
  /** Nothing found; `looked` says where. */
  | { missing: string };

/**
 * zkrpc's cache directory, where an unpacked Apache release is found:
 * `$XDG_CACHE_HOME/zkrpc`, else `$HOME/.cache/zkrpc`.
 *
 * @param host The machine.
 * @returns The directory, or `undefined` when neither variable is set.
 */
export function cacheDir(host: Host): string | undefined {
  const xdg = host.env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/zkrpc`;
  const home = host.env("HOME");
  return home ? `${home}/.cache/zkrpc` : undefined;
}

/**
 * The jars of an unpacked ZooKeeper release: `zookeeper*.jar` in `dir`, then
 * every jar in `dir/lib`.
 */
function releaseJars(host: Host, dir: string): string[] {
  const jars = (d: string) =>
    host.files(d).filter((name) => name.endsWith(".jar")).map((name) =>
      `${d}/${name}`
    );
  return [
    ...jars(dir).filter((jar) => /\/zookeeper[^/]*\.jar$/.test(jar)),
    ...jars(`${dir}/lib`),
  ];
}

/**
 * Resolves the classpath to run ZooKeeper with.
 *
 * @param classpath An explicit classpath (entries, or one string joined with
 * `:`); wins over everything else.
 * @param host The machine.
 * @param debianJar Where Debian's jar is looked for.
 * @param cache zkrpc's cache directory.
 * @returns What was found, what is broken, or where nothing was found.
 * @throws {TypeError} When the explicit classpath is empty.
 */
export function locateZooKeeper(
  classpath: string | string[] | undefined,
  host: Host,
  debianJar: string = DEBIAN_JAR,
  cache: string | undefined = cacheDir(host),
): ZooKeeperLocation {
  if (classpath !== undefined) {
    const entries = typeof classpath === "string"
      ? classpath.split(":").filter((entry) => entry !== "")
      : classpath;
    if (entries.length === 0) {
      throw new TypeError(
        "Cannot start ZooKeeper: the classpath option is empty",
      );
    }
    for (const entry of entries) {
      if (!entry.includes("*") && !host.exists(entry)) {
        return { broken: `classpath entry "${entry}" does not exist` };
      }
    }
    return { found: { entries, source: "option" } };
  }
  const home = host.env("ZOOKEEPER_HOME");
  if (home) {
    const entries = releaseJars(host, home);
    if (entries.length === 0) {
      return {
        broken:
          `ZOOKEEPER_HOME is "${home}" but neither it nor its lib/ directory holds any jar`,
      };
    }
    return { found: { entries, source: "ZOOKEEPER_HOME", home } };
  }
  if (host.exists(debianJar)) {
    // Debian's jar pulls its dependencies through its manifest; slf4j would
    // default to no logging, so add the simple binding (logs to stderr, which
    // we capture) when it is installed.
    const entries = [debianJar];
    if (host.exists(DEBIAN_LOG_BINDING)) entries.push(DEBIAN_LOG_BINDING);
    return { found: { entries, source: "debian" } };
  }
  const looked = [`ZOOKEEPER_HOME is unset`, `no ${debianJar}`];
  if (host.os === "darwin") {
    for (const prefix of HOMEBREW_PREFIXES) {
      const dir = `${prefix}/opt/zookeeper/libexec`;
      const entries = releaseJars(host, dir);
      if (entries.length > 0) {
        return { found: { entries, source: "homebrew", home: prefix } };
      }
    }
    looked.push("no Homebrew zookeeper");
  }
  if (cache !== undefined) {
    const releases = host.dirs(cache)
      .filter((name) => /^(apache-)?zookeeper-/.test(name))
      .reverse();
    for (const release of releases) {
      const entries = releaseJars(host, `${cache}/${release}`);
      if (entries.length > 0) {
        return {
          found: { entries, source: "cache", home: `${cache}/${release}` },
        };
      }
    }
    looked.push(`no unpacked release in ${cache}`);
  }
  return { missing: looked.join(", ") };
}
