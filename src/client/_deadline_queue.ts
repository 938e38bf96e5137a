/**
 * Internal: many call deadlines behind one timer. Calls mostly share one
 * timeout, so deadlines arrive almost sorted: an append, a rare binary
 * insert, and one timer armed for the earliest deadline replace a
 * `setTimeout`/`clearTimeout` pair per call.
 *
 * @module
 */

import { type LongTimeout, setLongTimeout } from "../_async.ts";
import type { Deadline } from "../_deadline.ts";

/** Completed entries at the head dropped at once (see `complete`). */
const COMPACT_AFTER = 256;

/** An entry of a {@linkcode DeadlineQueue}. */
export interface Deadlined {
  /** When the entry expires (epoch ms; see `Deadline` of `_deadline.ts`). */
  deadline: Deadline;
  /** Set when the entry completed or expired. */
  done: boolean;
}

/**
 * A queue of deadlines with one timer.
 *
 * @example Expire the earliest entry
 * ```ts
 * import { DeadlineQueue } from "./_deadline_queue.ts";
 * import assert from "node:assert/strict";
 *
 * const expired: number[] = [];
 * const queue = new DeadlineQueue<{ deadline: number; done: boolean; n: number }>((e) => expired.push(e.n));
 * const now = Date.now();
 * queue.add({ deadline: now + 5, done: false, n: 1 });
 * const two = { deadline: now + 10, done: false, n: 2 };
 * queue.add(two);
 * queue.complete(two);
 * await new Promise((r) => setTimeout(r, 30));
 * assert.deepEqual(expired, [1]);
 * queue.clear();
 * ```
 */
export class DeadlineQueue<T extends Deadlined> {
  #items: T[] = [];
  #head = 0;
  #done = 0;
  #timer: LongTimeout | undefined;
  #timerAt = Infinity;
  #onExpire: (item: T) => void;

  /**
   * Constructs a new queue.
   *
   * @param onExpire Called (with `done` already set) for each expired entry.
   */
  constructor(onExpire: (item: T) => void) {
    this.#onExpire = onExpire;
  }

  /** Number of entries held, including completed ones not yet dropped. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /**
   * Slots of the backing array, including the emptied slots of completed
   * entries before the head.
   */
  get retained(): number {
    return this.#items.length;
  }

  /** Entries the queue still references (a completed one only behind an open one). */
  get referenced(): number {
    let n = 0;
    for (const item of this.#items) if (item !== undefined) n++;
    return n;
  }

  /**
   * Adds an entry.
   *
   * @param item The entry.
   */
  add(item: T): void {
    const items = this.#items;
    const n = items.length;
    if (n === this.#head || items[n - 1]!.deadline <= item.deadline) {
      items.push(item);
    } else {
      let lo = this.#head;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (items[mid]!.deadline <= item.deadline) lo = mid + 1;
        else hi = mid;
      }
      items.splice(lo, 0, item);
    }
    if (item.deadline < this.#timerAt) this.#arm(item.deadline);
  }

  /**
   * Marks an entry completed so it never expires.
   *
   * @param item The entry.
   */
  complete(item: T): void {
    if (item.done) return;
    item.done = true;
    this.#done++;
    const items = this.#items;
    while (this.#head < items.length && items[this.#head]!.done) {
      // Not kept until the next compaction: a finished call must not
      // outlive it (it would survive young collections).
      items[this.#head++] = undefined as unknown as T;
      this.#done--;
    }
    if (this.#head === items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= items.length) {
      // Under steady load the queue never empties: drop the completed
      // prefix in place, so that completed entries are not kept alive (they
      // would survive young-generation collections and lengthen them).
      items.copyWithin(0, this.#head);
      items.length -= this.#head;
      this.#head = 0;
    } else if (
      this.#done > 1024 && this.#done * 2 > items.length - this.#head
    ) {
      this.#items = items.slice(this.#head).filter((e) => !e.done);
      this.#head = 0;
      this.#done = 0;
    }
  }

  /** Stops the timer and forgets every entry. */
  clear(): void {
    this.#timer?.clear();
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#items = [];
    this.#head = 0;
    this.#done = 0;
  }

  #arm(at: number): void {
    this.#timer?.clear();
    this.#timerAt = at;
    // Any length: a deadline beyond 2^31-1 ms must not fire (and re-arm)
    // every millisecond.
    this.#timer = setLongTimeout(this.#fire, at - Date.now());
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now() + 1;
    const items = this.#items;
    while (this.#head < items.length) {
      const item = items[this.#head]!;
      if (item.done) {
        this.#head++;
        this.#done--;
        continue;
      }
      if (item.deadline > now) break;
      this.#head++;
      item.done = true;
      this.#onExpire(item);
    }
    if (this.#items !== items) return; // cleared by a callback
    if (this.#head === items.length) {
      this.#items = [];
      this.#head = 0;
    } else {
      this.#arm(items[this.#head]!.deadline);
    }
  };
}
