/**
 * An in-memory byte stream for unit tests that give a client a socket
 * without one: the client's connection (`tests/client/_scripted_server.ts`)
 * and the ZooKeeper wire client (`tests/zookeeper/_memory_connector.ts`).
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
