/**
 * Internal: the count of a server's async handler calls not yet settled,
 * across its connections (what a graceful close waits for).
 *
 * @module
 */

/**
 * The async handler calls of a server not yet settled: a count and the
 * waiters for zero, not a set of their promises (a `Set` inserted into and
 * deleted from per call is rehashed, and its dropped stores kept finished
 * calls alive into the old generation, as a `Map` did: src/_id_table.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunningHandlers } from "./_running.ts";
 * const running = new RunningHandlers();
 * running.start();
 * let idle = false;
 * const waiting = running.idle().then(() => idle = true);
 * running.end();
 * await waiting;
 * assert.equal(idle, true);
 * assert.equal(running.size, 0);
 * ```
 */
export class RunningHandlers {
  #count = 0;
  #waiters: (() => void)[] = [];

  /** Handler calls running. */
  get size(): number {
    return this.#count;
  }

  /** A handler call started. */
  start(): void {
    this.#count++;
  }

  /** A handler call settled. */
  end(): void {
    if (--this.#count > 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Resolves when no handler call runs.
   *
   * @returns A promise.
   */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
