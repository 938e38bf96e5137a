/**
 * The connection's deadline queue, on a fake clock (tests/_timers.ts): no
 * test waits for real time. One timer for the earliest deadline; each
 * entry expires at its deadline, never before, in deadline order whatever
 * the order of adding; after firing, `#fire` re-arms for the next entry;
 * completed entries never expire and are dropped, also under steady load
 * where the queue never empties; a deadline beyond 2^31-1 ms does not fire
 * early (and does not re-arm every millisecond); `clear()` stops it all.
 */
import assert from "node:assert/strict";
import { DeadlineQueue } from "../src/client/_deadline_queue.ts";
import { MAX_TIMER_DELAY } from "../src/_async.ts";
import { FakeClock } from "./_timers.ts";

interface Entry {
  deadline: number;
  done: boolean;
  n: number;
}

/** A queue on `clock` recording the numbers of the entries it expires. */
function queueOn() {
  const expired: number[] = [];
  const queue = new DeadlineQueue<Entry>((entry) => {
    assert.equal(entry.done, true, "done is set before onExpire");
    expired.push(entry.n);
  });
  return { queue, expired };
}

const entry = (deadline: number, n: number): Entry => ({
  deadline,
  done: false,
  n,
});

Deno.test("DeadlineQueue expires each entry at its deadline, in deadline order, re-arming after each firing", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  const t0 = clock.now;
  // Added out of order: appended, then inserted before, between and at the
  // end of the entries held.
  queue.add(entry(t0 + 30, 3));
  queue.add(entry(t0 + 10, 1));
  queue.add(entry(t0 + 20, 2));
  queue.add(entry(t0 + 40, 4));
  queue.add(entry(t0 + 20, 5)); // same deadline as 2: after it
  assert.equal(queue.size, 5);
  // One timer at a time, armed for the earliest deadline.
  assert.deepEqual(clock.pending.map((t) => t.ms), [10]);
  clock.advance(9);
  assert.deepEqual(expired, []);
  clock.advance(1);
  assert.deepEqual(expired, [1]);
  // #fire re-armed for the next deadline, 10 ms on.
  assert.deepEqual(clock.pending.map((t) => t.ms), [10]);
  clock.advance(9);
  assert.deepEqual(expired, [1]);
  clock.advance(1);
  assert.deepEqual(expired, [1, 2, 5]);
  assert.equal(queue.size, 2);
  clock.advance(10);
  assert.deepEqual(expired, [1, 2, 5, 3]);
  clock.advance(10);
  assert.deepEqual(expired, [1, 2, 5, 3, 4]);
  assert.equal(queue.size, 0);
  assert.equal(queue.retained, 0);
  assert.equal(clock.pending.length, 0);
  // Emptied: the next entry arms a timer again.
  queue.add(entry(clock.now + 5, 6));
  assert.deepEqual(clock.pending.map((t) => t.ms), [5]);
  clock.advance(5);
  assert.deepEqual(expired, [1, 2, 5, 3, 4, 6]);
  queue.clear();
});

Deno.test("DeadlineQueue: a firing timer also takes entries due within the next millisecond, no later ones", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  const t0 = clock.now;
  queue.add(entry(t0 + 10, 1));
  queue.add(entry(t0 + 11, 2));
  queue.add(entry(t0 + 12, 3));
  clock.advance(10);
  assert.deepEqual(expired, [1, 2]);
  assert.deepEqual(clock.pending.map((t) => t.ms), [2]);
  clock.advance(2);
  assert.deepEqual(expired, [1, 2, 3]);
  queue.clear();
});

Deno.test("DeadlineQueue: an earlier entry re-arms the timer for itself; a later one keeps the timer", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  const t0 = clock.now;
  queue.add(entry(t0 + 50, 1));
  assert.equal(clock.timers.length, 1);
  queue.add(entry(t0 + 60, 2));
  queue.add(entry(t0 + 50, 3));
  assert.equal(clock.timers.length, 1, "no timer for a later entry");
  queue.add(entry(t0 + 20, 4));
  assert.equal(clock.timers.length, 2);
  assert.equal(clock.timers[0]!.cleared, true);
  assert.deepEqual(clock.pending.map((t) => t.ms), [20]);
  clock.advance(20);
  assert.deepEqual(expired, [4]);
  // Re-armed for the old earliest, 30 ms on.
  assert.deepEqual(clock.pending.map((t) => t.ms), [30]);
  clock.advance(40);
  assert.deepEqual(expired, [4, 1, 3, 2]);
  queue.clear();
});

Deno.test("DeadlineQueue: completed entries never expire; the timer re-arms past them and stops when none is left", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  const t0 = clock.now;
  const entries = [10, 20, 30, 40].map((d, i) => entry(t0 + d, i + 1));
  for (const e of entries) queue.add(e);
  // Complete the head and one in the middle: not dropped from the middle.
  queue.complete(entries[0]!);
  queue.complete(entries[2]!);
  assert.equal(entries[0]!.done, true);
  assert.equal(queue.size, 3, "the head is dropped, the middle one kept");
  queue.complete(entries[0]!); // twice: no effect
  assert.equal(queue.size, 3);
  clock.advance(10);
  assert.deepEqual(expired, []);
  clock.advance(10);
  assert.deepEqual(expired, [2]);
  // Entry 3 was completed: the timer re-arms for 4, 20 ms on.
  assert.deepEqual(clock.pending.map((t) => t.ms), [20]);
  clock.advance(20);
  assert.deepEqual(expired, [2, 4]);
  assert.equal(clock.pending.length, 0);
  // Completing every entry leaves nothing, and the timer fires idle.
  const last = entry(clock.now + 5, 5);
  queue.add(last);
  queue.complete(last);
  assert.equal(queue.size, 0);
  assert.equal(queue.retained, 0);
  clock.advance(5);
  assert.deepEqual(expired, [2, 4]);
  assert.equal(clock.pending.length, 0);
  queue.clear();
});

Deno.test("DeadlineQueue: clear() stops the timer and forgets every entry; an entry added by an expiry is timed", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  queue.add(entry(clock.now + 10, 1));
  queue.add(entry(clock.now + 20, 2));
  queue.clear();
  assert.equal(queue.size, 0);
  assert.equal(clock.pending.length, 0);
  clock.advance(30);
  assert.deepEqual(expired, []);
  // A queue re-used after clear() times again.
  queue.add(entry(clock.now + 30, 3));
  assert.deepEqual(clock.pending.map((t) => t.ms), [30]);
  queue.clear();
  // An expiry that adds an earlier entry: it is timed too.
  const seen: number[] = [];
  const chained = new DeadlineQueue<Entry>((e) => {
    seen.push(e.n);
    if (e.n === 4) chained.add(entry(clock.now + 5, 5));
  });
  chained.add(entry(clock.now + 10, 4));
  chained.add(entry(clock.now + 50, 6));
  clock.advance(15);
  assert.deepEqual(seen, [4, 5]);
  clock.advance(35);
  assert.deepEqual(seen, [4, 5, 6]);
  chained.clear();
});

Deno.test("DeadlineQueue holds a deadline beyond 2^31-1 ms without firing early or re-arming every millisecond", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  const far = clock.now + 2 ** 31 + 1000;
  queue.add(entry(far, 1));
  // One timer of at most 2^31-1 ms (Deno would fire a longer one at once).
  assert.deepEqual(clock.pending.map((t) => t.ms), [MAX_TIMER_DELAY]);
  clock.advance(MAX_TIMER_DELAY);
  assert.deepEqual(expired, []);
  assert.equal(clock.timers.length, 2, "the chain's second timer");
  // A sooner entry: expires alone; the far one still waits.
  queue.add(entry(clock.now + 5, 2));
  clock.advance(5);
  assert.deepEqual(expired, [2]);
  assert.equal(queue.size, 1);
  clock.advance(far - clock.now - 1);
  assert.deepEqual(expired, [2]);
  clock.advance(1);
  assert.deepEqual(expired, [2, 1]);
  assert.ok(clock.timers.length < 10, `${clock.timers.length} timers`);
  queue.clear();
});

Deno.test("DeadlineQueue keeps no completed entries under steady load (the queue never empties)", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  const window: Entry[] = [];
  const base = clock.now + 60_000;
  let maxRetained = 0;
  for (let i = 0; i < 100_000; i++) {
    const e = entry(base + i, i);
    queue.add(e);
    window.push(e);
    // 64 in flight, completed oldest first: the queue is never empty.
    if (window.length > 64) queue.complete(window.shift()!);
    maxRetained = Math.max(maxRetained, queue.retained);
    // A completed entry is let go at once, not at the next compaction.
    if (i % 97 === 0) assert.equal(queue.referenced, Math.min(i + 1, 64));
  }
  assert.equal(queue.size, 64);
  assert.ok(maxRetained <= 2 * (256 + 64), `retained up to ${maxRetained}`);
  assert.ok(maxRetained >= 256, `retained up to ${maxRetained}`);
  for (const e of window) queue.complete(e);
  assert.equal(queue.retained, 0);
  assert.deepEqual(expired, []);
  queue.clear();
});

Deno.test("DeadlineQueue drops completed entries out of order too, and still expires the ones left", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  const t0 = clock.now;
  // The head stays pending; most entries behind it complete.
  const head = entry(t0 + 1000, 0);
  queue.add(head);
  const rest = Array.from(
    { length: 3000 },
    (_, i) => entry(t0 + 2000 + i, i + 1),
  );
  for (const e of rest) queue.add(e);
  for (const e of rest.slice(0, 2000)) queue.complete(e);
  // At 1501 completed (more than 1024, more than half of 3001) the
  // completed ones are filtered out; 499 more are completed after that.
  assert.equal(queue.retained, 1500);
  assert.equal(queue.size, 1500);
  clock.advance(1000);
  assert.deepEqual(expired, [0]);
  clock.advance(1000 + 2000 - 1);
  assert.deepEqual(expired, [0]);
  clock.advance(1);
  assert.deepEqual(expired, [0, 2001, 2002]); // 2002: within 1 ms
  clock.advance(999);
  assert.equal(expired.length, 1001);
  assert.deepEqual(expired.slice(-1), [3000]);
  assert.equal(queue.size, 0);
  queue.clear();
});

Deno.test("DeadlineQueue: a prefix of 256 completed entries is dropped in place; the rest still expire", () => {
  using clock = new FakeClock();
  const { queue, expired } = queueOn();
  const t0 = clock.now;
  const entries = Array.from({ length: 600 }, (_, i) => entry(t0 + 100 + i, i));
  for (const e of entries) queue.add(e);
  for (const e of entries.slice(0, 255)) queue.complete(e);
  assert.equal(queue.retained, 600, "255 completed: not compacted yet");
  assert.equal(queue.size, 345);
  queue.complete(entries[255]!);
  // 256 at the head, but less than half: kept.
  assert.equal(queue.retained, 600);
  for (const e of entries.slice(256, 299)) queue.complete(e);
  assert.equal(queue.retained, 600);
  // 300 of 600 at the head: half, dropped.
  queue.complete(entries[299]!);
  assert.equal(queue.retained, 300);
  assert.equal(queue.size, 300);
  for (const e of entries.slice(300, 400)) queue.complete(e);
  assert.equal(queue.retained, 300);
  assert.equal(queue.size, 200);
  clock.advance(100 + 400);
  assert.deepEqual(expired, [400, 401]); // 401: within 1 ms
  clock.advance(199);
  assert.equal(expired.length, 200);
  assert.equal(queue.size, 0);
  queue.clear();
});

Deno.test("DeadlineQueue: an expiry that clears the queue (the connection closed) stops it: nothing else expires, no timer", () => {
  using clock = new FakeClock();
  const seen: number[] = [];
  const queue = new DeadlineQueue<Entry>((e) => {
    seen.push(e.n);
    queue.clear();
  });
  queue.add(entry(clock.now + 10, 1));
  queue.add(entry(clock.now + 20, 2));
  clock.advance(10);
  assert.deepEqual(seen, [1]);
  assert.equal(clock.pending.length, 0);
  clock.advance(100);
  assert.deepEqual(seen, [1]);
});

/** A queue of `n` entries due in an hour: the head stays pending. */
function held(n: number) {
  const { queue, expired } = queueOn();
  const now = Date.now();
  const entries = Array.from(
    { length: n },
    (_, i) => entry(now + 3_600_000 + i, i),
  );
  for (const e of entries) queue.add(e);
  return { queue, expired, entries };
}

Deno.test("DeadlineQueue: completed entries behind a pending head are filtered out past 1024 of them and half the queue, not before", () => {
  using _clock = new FakeClock();
  // Half the queue binds: 3000 held, the filter at the 1501st.
  const half = held(3000);
  for (let i = 1; i <= 1500; i++) half.queue.complete(half.entries[i]!);
  assert.equal(half.queue.retained, 3000);
  half.queue.complete(half.entries[1501]!);
  assert.equal(half.queue.retained, 1499);
  assert.equal(half.queue.size, 1499);
  half.queue.clear();
  // 1024 binds: 2000 held, the filter at the 1025th.
  const many = held(2000);
  for (let i = 1; i <= 1024; i++) many.queue.complete(many.entries[i]!);
  assert.equal(many.queue.retained, 2000);
  many.queue.complete(many.entries[1025]!);
  assert.equal(many.queue.retained, 975);
  many.queue.clear();
  // Few: never filtered, however large their share.
  const few = held(10);
  for (let i = 1; i <= 8; i++) few.queue.complete(few.entries[i]!);
  assert.equal(few.queue.retained, 10);
  few.queue.clear();
});

Deno.test("DeadlineQueue: an entry completed twice, or completed after it expired, counts once", () => {
  using clock = new FakeClock();
  const { queue, entries } = held(2000);
  for (let i = 0; i < 1100; i++) queue.complete(entries[7]!);
  assert.equal(queue.retained, 2000, "one completed entry: nothing to drop");
  queue.clear();
  // Expired entries completed by the connection afterwards.
  const { queue: q2, expired } = queueOn();
  const soon = Array.from({ length: 1100 }, (_, i) => entry(clock.now + 5, i));
  const later = Array.from(
    { length: 1000 },
    (_, i) => entry(clock.now + 3_600_000, 5000 + i),
  );
  for (const e of [...soon, ...later]) q2.add(e);
  clock.advance(5);
  assert.equal(expired.length, 1100);
  for (const e of soon) q2.complete(e);
  q2.complete(later[500]!);
  assert.equal(q2.retained, 1000);
  q2.clear();
});

Deno.test("DeadlineQueue: the head passing completed entries keeps the count of completed ones right", () => {
  using clock = new FakeClock();
  // By complete(): 1400 completed behind the head, then the head.
  const a = held(3000);
  for (let i = 1; i <= 1400; i++) a.queue.complete(a.entries[i]!);
  a.queue.complete(a.entries[0]!);
  assert.equal(a.queue.size, 1599);
  assert.equal(
    a.queue.retained,
    3000,
    "nothing counted twice, nothing dropped",
  );
  a.queue.clear();
  // By a firing: the head expires, the timer skips the completed ones.
  const { queue, expired } = queueOn();
  const now = clock.now;
  const entries = Array.from(
    { length: 3000 },
    (_, i) => entry(i === 0 ? now + 10 : now + 3_600_000 + i, i),
  );
  for (const e of entries) queue.add(e);
  for (let i = 1; i <= 1000; i++) queue.complete(entries[i]!);
  clock.advance(10);
  assert.deepEqual(expired, [0]);
  queue.complete(entries[2000]!);
  assert.equal(queue.retained, 3000);
  queue.clear();
});

Deno.test("DeadlineQueue: a completed prefix of exactly 256 entries that is half the queue is dropped", () => {
  using _clock = new FakeClock();
  const { queue, entries } = held(512);
  for (let i = 0; i < 255; i++) queue.complete(entries[i]!);
  assert.equal(queue.retained, 512);
  queue.complete(entries[255]!);
  assert.equal(queue.retained, 256);
  assert.equal(queue.size, 256);
  queue.clear();
});
