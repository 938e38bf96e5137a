/**
 * Finds the ZooKeeper jars: an explicit classpath, `ZOOKEEPER_HOME`, or
 * Debian's `/usr/share/java/zookeeper.jar`.
 *
 * @module
 */

const DEBIAN_JAR = "/usr/share/java/zookeeper.jar";
const DEBIAN_LOG_BINDING = "/usr/share/java/slf4j-simple.jar";

/** Where the ZooKeeper classes were found. */
export interface ZooKeeperClasspath {
  /** Classpath entries, in order. */
  entries: string[];
  /** Which rule found them. */
  source: "option" | "ZOOKEEPER_HOME" | "debian";
}

/** Where to look, for tests of this module. */
export interface ClasspathLookup {
  /** Reads an environment variable. */
  env?: (name: string) => string | undefined;
  /** Debian's jar. */
  debianJar?: string;
}

/**
 * Resolves the classpath to run ZooKeeper with.
 *
 * @param classpath An explicit classpath (entries, or one string joined with
 * `:`); wins over everything else.
 * @param lookup Where to look (tests only).
 * @returns The entries and where they came from.
 * @throws {Error} When no ZooKeeper installation is found.
 */
export function findZooKeeperClasspath(
  classpath?: string | string[],
  lookup: ClasspathLookup = {},
): ZooKeeperClasspath {
  const { env = readEnv, debianJar = DEBIAN_JAR } = lookup;
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
      if (!entry.includes("*") && !exists(entry)) {
        throw new Error(
          `Cannot start ZooKeeper: classpath entry "${entry}" does not exist`,
        );
      }
    }
    return { entries, source: "option" };
  }
  const home = env("ZOOKEEPER_HOME");
  if (home !== undefined && home !== "") {
    const entries = [
      ...jarsIn(home).filter((jar) => /\/zookeeper[^/]*\.jar$/.test(jar)),
      ...jarsIn(`${home}/lib`),
    ];
    if (entries.length === 0) {
      throw new Error(
        `Cannot start ZooKeeper: ZOOKEEPER_HOME is "${home}" but neither it nor its lib/ directory holds any jar`,
      );
    }
    return { entries, source: "ZOOKEEPER_HOME" };
  }
  if (exists(debianJar)) {
    // Debian's jar pulls its dependencies through its manifest; slf4j would
    // default to no logging, so add the simple binding (logs to stderr, which
    // we capture) when it is installed.
    const entries = [debianJar];
    if (exists(DEBIAN_LOG_BINDING)) entries.push(DEBIAN_LOG_BINDING);
    return { entries, source: "debian" };
  }
  throw new Error(
    `Cannot start ZooKeeper: no installation found; set ZOOKEEPER_HOME to an unpacked ZooKeeper release, pass the classpath option, or install Debian's package (apt-get install zookeeper) which provides ${debianJar}`,
  );
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    // No --allow-env: behave as if the variable were unset.
    return undefined;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function jarsIn(dir: string): string[] {
  try {
    const jars: string[] = [];
    for (const entry of Deno.readDirSync(dir)) {
      if (!entry.isDirectory && entry.name.endsWith(".jar")) {
        jars.push(`${dir}/${entry.name}`);
      }
    }
    return jars.sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}
