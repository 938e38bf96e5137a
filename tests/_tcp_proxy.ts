/**
 * A loopback TCP proxy a test can cut (connections reset), silence (a
 * partition: bytes dropped, connections left open) and restore, to take one
 * client's connection to ZooKeeper away while everything else keeps running.
 *
 * @module
 */

/** Forwards `127.0.0.1:<port>` to a target until cut or disposed. */
export class TcpProxy implements AsyncDisposable {
  #listener: Deno.TcpListener;
  #target: { hostname: string; port: number };
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();
  #cut = false;
  #silent = false;
  #accepting: Promise<void>;

  /** Starts listening on a free loopback port. */
  constructor(target: { hostname: string; port: number }) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** The port clients connect to. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Closes every open connection; new ones are closed at once until restored. */
  cut(): void {
    this.#cut = true;
    for (const conn of this.#conns) close(conn);
  }

  /** Forwards new connections again, and the bytes of open ones. */
  restore(): void {
    this.#cut = false;
    this.#silent = false;
  }

  /**
   * A silent partition: connections stay open (and new ones are accepted)
   * but every byte is dropped, in both directions, until restored.
   */
  silence(): void {
    this.#silent = true;
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        if (this.#cut) {
          close(client);
          continue;
        }
        this.#track(this.#forward(client));
      }
    } catch {
      // The listener was closed.
    }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #forward(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn | undefined;
    try {
      server = await Deno.connect(this.#target);
      this.#conns.add(server);
      const silent = () => this.#silent;
      await Promise.race([
        pump(client, server, silent),
        pump(server, client, silent),
      ]);
    } catch {
      // Refused or cut.
    } finally {
      close(client);
      this.#conns.delete(client);
      if (server !== undefined) {
        close(server);
        this.#conns.delete(server);
      }
    }
  }

  /** Stops listening and closes every connection. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) close(conn);
    await Promise.allSettled([...this.#tasks]);
  }
}

async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  silent: () => boolean,
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) return;
      if (silent()) continue; // dropped, as by a partition
      let written = 0;
      while (written < n) {
        written += await to.write(buffer.subarray(written, n));
      }
    }
  } catch {
    // Closed on either side.
  }
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
