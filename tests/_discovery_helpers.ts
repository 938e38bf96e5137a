/**
 * Helpers for the ZooKeeper discovery tests: polling, and the example server
 * as a separate process (so that a test can SIGKILL it).
 *
 * @module
 */
import { delay } from "./_core_helpers.ts";

/** Polls `condition` every 20 ms until it holds; throws after `timeout` ms. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeout = 5000,
): Promise<void> {
  const deadline = performance.now() + timeout;
  while (!(await condition())) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    }
    await delay(20);
  }
}

/** The example server running in its own process. */
export interface ServerProcess extends AsyncDisposable {
  /** The port it listens on. */
  readonly port: number;
  /** Everything it printed so far, a line an entry. */
  readonly lines: string[];
  /** Sends a signal and waits for the process to end. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Starts `examples/server.ts 127.0.0.1 0` registered under `service`, and
 * resolves once it printed that it registered.
 */
export async function startServerProcess(
  zookeeper: string,
  service: string,
  extraArgs: string[] = [],
): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      new URL("../examples/server.ts", import.meta.url).pathname,
      "127.0.0.1",
      "0",
      "--zookeeper",
      zookeeper,
      "--service",
      service,
      ...extraArgs,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const listening = Promise.withResolvers<number>();
  const readLines = async (stream: ReadableStream<Uint8Array>) => {
    let buffer = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffer += text;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        lines.push(line);
        const port = /^listening on .*:(\d+)$/.exec(line)?.[1];
        if (port) listening.resolve(Number(port));
      }
    }
  };
  const output = Promise.all([
    readLines(child.stdout),
    readLines(child.stderr),
  ]);
  let port = 0;
  let status: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    if (status === undefined) {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
      status = output.then(() => child.status);
    }
    return status;
  };
  const ended = child.status.then((s) => {
    listening.reject(
      new Error(`Server exited (${s.code}) early:\n${lines.join("\n")}`),
    );
  });
  try {
    port = await listening.promise;
    await waitFor(
      () => lines.some((line) => line.startsWith("registered")),
      "the server to register",
      10_000,
    );
  } catch (error) {
    await stop("SIGKILL");
    await ended;
    throw error;
  }
  return {
    port,
    lines,
    stop,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}
