/**
 * The connection's deadline queue: completed entries are dropped, also
 * under steady load where the queue never empties; the timer re-arms for
 * the next entry after firing; a deadline beyond 2^31-1 ms does not make it
 * fire (and re-arm) every millisecond.
 */
import assert from "node:assert/strict";
import { DeadlineQueue } from "../src/client/_deadline_queue.ts";
import { within } from "./_wait.ts";
import { afterOverflow, countTimers } from "./_timers.ts";

interface Entry {
  deadline: number;
  done: boolean;
}

Deno.test("DeadlineQueue keeps no completed entries under steady load (the queue never empties)", () => {
  const expired: Entry[] = [];
  const queue = new DeadlineQueue<Entry>((entry) => expired.push(entry));
  const window: Entry[] = [];
  const base = Date.now() + 60_000;
  let maxRetained = 0;
  for (let i = 0; i < 100_000; i++) {
    const entry = { deadline: base + i, done: false };
    queue.add(entry);
    window.push(entry);
    // 64 in flight, completed oldest first: the queue is never empty.
    if (window.length > 64) queue.complete(window.shift()!);
    maxRetained = Math.max(maxRetained, queue.retained);
  }
  assert.equal(queue.size, 64);
  assert.ok(maxRetained <= 2 * (256 + 64), `retained up to ${maxRetained}`);
  for (const entry of window) queue.complete(entry);
  assert.equal(queue.retained, 0);
  assert.equal(expired.length, 0);
  queue.clear();
});

Deno.test("DeadlineQueue still expires the entries left after dropping a completed prefix", async () => {
  const expired: Entry[] = [];
  const first = Promise.withResolvers<void>();
  const queue = new DeadlineQueue<Entry>((entry) => {
    expired.push(entry);
    first.resolve();
  });
  const now = Date.now();
  const entries = Array.from({ length: 600 }, (_, i) => ({
    deadline: now + 60_000 + i,
    done: false,
  }));
  for (const entry of entries) queue.add(entry);
  const soon = { deadline: now + 20, done: false };
  queue.add(soon); // sorted to the front
  queue.complete(soon);
  for (const entry of entries.slice(0, 500)) queue.complete(entry);
  assert.ok(queue.retained <= 100 + 256, `retained ${queue.retained}`);
  assert.equal(queue.size, 100);
  const late = { deadline: Date.now() + 5, done: false };
  queue.add(late);
  await within(first.promise, 5000, "the late entry to expire");
  assert.deepEqual(expired, [late]);
  assert.ok(entries.slice(500).every((entry) => !entry.done));
  queue.clear();
});

Deno.test("DeadlineQueue holds a deadline beyond 2^31-1 ms without re-arming every millisecond", async () => {
  const expired: number[] = [];
  const soon = Promise.withResolvers<void>();
  const queue = new DeadlineQueue<
    { deadline: number; done: boolean; n: number }
  >((entry) => {
    expired.push(entry.n);
    soon.resolve();
  });
  const armed = await countTimers(async () => {
    queue.add({ deadline: Date.now() + 2 ** 31, done: false, n: 1 });
    await afterOverflow();
  });
  assert.equal(armed, 2, `${armed} timers armed`);
  // A sooner entry re-arms for itself, then for the far one: only it expires.
  queue.add({ deadline: Date.now() + 5, done: false, n: 2 });
  await within(soon.promise, 5000, "the sooner entry to expire");
  await afterOverflow();
  assert.deepEqual(expired, [2]);
  assert.equal(queue.size, 1);
  queue.clear();
});

Deno.test("DeadlineQueue re-arms after firing for entries that are not due yet", async () => {
  const expired: number[] = [];
  const all = Promise.withResolvers<void>();
  const queue = new DeadlineQueue<
    { deadline: number; done: boolean; n: number }
  >((entry) => {
    expired.push(entry.n);
    if (expired.length === 3) all.resolve();
  });
  const now = Date.now();
  // Each expiry must come from the timer #fire re-armed for the next one.
  queue.add({ deadline: now + 30, done: false, n: 3 });
  queue.add({ deadline: now + 20, done: false, n: 2 });
  queue.add({ deadline: now + 10, done: false, n: 1 });
  await within(all.promise, 5000, "three expiries");
  assert.deepEqual(expired, [1, 2, 3]);
  assert.equal(queue.size, 0);
  queue.clear();
});
