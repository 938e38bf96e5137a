/**
 * The provisioning decision, as a pure function of a {@linkcode Host}: the
 * jars and Java are found, or zkrpc will install Debian's package, or it
 * stops and says why and which commands install them on this platform.
 *
 * @module
 */

import {
  cacheDir,
  DEBIAN_JAR,
  locateZooKeeper,
  type ZooKeeperClasspath,
} from "./classpath.ts";
import type { Host } from "./host.ts";
import { locateJava } from "./java.ts";

/** The opt-out: set (to anything but `""` or `0`) and nothing is installed. */
export const NO_INSTALL_ENV = "ZKRPC_NO_INSTALL";
/** The Apache release the manual instructions download. */
export const ZOOKEEPER_RELEASE = "3.8.4";

/** Options for {@linkcode planProvisioning}. */
export interface PlanOptions {
  /** An explicit classpath; wins over every other source. */
  classpath?: string | string[];
  /** An explicit `java` executable. */
  java?: string;
  /** `false` never installs (like `ZKRPC_NO_INSTALL=1`). */
  install?: boolean;
  /** Where Debian's jar is looked for. */
  debianJar?: string;
  /** zkrpc's cache directory (`$XDG_CACHE_HOME/zkrpc`, `~/.cache/zkrpc`). */
  cacheDir?: string;
}

/** The platform families the instructions know. */
export type Platform = "debian" | "fedora" | "macos" | "other";

/** One command to run, as its argument vector. */
export type Argv = [string, ...string[]];

/** What {@linkcode planProvisioning} decided. */
export type ProvisioningPlan =
  | {
    action: "found";
    /** The ZooKeeper jars. */
    classpath: ZooKeeperClasspath;
    /** The `java` executable. */
    java: string;
  }
  | {
    action: "install";
    /** What is missing. */
    why: string;
    /** Debian packages to install. */
    packages: string[];
    /** The commands, in order (`apt-get update` first). */
    steps: Argv[];
    /** The same for humans, on one line. */
    command: string;
  }
  | {
    action: "stop";
    /** What is missing or wrong, and why zkrpc does not install it. */
    why: string;
    /** Shell lines that install what is missing on this platform. */
    commands: string[];
    /** The platform the commands are for, for humans. */
    platform: string;
  };

/**
 * The platform family, from `Deno.build.os` and `/etc/os-release`'s `ID` and
 * `ID_LIKE`.
 *
 * @param host The machine.
 * @returns The family.
 */
export function platformOf(host: Host): Platform {
  if (host.os === "darwin") return "macos";
  if (host.os !== "linux") return "other";
  const release = host.osRelease() ?? "";
  const ids = [...release.matchAll(/^(?:ID|ID_LIKE)=["']?([^"'\n]*)/gm)]
    .flatMap((match) => match[1]!.split(/\s+/));
  if (ids.some((id) => id === "debian" || id === "ubuntu")) return "debian";
  if (ids.some((id) => ["fedora", "rhel", "centos"].includes(id))) {
    return "fedora";
  }
  return "other";
}

const PLATFORM_NAMES: Record<Platform, string> = {
  debian: "Debian/Ubuntu",
  fedora: "Fedora",
  macos: "macOS",
  other: "this system",
};

function releaseCommands(cache: string | undefined): string[] {
  const name = `apache-zookeeper-${ZOOKEEPER_RELEASE}-bin`;
  const url =
    `https://archive.apache.org/dist/zookeeper/zookeeper-${ZOOKEEPER_RELEASE}/${name}.tar.gz`;
  const home = `export ZOOKEEPER_HOME=/path/to/${name}`;
  return cache === undefined
    ? [`curl -fsSL ${url} | tar -xz   # then ${home}`]
    : [
      `mkdir -p ${cache} && curl -fsSL ${url} | tar -xz -C ${cache}`,
      `# (found there without settings; or unpack it anywhere and ${home})`,
    ];
}

/**
 * The commands that install what is missing on this platform, for humans.
 *
 * @param host The machine.
 * @param missing What is missing.
 * @param cache zkrpc's cache directory, where a release is unpacked.
 * @returns Shell lines.
 */
export function installCommands(
  host: Host,
  missing: { zookeeper: boolean; java: boolean },
  cache: string | undefined = cacheDir(host),
): string[] {
  switch (platformOf(host)) {
    case "debian": {
      const sudo = host.uid() === 0 ? "" : "sudo ";
      const packages = debianPackages(missing).join(" ");
      return [
        `${sudo}apt-get update && ${sudo}apt-get install -y ${packages}`,
      ];
    }
    case "fedora":
      return [
        ...(missing.java
          ? ["sudo dnf install -y java-17-openjdk-headless"]
          : []),
        ...(missing.zookeeper ? releaseCommands(cache) : []),
      ];
    case "macos": {
      const brew = host.which("brew") === undefined
        ? ["# install Homebrew first: https://brew.sh"]
        : [];
      return [
        ...brew,
        missing.zookeeper ? "brew install zookeeper" : "brew install openjdk",
      ];
    }
    case "other":
      return [
        ...(missing.java
          ? ["# install a Java 17 runtime with your package manager"]
          : []),
        ...(missing.zookeeper ? releaseCommands(cache) : []),
      ];
  }
}

/** Debian's `zookeeper` brings the jars and a Java runtime. */
function debianPackages(missing: { zookeeper: boolean }): string[] {
  return missing.zookeeper ? ["zookeeper"] : ["default-jre-headless"];
}

/** Why zkrpc cannot install on this machine, or `undefined` when it can. */
function cannotInstall(
  host: Host,
  options: PlanOptions,
): string | undefined {
  if (options.install === false) {
    return "installing is turned off (install: false)";
  }
  if (!host.canReadEnv(NO_INSTALL_ENV)) {
    return `${NO_INSTALL_ENV} cannot be read (grant --allow-env=${NO_INSTALL_ENV})`;
  }
  const optOut = host.env(NO_INSTALL_ENV);
  if (optOut !== undefined && optOut !== "" && optOut !== "0") {
    return `${NO_INSTALL_ENV} is set`;
  }
  const platform = platformOf(host);
  if (platform !== "debian") {
    return `zkrpc installs packages itself only on Debian/Ubuntu, not on ${
      PLATFORM_NAMES[platform]
    }`;
  }
  const aptGet = host.which("apt-get");
  if (aptGet === undefined) return "apt-get is not on PATH";
  const uid = host.uid();
  if (uid === 0) {
    return host.canRun(aptGet)
      ? undefined
      : `this process may not run ${aptGet} (grant --allow-run=${aptGet})`;
  }
  const notRoot = uid === null
    ? "it cannot tell whether it runs as root (grant --allow-sys=uid)"
    : "it does not run as root";
  const sudo = host.which("sudo");
  if (sudo === undefined) return `${notRoot} and sudo is not installed`;
  if (!host.canRun(sudo)) {
    return `${notRoot} and may not run ${sudo} (grant --allow-run=${sudo})`;
  }
  if (!host.sudoWithoutPassword()) {
    return `${notRoot} and sudo asks for a password`;
  }
  return undefined;
}

function installSteps(host: Host, packages: string[]): Argv[] {
  const aptGet = host.which("apt-get")!;
  const prefix: string[] = host.uid() === 0
    ? []
    : [host.which("sudo")!, "-n", "env", "DEBIAN_FRONTEND=noninteractive"];
  const run = (...args: string[]): Argv => [...prefix, aptGet, ...args] as Argv;
  return [
    run("update"),
    run("install", "-y", "-o", "DPkg::Lock::Timeout=300", ...packages),
  ];
}

/**
 * Decides how to get a runnable ZooKeeper: found (jars and Java), install
 * Debian's package (when the machine is Debian/Ubuntu with `apt-get`, this
 * process runs as root or `sudo -n` works, and nothing opted out), or stop
 * with why and the commands for this platform. Reads the machine only
 * through `host`; it runs `sudo -n true` (via the host) only when
 * everything else allows installing.
 *
 * @param host The machine.
 * @param options Explicit classpath and Java, the install switch.
 * @returns The decision.
 * @throws {TypeError} When the explicit classpath is empty.
 */
export function planProvisioning(
  host: Host,
  options: PlanOptions = {},
): ProvisioningPlan {
  const cache = options.cacheDir ?? cacheDir(host);
  const zookeeper = locateZooKeeper(
    options.classpath,
    host,
    options.debianJar ?? DEBIAN_JAR,
    cache,
  );
  if ("broken" in zookeeper) {
    const fix = "an unpacked ZooKeeper release or unset it";
    return broken(host, cache, zookeeper.broken, fix, {
      zookeeper: true,
      java: false,
    });
  }
  const found = "found" in zookeeper ? zookeeper.found : undefined;
  const java = locateJava(options.java, host, found);
  if ("broken" in java) {
    return broken(host, cache, java.broken, "a Java runtime or unset it", {
      zookeeper: false,
      java: true,
    });
  }
  if (found !== undefined && "found" in java) {
    return { action: "found", classpath: found, java: java.found };
  }
  const missing = { zookeeper: found === undefined, java: "missing" in java };
  const what = [
    ...("missing" in zookeeper
      ? [`no ZooKeeper jars found (${zookeeper.missing})`]
      : []),
    ...("missing" in java ? [`no Java runtime (${java.missing})`] : []),
  ].join(" and ");
  const reason = cannotInstall(host, options);
  if (reason !== undefined) {
    return {
      action: "stop",
      why: `${what}; not installing because ${reason}`,
      commands: installCommands(host, missing, cache),
      platform: PLATFORM_NAMES[platformOf(host)],
    };
  }
  const packages = debianPackages(missing);
  const steps = installSteps(host, packages);
  return {
    action: "install",
    why: what,
    packages,
    steps,
    command: installCommands(host, missing, cache)[0]!,
  };
}

function broken(
  host: Host,
  cache: string | undefined,
  problem: string,
  fix: string,
  missing: { zookeeper: boolean; java: boolean },
): ProvisioningPlan {
  return {
    action: "stop",
    why: `${problem}; point it at ${fix}`,
    commands: installCommands(host, missing, cache),
    platform: PLATFORM_NAMES[platformOf(host)],
  };
}
