/**
 * One ZooKeeper JVM: spawn it, capture its output into a log file, wait until
 * it serves, stop or kill it, and always reap it.
 *
 * @module
 */

import { settleWithin } from "../_async.ts";
import { onUnload } from "./cleanup.ts";
import { fourLetterWord } from "./four_letter_word.ts";
import { isPortFree } from "./free_port.ts";

/** How to run one ZooKeeper JVM. */
export interface ZooKeeperProcessOptions {
  /** The `java` executable. */
  java: string;
  /** Classpath entries for the ZooKeeper jars. */
  classpath: string[];
  /** Directory holding `zoo.cfg` and logging configuration. */
  confDir: string;
  /** File that receives the JVM's stdout and stderr (appended). */
  logFile: string;
  /** Address the client port is bound to (polled from this process). */
  hostname: string;
  /** Client port. */
  port: number;
  /** Every port this process binds (client, quorum, election), checked before start. */
  ports: number[];
  /** Extra JVM options. */
  jvmOptions: string[];
  /**
   * Command the `java` command line is appended to, e.g. `["ip", "netns",
   * "exec", "ns1"]` to run the JVM in a network namespace; empty runs `java`
   * directly. With a prefix the ports are not checked from this process (the
   * JVM may live in another network stack); a JVM that cannot bind exits and
   * {@linkcode ZooKeeperProcess.waitFor} reports it.
   */
  commandPrefix: string[];
}

const DEFAULT_JVM_OPTIONS = [
  "-Xmx256m",
  "-XX:+UseSerialGC",
  "-XX:TieredStopAtLevel=1",
  "-XX:-UsePerfData",
  "-Djava.net.preferIPv4Stack=true",
  "-Dzookeeper.admin.enableServer=false",
  "-Dzookeeper.jmx.log4j.disable=true",
  "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
  "-Dorg.slf4j.simpleLogger.showDateTime=true",
];

const TAIL_CHARS = 64 * 1024;
const STOP_GRACE_MS = 10_000;

/** Thrown when ZooKeeper cannot bind one of its ports. */
export class PortInUseError extends Error {
  /** The port that was taken. */
  port: number | undefined;
  /**
   * @param message What failed.
   * @param port The port, when known.
   */
  constructor(message: string, port?: number) {
    super(message);
    this.name = "PortInUseError";
    this.port = port;
  }
}

/** A ZooKeeper JVM that can be started, stopped, killed and started again. */
export class ZooKeeperProcess {
  #options: ZooKeeperProcessOptions;
  #child: Deno.ChildProcess | undefined;
  #status: Promise<Deno.CommandStatus> | undefined;
  #exited = true;
  #pumps: Promise<void> | undefined;
  #tail = "";
  #unregister: (() => void) | undefined;

  /** @param options How to run the JVM. */
  constructor(options: ZooKeeperProcessOptions) {
    this.#options = options;
  }

  /** Whether the JVM is running. */
  get running(): boolean {
    return this.#child !== undefined && !this.#exited;
  }

  /** The JVM's process id while it runs. */
  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  /**
   * The last lines of the log.
   *
   * @param lines How many lines.
   * @returns The tail, possibly empty.
   */
  logTail(lines = 40): string {
    return this.#tail.trimEnd().split("\n").slice(-lines).join("\n");
  }

  /**
   * Spawns the JVM. Fails at once when `java` is missing, and when a port is
   * taken if `checkPorts` is set. The check binds each port for a moment, so
   * it is skipped on restarts: a client reconnecting at that moment would be
   * accepted by the probe and left hanging. A JVM that cannot bind exits and
   * {@linkcode ZooKeeperProcess.waitFor} reports it.
   *
   * @param checkPorts Whether to check the ports first.
   */
  async spawn(checkPorts = true): Promise<void> {
    if (this.#child !== undefined) {
      throw new Error("Cannot start ZooKeeper: the process is already running");
    }
    const { hostname, commandPrefix } = this.#options;
    const check = checkPorts && commandPrefix.length === 0;
    for (const port of check ? this.#options.ports : []) {
      if (!isPortFree(port, hostname)) {
        throw new PortInUseError(
          `Cannot start ZooKeeper: port ${port} on ${hostname} is already in use`,
          port,
        );
      }
    }
    const [command, ...prefixArgs] = [...commandPrefix, this.#options.java];
    const args = [
      ...prefixArgs,
      ...DEFAULT_JVM_OPTIONS,
      ...this.#options.jvmOptions,
      "-cp",
      [this.#options.confDir, ...this.#options.classpath].join(":"),
      "org.apache.zookeeper.server.quorum.QuorumPeerMain",
      `${this.#options.confDir}/zoo.cfg`,
    ];
    const log = await Deno.open(this.#options.logFile, {
      append: true,
      create: true,
    });
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command!, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      log.close();
      if (error instanceof Deno.errors.NotFound && commandPrefix.length === 0) {
        throw new Error(
          `Cannot start ZooKeeper: "${this.#options.java}" not found; install a Java runtime (apt-get install default-jre-headless) or set JAVA_HOME`,
          { cause: error },
        );
      }
      throw new Error(
        `Cannot start ZooKeeper: cannot run "${command}": ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
    this.#child = child;
    this.#exited = false;
    this.#tail = "";
    const pid = child.pid;
    this.#unregister = onUnload(() => {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    });
    this.#status = child.status.then((status) => {
      this.#exited = true;
      this.#unregister?.();
      this.#unregister = undefined;
      return status;
    });
    this.#pumps = Promise.all([
      this.#pump(child.stdout, log),
      this.#pump(child.stderr, log),
    ]).then(() => log.close(), () => log.close());
  }

  async #pump(
    stream: ReadableStream<Uint8Array>,
    log: Deno.FsFile,
  ): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this.#tail = (this.#tail + decoder.decode(chunk, { stream: true }))
        .slice(-TAIL_CHARS);
      let written = 0;
      while (written < chunk.length) {
        written += await log.write(chunk.subarray(written));
      }
    }
  }

  /**
   * Polls the four-letter word `word` until `accept` returns true for the
   * answer. Rejects when the JVM exits first or the timeout passes; the error
   * carries the tail of the log.
   *
   * @param word A four-letter word such as `ruok` or `srvr`.
   * @param accept Decides whether an answer means "serving".
   * @param timeout Milliseconds to wait.
   */
  async waitFor(
    word: string,
    accept: (answer: string) => boolean,
    timeout: number,
  ): Promise<void> {
    const deadline = Date.now() + timeout;
    const { hostname, port } = this.#options;
    let lastAnswer = "";
    while (true) {
      if (!this.running) {
        const status = await this.#status;
        await this.#pumps;
        const tail = this.logTail();
        const reason = status?.signal
          ? `signal ${status.signal}`
          : `code ${status?.code}`;
        const portInUse = /Address already in use|BindException/.test(
          this.#tail,
        );
        const hint = portInUse
          ? " (a port is already in use)"
          : /Could not find or load main class/.test(this.#tail)
          ? " (the classpath holds no ZooKeeper server classes)"
          : "";
        const message =
          `Cannot start ZooKeeper on ${hostname}:${port}: the JVM exited with ${reason}${hint}\n--- last lines of ZooKeeper's log ---\n${tail}`;
        if (portInUse) throw new PortInUseError(message);
        throw new Error(message);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const tail = this.logTail();
        throw new Error(
          `Cannot start ZooKeeper on ${hostname}:${port}: not serving after ${timeout} ms${
            lastAnswer ? ` (last "${word}" answer: ${lastAnswer.trim()})` : ""
          }\n--- last lines of ZooKeeper's log ---\n${tail}`,
        );
      }
      try {
        lastAnswer = await fourLetterWord({ hostname, port }, word, {
          timeout: Math.min(1000, remaining),
        });
        if (accept(lastAnswer)) return;
      } catch {
        // not listening yet
      }
      await this.#sleepOrExit(
        Math.min(100, Math.max(0, deadline - Date.now())),
      );
    }
  }

  async #sleepOrExit(ms: number): Promise<void> {
    if (this.#status === undefined) return;
    await settleWithin(this.#status, ms);
  }

  /** Stops the JVM with SIGTERM (SIGKILL after a grace period) and reaps it. */
  async stop(): Promise<void> {
    await this.#terminate("SIGTERM");
  }

  /** Kills the JVM with SIGKILL, as a crash would, and reaps it. */
  async kill(): Promise<void> {
    await this.#terminate("SIGKILL");
  }

  async #terminate(signal: Deno.Signal): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    if (!this.#exited) {
      try {
        child.kill(signal);
      } catch {
        // exited meanwhile
      }
      if (signal !== "SIGKILL") {
        const graceful = await settleWithin(this.#status!, STOP_GRACE_MS);
        if (!graceful) {
          try {
            child.kill("SIGKILL");
          } catch {
            // exited meanwhile
          }
        }
      }
    }
    await this.#status;
    await this.#pumps;
    this.#child = undefined;
    this.#status = undefined;
    this.#pumps = undefined;
  }
}
