/**
 * Internal: one example server (`examples/server.ts`) run as its own
 * `deno run` process, and the one line reader of child-process output; used
 * by the demo and the tests.
 *
 * @module
 */
import { denoExecutable, lines, stopChild } from "./child_process.ts";

/** How to start a {@linkcode ServerProcess}. */
export interface ServerProcessOptions {
  /** Name shown in the demo, e.g. `server-1`. */
  name: string;
  /** ZooKeeper connection string. */
  zookeeper: string;
  /** Service to register in. */
  service: string;
  /**
   * Address to listen on.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Port to listen on; 0 picks one.
   *
   * @default {0}
   */
  port?: number;
  /**
   * Hosts the server may reach (its `--allow-net`).
   *
   * @default {["127.0.0.1"]}
   */
  allowNet?: string[];
  /** Extra arguments for `examples/server.ts`, e.g. `["--delay", "100"]`. */
  args?: string[];
  /**
   * Extra `deno run` flags, e.g. `["--allow-sys=networkInterfaces"]` for a
   * server bound to `0.0.0.0`.
   *
   * @default {[]}
   */
  permissions?: string[];
  /**
   * Command the `deno run` command line is appended to, e.g. `["ip",
   * "netns", "exec", "ns1"]` to run the server in a network namespace.
   * @default {[]}
   */
  commandPrefix?: string[];
  /** Called with each line the server writes on stderr. */
  onStderr?: (line: string) => void;
}

const SERVER = new URL("../../examples/server.ts", import.meta.url);
const ROOT = new URL("../../", import.meta.url);

/**
 * A running `deno run --allow-net=127.0.0.1 examples/server.ts 127.0.0.1 PORT
 * --zookeeper ... --service ...` child process.
 */
export class ServerProcess {
  /** Name shown in the demo. */
  readonly name: string;
  /** When it was spawned (`performance.now()`). */
  readonly spawnedAt: number;
  /** When it said it registered (`performance.now()`), if it did. */
  registeredAt: number | undefined;
  /** `host:port` once listening. */
  address: string | undefined;
  #child: Deno.ChildProcess;
  #listening = Promise.withResolvers<string>();
  #registered = Promise.withResolvers<void>();
  #closedGracefully = false;
  #output: Promise<void>;

  /**
   * Spawns the server.
   *
   * @param options What to run.
   */
  constructor(options: ServerProcessOptions) {
    this.name = options.name;
    this.spawnedAt = performance.now();
    const prefix = options.commandPrefix ?? [];
    const [command, ...prefixArgs] = prefix.length === 0
      ? [denoExecutable()]
      : [...prefix, Deno.execPath()];
    const child = new Deno.Command(command!, {
      args: [
        ...prefixArgs,
        "run",
        `--allow-net=${(options.allowNet ?? ["127.0.0.1"]).join(",")}`,
        ...(options.permissions ?? []),
        SERVER.href,
        options.hostname ?? "127.0.0.1",
        String(options.port ?? 0),
        "--zookeeper",
        options.zookeeper,
        "--service",
        options.service,
        ...(options.args ?? []),
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const lastErrors: string[] = [];
    const fail = (why: string) => {
      const error = new Error(
        `Cannot start ${this.name}: ${why}${
          lastErrors.length > 0 ? `:\n${lastErrors.join("\n")}` : ""
        }`,
      );
      this.#listening.reject(error);
      this.#registered.reject(error);
    };
    this.#listening.promise.catch(() => {});
    this.#registered.promise.catch(() => {});
    const stdout = (async () => {
      for await (const line of lines(child.stdout)) {
        const listening = /^listening on (\S+)/.exec(line);
        if (listening) {
          this.address = listening[1] as string;
          this.#listening.resolve(this.address);
        } else if (line.startsWith("registered")) {
          this.registeredAt = performance.now();
          this.#registered.resolve();
        } else if (line === "closed") {
          this.#closedGracefully = true;
        }
      }
    })();
    const stderr = (async () => {
      for await (const line of lines(child.stderr)) {
        lastErrors.push(line);
        if (lastErrors.length > 10) lastErrors.shift();
        options.onStderr?.(line);
      }
    })();
    this.#output = Promise.all([stdout, stderr]).then(() => {});
    this.#output.then(() => child.status).then((status) =>
      fail(`exited with code ${status.code} before registering`)
    );
  }

  /** The child's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Whether it printed `closed` (a graceful shutdown). */
  get closedGracefully(): boolean {
    return this.#closedGracefully;
  }

  /** Resolves with `host:port` once the server listens. */
  listening(): Promise<string> {
    return this.#listening.promise;
  }

  /** Resolves once the server registered in ZooKeeper. */
  registered(): Promise<void> {
    return this.#registered.promise;
  }

  /**
   * Sends a signal and waits for the process to exit (SIGKILL after
   * `graceMs` if it is still running).
   *
   * @param signal The signal to send.
   * @param graceMs How long to wait before SIGKILL.
   * @returns The exit status.
   */
  async stop(
    signal: Deno.Signal = "SIGTERM",
    graceMs = 5000,
  ): Promise<Deno.CommandStatus> {
    const status = await stopChild(this.#child, signal, graceMs);
    await this.#output;
    return status;
  }
}
