/**
 * An in-memory byte stream for unit tests that give a client a socket
 * without one: the client's connection (`tests/client/_scripted_server.ts`)
 * and the ZooKeeper wire client (`tests/zookeeper/_memory_connector.ts`,
 * through {@linkcode memoryConnection}).
 *
 * @module
 */

/**
 * One direction of an in-memory byte stream: what one end writes, waiting for
 * the other end's reads.
 */
export class Pipe {
  #chunks: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #idle: (() => void)[] = [];
  ended = false;

  /** Resolves once the reader consumed everything and waits for more. */
  idle(): Promise<void> {
    if (this.#wake !== undefined && this.#chunks.length === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Queues a copy of `bytes` for the reader (nothing once ended). */
  push(bytes: Uint8Array): void {
    if (this.ended) return;
    this.#chunks.push(bytes.slice());
    this.#notify();
  }

  /** Ends the stream: reads return what is queued, then `null`. */
  end(): void {
    this.ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Reads into `p` as a socket does: what is queued, at most its size. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.ended) return null;
      const waiting = new Promise<void>((resolve) => this.#wake = resolve);
      for (const resolve of this.#idle.splice(0)) resolve();
      await waiting;
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }
}

/**
 * One end of a memory pipe. Closing it ends both directions and fails its
 * held writes, as closing a socket cancels its pending writes.
 */
export class PipeEnd implements Pick<Deno.Conn, "read" | "write" | "close"> {
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

/** Two connected ends of a memory connection: what one writes, the other reads. */
export function memoryConnection(): [PipeEnd, PipeEnd] {
  const there = new Pipe();
  const back = new Pipe();
  return [new PipeEnd(back, there), new PipeEnd(there, back)];
}
