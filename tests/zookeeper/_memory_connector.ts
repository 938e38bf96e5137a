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
import { Pipe } from "../_memory_pipe.ts";

/**
 * One end of a memory pipe. Closing it ends both directions and fails its
 * held writes, as closing a socket cancels its pending writes.
 */
export class PipeEnd implements WireConn {
  readonly #in: Pipe;
  readonly #out: Pipe;
  #closed = false;
  readonly #closing = Promise.withResolvers<void>();
  /** Calls of `write`, whatever became of them. */
  writes = 0;
  /** The bytes of every write that went through, in order. */
  readonly written: Uint8Array[] = [];
  /** While set, writes wait for it (or for the close). */
  writeGate: Promise<void> | undefined;
  /** While set, writes fail with it. */
  writeError: Error | undefined;
  /**
   * While set, a read that got its bytes returns them only once it settles:
   * a read completed whose caller runs late.
   */
  readHold: Promise<void> | undefined;
  /** Reads that got their bytes and wait on `readHold`. */
  heldReads = 0;

  constructor(input: Pipe, output: Pipe) {
    this.#in = input;
    this.#out = output;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async read(into: Uint8Array): Promise<number | null> {
    if (this.#closed) throw new Deno.errors.BadResource("closed");
    const n = await this.#in.read(into);
    if (this.readHold !== undefined) {
      this.heldReads++;
      await this.readHold;
    }
    return n;
  }

  async write(bytes: Uint8Array): Promise<number> {
    this.writes++;
    if (this.writeGate !== undefined) {
      await Promise.race([this.writeGate, this.#closing.promise]);
    }
    if (this.#closed) throw new Deno.errors.BadResource("closed");
    if (this.writeError !== undefined) throw this.writeError;
    this.written.push(bytes.slice());
    this.#out.push(bytes);
    return bytes.length;
  }

  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("already closed");
    this.#closed = true;
    this.#closing.resolve();
    this.#in.end();
    this.#out.end();
  }
}

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
        const toServer = new Pipe();
        const toClient = new Pipe();
        const client = new PipeEnd(toClient, toServer);
        const server = new ScriptedConnection(new PipeEnd(toServer, toClient));
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
