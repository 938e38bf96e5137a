/**
 * The calls of one connection (`src/client/_calls.ts`) as a unit, on a
 * fake clock (tests/_timers.ts) with a recording `send`: ids, the in-flight
 * limit at its boundary and its FIFO queue (a queued call's params copied,
 * sent with what is left of its deadline, skipped once expired), deadlines
 * and their expiry, settling, and `clear()`.
 */
import assert from "node:assert/strict";
import { CallTable, type PendingCall } from "../../src/client/_calls.ts";
import { FakeClock } from "../_timers.ts";

const PREFIX = new Uint8Array([1, 120]);
const noop = () => {};

/** A table over a recording `send`; `sent` holds [id, wire timeout, params]. */
function table(maxInFlight: number) {
  const sent: [number, number | undefined, number[]][] = [];
  const expired: number[] = [];
  let batch = 0;
  const t = new CallTable(
    maxInFlight,
    (call, timeout, params) => {
      sent.push([call.id, timeout, [...params]]);
      return ++batch;
    },
    (call) => expired.push(call.id),
  );
  const open = (
    deadline = Infinity,
    params = new Uint8Array([7]),
    now = Date.now(),
  ): PendingCall =>
    t.open("m", PREFIX, undefined, deadline, noop, noop, params, now);
  return { t, sent, expired, open };
}

Deno.test("calls: ids count up from 1; a call is pending until settled", () => {
  using _clock = new FakeClock();
  const { t, open } = table(10);
  const a = open();
  const b = open();
  const c = open();
  assert.deepEqual([a.id, b.id, c.id], [1, 2, 3]);
  assert.equal(t.size, 3);
  assert.equal(t.get(2), b);
  assert.equal(t.has(b), true);
  t.settle(b);
  assert.equal(t.get(2), undefined);
  assert.equal(t.has(b), false);
  assert.equal(t.size, 2);
  // Ids are not reused while counting up.
  assert.equal(open().id, 4);
  t.clear();
});

Deno.test("calls: up to maxInFlight are sent at once; the rest wait and go out one per settled call, in order", () => {
  using _clock = new FakeClock();
  const { t, sent, open } = table(2);
  const params = new Uint8Array([1, 2, 3]);
  const a = open(Infinity, params);
  const b = open();
  const c = open(Infinity, params);
  const d = open();
  assert.deepEqual(sent.map(([id]) => id), [1, 2]);
  assert.equal(a.batch, 1);
  assert.equal(c.batch, Infinity, "queued: no batch");
  // The queued params are a copy: the caller's scratch bytes are reused.
  params.fill(0);
  t.settle(b);
  assert.deepEqual(sent.map(([id]) => id), [1, 2, 3]);
  assert.deepEqual(sent[2]![2], [1, 2, 3]);
  assert.equal(c.batch, 3);
  assert.equal(c.payload, undefined, "the copy is dropped once sent");
  t.settle(a);
  assert.deepEqual(sent.map(([id]) => id), [1, 2, 3, 4]);
  assert.equal(d.batch, 4);
  // Nothing queued: a settle sends nothing.
  t.settle(c);
  assert.equal(sent.length, 4);
  assert.equal(t.size, 1);
  t.clear();
});

Deno.test("calls: a queued call that is settled (expired, cancelled) frees no slot and is never sent", () => {
  using _clock = new FakeClock();
  const { t, sent, open } = table(1);
  const a = open();
  const b = open();
  const c = open();
  t.settle(b); // given up while queued
  assert.equal(sent.length, 1);
  t.settle(a);
  assert.deepEqual(sent.map(([id]) => id), [1, 3]);
  assert.equal(c.batch, 2);
  // Still one in flight: the next call queues.
  const d = open();
  assert.equal(d.batch, Infinity);
  t.clear();
});

Deno.test("calls: the wire timeout is what is left of the deadline when the request goes out", () => {
  using clock = new FakeClock();
  const { t, sent, open } = table(1);
  const now = clock.now;
  const a = open(now + 100.4);
  const b = open(now + 500);
  open(); // no deadline
  assert.deepEqual(sent[0]!.slice(0, 2), [1, 101]);
  assert.ok(Math.abs(a.timeout - 100.4) < 1e-6);
  assert.equal(b.timeout, 500);
  clock.advance(40);
  t.settle(a);
  assert.deepEqual(sent[1]!.slice(0, 2), [2, 460]);
  t.settle(b);
  assert.deepEqual(sent[2]!.slice(0, 2), [3, undefined]);
  t.clear();
});

Deno.test("calls: a call expires at its deadline, sent or queued; settled calls and calls without one never do", () => {
  using clock = new FakeClock();
  const { t, expired, open } = table(1);
  const now = clock.now;
  const a = open(now + 30);
  const b = open(now + 10); // queued
  const c = open(now + 20);
  open(); // no deadline: no timer for it
  t.settle(c);
  clock.advance(9);
  assert.deepEqual(expired, []);
  clock.advance(1);
  assert.deepEqual(expired, [b.id]);
  assert.equal(b.done, true);
  clock.advance(20);
  assert.deepEqual(expired, [b.id, a.id]);
  clock.advance(10_000);
  assert.deepEqual(expired, [b.id, a.id]);
  assert.equal(c.deadline, now + 20);
  t.clear();
});

Deno.test("calls: settling a call removes its abort listener", () => {
  using _clock = new FakeClock();
  const { t, open } = table(4);
  const removed: unknown[] = [];
  const call = open();
  const onAbort = () => {};
  call.onAbort = onAbort;
  call.signal = {
    removeEventListener: (type: string, fn: unknown) => removed.push(type, fn),
  } as unknown as AbortSignal;
  t.settle(call);
  assert.deepEqual(removed, ["abort", onAbort]);
  t.clear();
});

Deno.test("calls: clear() returns every pending call, stops their deadlines and empties the queue", () => {
  using clock = new FakeClock();
  const { t, sent, expired, open } = table(1);
  const removed: string[] = [];
  const a = open(clock.now + 10);
  const b = open(clock.now + 10);
  b.onAbort = () => {};
  b.signal = {
    removeEventListener: (type: string) => removed.push(type),
  } as unknown as AbortSignal;
  const calls = t.clear();
  assert.deepEqual(calls.map((c) => c.id).sort(), [a.id, b.id]);
  assert.deepEqual(removed, ["abort"]);
  assert.equal(t.size, 0);
  assert.equal(clock.pending.length, 0);
  clock.advance(100);
  assert.deepEqual(expired, []);
  // The queue is gone: settling the sent call sends nothing more.
  t.settle(a);
  assert.equal(sent.length, 1);
});

Deno.test("calls: after the wrap an id still in use is skipped, also across the end, and each answer reaches its own call", () => {
  using _clock = new FakeClock();
  const sent: number[] = [];
  // Ids 1 to 4 only, so that the wrap meets calls still pending.
  const t = new CallTable(10, (call) => (sent.push(call.id), 1), noop, 0, 4);
  const values = new Map<number, unknown>();
  const open = (name: string) =>
    t.open(
      name,
      PREFIX,
      undefined,
      Infinity,
      (value) => values.set(values.size, [name, value]),
      noop,
      new Uint8Array(1),
    );
  const a = open("a");
  const b = open("b");
  const c = open("c");
  const d = open("d");
  assert.deepEqual([a.id, b.id, c.id, d.id], [1, 2, 3, 4]);
  t.settle(b);
  t.settle(c);
  // Wraps to 1 (a's): skips it.
  const e = open("e");
  assert.equal(e.id, 2);
  const f = open("f");
  assert.equal(f.id, 3);
  // 4 is d's and 1 is a's: from 3 it runs past the end, then skips 1 too.
  t.settle(e);
  const g = open("g");
  assert.equal(g.id, 2);
  assert.deepEqual(sent, [1, 2, 3, 4, 2, 3, 2]);
  // Every pending id names its own call.
  for (const call of [a, d, f, g]) {
    assert.equal(t.get(call.id), call);
    t.settle(call);
    call.resolve(call.method);
  }
  assert.deepEqual([...values.values()], [
    ["a", "a"],
    ["d", "d"],
    ["f", "f"],
    ["g", "g"],
  ]);
  assert.equal(t.size, 0);
  t.clear();
});

Deno.test("calls: a sink's value reaches onValue; if onValue throws, that error reaches onError a microtask later, not the caller of resolve", async () => {
  using _clock = new FakeClock();
  const t = new CallTable(10, () => 1, noop);
  const seen: string[] = [];
  const failure = new Error("sink broke");
  const sink = {
    onValue(value: unknown): void {
      seen.push(`value ${value}`);
      if (value === "bad") throw failure;
    },
    onError(error: unknown): void {
      seen.push(`error ${error === failure ? "same" : String(error)}`);
    },
  };
  const open = () =>
    t.open(
      "m",
      PREFIX,
      undefined,
      Infinity,
      noop,
      noop,
      new Uint8Array(1),
      Date.now(),
      undefined,
      sink,
    );
  const good = open();
  t.settle(good);
  good.resolve("ok");
  const bad = open();
  t.settle(bad);
  bad.resolve("bad"); // does not throw here
  assert.deepEqual(seen, ["value ok", "value bad"]);
  await Promise.resolve();
  assert.deepEqual(seen, ["value ok", "value bad", "error same"]);
  t.clear();
});

Deno.test("calls: after id 2^32-1 the ids start again at 1, never 0", () => {
  using _clock = new FakeClock();
  const ids: number[] = [];
  const t = new CallTable(
    10,
    (call) => (ids.push(call.id), 1),
    noop,
    0xfffffffd,
  );
  const open = () =>
    t.open("m", PREFIX, undefined, Infinity, noop, noop, new Uint8Array(1));
  const a = open();
  const b = open();
  const c = open();
  assert.deepEqual([a.id, b.id, c.id], [0xfffffffe, 0xffffffff, 1]);
  assert.deepEqual(ids, [0xfffffffe, 0xffffffff, 1]);
  assert.equal(t.get(0xffffffff), b);
  t.settle(b);
  assert.equal(open().id, 2);
  t.clear();
});
