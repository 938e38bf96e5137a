/**
 * Helpers for the ZooKeeper discovery tests: polling, and the example server
 * as a separate process (so that a test can SIGKILL it).
 *
 * @module
 */
import { ServerProcess } from "../src/testing/server_process.ts";
import { waitFor, within } from "./_wait.ts";

export { waitFor };

/** The example server running in its own process. */
export interface RegisteredServer extends AsyncDisposable {
  /** The port it listens on. */
  readonly port: number;
  /** Sends a signal and waits for the process to end. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Starts `examples/server.ts 127.0.0.1 0` (the demo's {@linkcode ServerProcess})
 * registered under `service` (with extra `args` such as `["--delay", "100"]`),
 * and resolves once it registered (or fails after 30 s, naming the wait).
 */
export async function startServerProcess(
  zookeeper: string,
  service: string,
  args: string[] = [],
): Promise<RegisteredServer> {
  const server = new ServerProcess({ name: service, zookeeper, service, args });
  try {
    await within(
      server.registered(),
      30_000,
      `the ${service} server to register`,
    );
  } catch (error) {
    await server.stop("SIGKILL");
    throw error;
  }
  const address = await within(
    server.listening(),
    30_000,
    `the ${service} server to listen`,
  );
  return {
    port: Number(address.slice(address.lastIndexOf(":") + 1)),
    stop: (signal = "SIGTERM") => server.stop(signal),
    async [Symbol.asyncDispose]() {
      await server.stop("SIGKILL");
    },
  };
}
