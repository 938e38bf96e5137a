/**
 * A table of calls by request id (a u32) that allocates nothing when calls
 * come and go: open addressing with linear probing, deletion by shifting
 * back the entries after the hole (no tombstones), and growth only when it
 * is half full. Both ends keep their calls in flight in one.
 *
 * Why not a `Map`: a `Map` that is inserted into and deleted from at the
 * call rate is rehashed into a new backing store every few dozen
 * operations. In a client with 64 calls in flight this measured ~230 bytes
 * promoted to the old generation per call (every call's objects survived
 * the next young-generation collection); the same client with this table
 * promotes ~0.1 byte per call (docs/performance.md).
 *
 * @module
 */

const EMPTY_CAPACITY = 16;

/**
 * Values by u32 id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IdTable } from "./_id_table.ts";
 * const calls = new IdTable<string>();
 * calls.set(7, "divide");
 * assert.equal(calls.get(7), "divide");
 * assert.equal(calls.delete(7), true);
 * assert.equal(calls.size, 0);
 * ```
 */
export class IdTable<T> {
  #keys: Uint32Array;
  #values: (T | undefined)[];
  #shift: number;
  #size = 0;

  /**
   * @param capacity Initial slots, rounded up to a power of two; the table
   *   grows past half of it. @default 16
   */
  constructor(capacity = EMPTY_CAPACITY) {
    let bits = 4;
    while (1 << bits < capacity && bits < 30) bits++;
    this.#keys = new Uint32Array(1 << bits);
    this.#values = new Array<T | undefined>(1 << bits).fill(undefined);
    this.#shift = 32 - bits;
  }

  /** Number of ids held. */
  get size(): number {
    return this.#size;
  }

  // Fibonacci hashing: sequential ids spread evenly, and ids a peer picks
  // to collide under a mask do not line up in one run.
  #home(id: number): number {
    return Math.imul(id, 0x9e3779b1) >>> this.#shift;
  }

  #find(id: number): number {
    id >>>= 0;
    const mask = this.#values.length - 1;
    let i = this.#home(id);
    while (this.#values[i] !== undefined) {
      if (this.#keys[i] === id) return i;
      i = (i + 1) & mask;
    }
    return -1;
  }

  /**
   * The value held under `id`.
   *
   * @param id A u32.
   * @returns The value, or undefined.
   */
  get(id: number): T | undefined {
    const i = this.#find(id);
    return i < 0 ? undefined : this.#values[i];
  }

  /**
   * Whether `id` is held.
   *
   * @param id A u32.
   * @returns True when held.
   */
  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  /**
   * Holds `value` under `id`, replacing what was there.
   *
   * @param id A u32.
   * @param value Anything but undefined.
   */
  set(id: number, value: T): void {
    if (value === undefined) {
      throw new TypeError("Cannot hold undefined in an IdTable");
    }
    id >>>= 0;
    if ((this.#size + 1) * 2 > this.#values.length) this.#grow();
    const mask = this.#values.length - 1;
    let i = this.#home(id);
    while (this.#values[i] !== undefined) {
      if (this.#keys[i] === id) {
        this.#values[i] = value;
        return;
      }
      i = (i + 1) & mask;
    }
    this.#keys[i] = id;
    this.#values[i] = value;
    this.#size++;
  }

  /**
   * Forgets `id`.
   *
   * @param id A u32.
   * @returns Whether it was held.
   */
  delete(id: number): boolean {
    let hole = this.#find(id);
    if (hole < 0) return false;
    const mask = this.#values.length - 1;
    // Shift back every entry of the run after the hole that may move there.
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      if (this.#values[j] === undefined) break;
      const home = this.#home(this.#keys[j] ?? 0);
      const stays = hole <= j
        ? hole < home && home <= j
        : hole < home || home <= j;
      if (stays) continue;
      this.#keys[hole] = this.#keys[j] ?? 0;
      this.#values[hole] = this.#values[j];
      hole = j;
    }
    this.#values[hole] = undefined;
    this.#size--;
    return true;
  }

  /**
   * Every value held (a copy: callers may delete while going through it).
   *
   * @returns The values.
   */
  values(): T[] {
    return this.#values.filter((value): value is T => value !== undefined);
  }

  /** Forgets every id. */
  clear(): void {
    this.#values.fill(undefined);
    this.#size = 0;
  }

  #grow(): void {
    const keys = this.#keys;
    const values = this.#values;
    this.#keys = new Uint32Array(keys.length * 2);
    this.#values = new Array<T | undefined>(values.length * 2).fill(undefined);
    this.#shift--;
    this.#size = 0;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value !== undefined) this.set(keys[i] ?? 0, value);
    }
  }
}
