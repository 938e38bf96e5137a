/**
 * The connection's deadline queue: completed entries are dropped, also
 * under steady load where the queue never empties.
 */
import assert from "node:assert/strict";
import { DeadlineQueue } from "../src/client/_deadline_queue.ts";

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
  const queue = new DeadlineQueue<Entry>((entry) => expired.push(entry));
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
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(expired, [late]);
  assert.ok(entries.slice(500).every((entry) => !entry.done));
  queue.clear();
});
