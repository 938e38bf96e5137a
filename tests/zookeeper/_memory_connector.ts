/**
 * Connections in memory for the wire client's unit tests, given to it as its
 * `connect` option: each connect waits until the test accepts or refuses it,
 * and the client's end of an accepted one can hold or fail its writes and
 * hold a read that got its bytes. So a test can complete a connect, a write
 * or a read after the attempt that replaced it, which a socket on loopback
 * does not let it order. The server's
 * end is a {@linkcode ScriptedConnection}, as with the scripted server.
 *
 * @module
 */
import type { Connector, WireConn } from "../../src/zookeeper/_wire_client.ts";
import { ScriptedConnection } from "./_scripted_zookeeper.ts";
import { memoryConnection, type PipeEnd } from "../_memory_pipe.ts";

/** An attempt the client made, waiting for the test. */
export interface HeldConnect {
  /** Where the client connects. */
  hostname: string;
  port: number;
  /** The attempt's signal: aborted when the client gives up on it. */
  signal: AbortSignal;
  /** Completes the connect; returns both ends. */
  accept(): { client: PipeEnd; server: ScriptedConnection };
  /** Fails the connect with `error`. */
  refuse(error: Error): void;
}

/** A connector whose connects the test completes one by one. */
export class MemoryConnector {
  readonly attempts: HeldConnect[] = [];
  #waiting: ((attempt: HeldConnect) => void)[] = [];
  #taken = 0;
  readonly #servers: ScriptedConnection[] = [];

  /** The `connect` option. */
  readonly connect: Connector = ({ hostname, port, signal }) => {
    const { promise, resolve, reject } = Promise.withResolvers<WireConn>();
    const attempt: HeldConnect = {
      hostname,
      port,
      signal,
      accept: () => {
        const [client, serverEnd] = memoryConnection();
        const server = new ScriptedConnection(serverEnd);
        this.#servers.push(server);
        resolve(client);
        return { client, server };
      },
      refuse: reject,
    };
    this.attempts.push(attempt);
    this.#waiting.shift()?.(attempt);
    return promise;
  };

  /** The next attempt not taken yet, once the client makes it. */
  next(): Promise<HeldConnect> {
    const attempt = this.attempts[this.#taken];
    if (attempt !== undefined) {
      this.#taken++;
      return Promise.resolve(attempt);
    }
    return new Promise((resolve) =>
      this.#waiting.push((made) => {
        this.#taken++;
        resolve(made);
      })
    );
  }

  /** Closes every server end and waits for their readers. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.#servers.map((server) => server.close()));
  }
}
