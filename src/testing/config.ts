/**
 * Writes a ZooKeeper configuration directory: `zoo.cfg` plus logging
 * configuration files that send INFO logs to the console (which the launcher
 * captures into a log file).
 *
 * @module
 */

/**
 * Values written into `zoo.cfg`, one `key=value` line each.
 *
 * @example Extra zoo.cfg entries
 * ```ts
 * import type { ZooKeeperConfig } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * const config: ZooKeeperConfig = {
 *   maxClientCnxns: 0,
 *   "4lw.commands.whitelist": "*",
 * };
 * assert.equal(config.maxClientCnxns, 0);
 * ```
 */
export type ZooKeeperConfig = Record<string, string | number | boolean>;

/**
 * How the JVM of a throw-away ZooKeeper runs: the options that
 * `StartZooKeeperOptions` and `StartZooKeeperEnsembleOptions` share (for an
 * ensemble, each applies to every member).
 *
 * @example A fast-ticking JVM with little memory
 * ```ts
 * import type { ZooKeeperJvmOptions } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * const options: ZooKeeperJvmOptions = { tickTime: 200, jvmOptions: ["-Xmx256m"] };
 * assert.equal(options.tickTime, 200);
 * ```
 */
export interface ZooKeeperJvmOptions {
  /**
   * Classpath holding the ZooKeeper jars, as entries or one `:`-joined string.
   * When unset, it is found (or installed) by
   * `provisionZooKeeper()`: `ZOOKEEPER_HOME`, Debian's
   * `/usr/share/java/zookeeper.jar`, Homebrew, zkrpc's cache directory.
   *
   * @default {undefined}
   */
  classpath?: string | string[];
  /**
   * ZooKeeper's `tickTime` in milliseconds. Sessions may last from 2 to 20
   * ticks, so the default allows session timeouts from 1 s to 10 s, which
   * keeps expiry tests fast.
   *
   * @default {500}
   */
  tickTime?: number;
  /**
   * Extra `zoo.cfg` entries; they override the generated ones.
   *
   * @default {no extra entries}
   */
  config?: ZooKeeperConfig;
  /**
   * The `java` executable.
   *
   * @default {"$JAVA_HOME/bin/java, else java on PATH"}
   */
  java?: string;
  /**
   * Extra JVM options, e.g. `["-Xmx512m"]`.
   *
   * @default {[]}
   */
  jvmOptions?: string[];
}

const LOGBACK_XML = `<configuration>
  <appender name="CONSOLE" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{ISO8601} [%thread] %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="CONSOLE"/></root>
</configuration>
`;

const LOG4J_PROPERTIES = `log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [%t] %-5p %c{1} - %m%n
`;

/**
 * The `zoo.cfg` entries every throw-away server gets: the client port bound
 * to one address only (loopback unless told), the four-letter words the
 * launcher polls, no admin server, no connection cap.
 *
 * @param dataDir The server's data directory.
 * @param clientPort Its client port.
 * @param tickTime ZooKeeper's tick in ms.
 * @param host The address the client port is bound to.
 * @returns The entries; spread extra ones after them.
 */
export function baseConfig(
  dataDir: string,
  clientPort: number,
  tickTime: number,
  host = "127.0.0.1",
): ZooKeeperConfig {
  return {
    tickTime,
    dataDir,
    clientPort,
    clientPortAddress: host,
    "4lw.commands.whitelist": "*",
    "admin.enableServer": false,
    maxClientCnxns: 0,
  };
}

/**
 * Writes `zoo.cfg` and logging configuration into `confDir` (which must
 * exist).
 *
 * @param confDir The configuration directory, put first on the classpath.
 * @param config The `zoo.cfg` entries.
 * @returns The path of `zoo.cfg`.
 */
export async function writeZooKeeperConfig(
  confDir: string,
  config: ZooKeeperConfig,
): Promise<string> {
  const lines = Object.entries(config).map(([key, value]) => `${key}=${value}`);
  const path = `${confDir}/zoo.cfg`;
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  await Deno.writeTextFile(`${confDir}/logback.xml`, LOGBACK_XML);
  await Deno.writeTextFile(`${confDir}/log4j.properties`, LOG4J_PROPERTIES);
  return path;
}
