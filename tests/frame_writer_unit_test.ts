/**
 * Unit tests of the frame writer (`src/protocol/frame_writer.ts`) against a
 * scripted in-memory sink: frames pushed while a write is pending go out in
 * one batch, partial writes are completed, the buffers grow past 16 KiB,
 * batch numbers and counters, `drained()`, and a failing sink (reported once,
 * asynchronously; nothing written after it). No I/O: the mutation runner's
 * tests for `frame_writer`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  FrameWriter,
  holdWritesForTurn,
  TURN_EARLY_FRAMES,
} from "../src/protocol/frame_writer.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { requestSize, writeRequest } from "../src/protocol/request.ts";
import { waitFor, within } from "./_wait.ts";

/** A sink whose writes complete when the test says, `max` bytes at most. */
function scriptedSink(max = Infinity) {
  const writes: Uint8Array[] = [];
  const waiting: (() => void)[] = [];
  let fail: unknown;
  let failing = false;
  return {
    writes,
    get waiting() {
      return waiting.length;
    },
    /** Completes the oldest pending write. */
    release() {
      waiting.shift()!();
    },
    failNext(error: unknown) {
      failing = true;
      fail = error;
    },
    sink: {
      write(p: Uint8Array): Promise<number> {
        if (failing) return Promise.reject(fail);
        const n = Math.min(p.length, max);
        writes.push(p.slice(0, n));
        return new Promise<number>((resolve) => waiting.push(() => resolve(n)));
      },
    },
  };
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

Deno.test("FrameWriter writes the first frame at once and batches the frames pushed while it is written", async () => {
  const s = scriptedSink();
  const writer = new FrameWriter(s.sink);
  assert.equal(writer.started, 0);
  assert.equal(writer.failed, false);
  const a = encodeFrame(FrameType.Ping, 1, new Uint8Array([1, 2]));
  assert.equal(writer.push(FrameType.Ping, 1, new Uint8Array([1, 2])), 1);
  // Written synchronously, up to the first write.
  assert.deepEqual(s.writes, [a]);
  assert.equal(writer.started, 1);
  assert.equal(writer.buffered, 0);
  // Pushed while batch 1 is being written: batch 2, with a prefix.
  assert.equal(
    writer.push(FrameType.Pong, 2, new Uint8Array([9]), new Uint8Array([7, 8])),
    2,
  );
  assert.equal(writer.pushRaw(new Uint8Array([0xaa, 0xbb])), 2);
  assert.equal(writer.push(FrameType.Goaway, 3), 2);
  assert.equal(writer.buffered, 9 + 3 + 2 + 9);
  const drained = writer.drained();
  s.release();
  await waitFor(() => s.waiting > 0, "the second write");
  assert.equal(writer.started, 2);
  assert.deepEqual(
    s.writes[1],
    concat([
      encodeFrame(FrameType.Pong, 2, new Uint8Array([7, 8, 9])),
      new Uint8Array([0xaa, 0xbb]),
      encodeFrame(FrameType.Goaway, 3),
    ]),
  );
  s.release();
  await within(drained, 5000, "drained");
  assert.equal(s.writes.length, 2);
  assert.equal(writer.buffered, 0);
  // Idle: drained() at once, and the next push starts batch 3.
  await within(writer.drained(), 5000, "drained when idle");
  assert.equal(writer.push(FrameType.Ping, 4), 3);
  s.release();
  await within(writer.drained(), 5000, "drained again");
});

Deno.test("FrameWriter completes partial writes and grows its buffers past 16 KiB", async () => {
  const s = scriptedSink(1000);
  const writer = new FrameWriter(s.sink);
  const big = new Uint8Array(40_000).map((_, i) => i & 0xff);
  writer.push(FrameType.Request, 5, big);
  const drained = writer.drained();
  while (s.writes.reduce((n, w) => n + w.length, 0) < 9 + big.length) {
    await waitFor(() => s.waiting > 0, "the next partial write");
    s.release();
  }
  await within(drained, 5000, "drained");
  assert.deepEqual(concat(s.writes), encodeFrame(FrameType.Request, 5, big));
  assert.ok(s.writes.every((w) => w.length <= 1000));
  // A batch larger than the buffer while one is pending: grown, nothing lost.
  const t = scriptedSink();
  const w2 = new FrameWriter(t.sink);
  w2.push(FrameType.Ping, 1);
  const parts = [
    new Uint8Array(10_000).fill(1),
    new Uint8Array(10_000).fill(2),
  ];
  w2.push(FrameType.Request, 2, parts[0]);
  w2.push(FrameType.Request, 3, parts[1]);
  assert.equal(w2.buffered, 2 * (9 + 10_000));
  const done = w2.drained();
  t.release();
  await waitFor(() => t.waiting > 0, "the second write");
  t.release();
  await within(done, 5000, "drained");
  assert.deepEqual(
    t.writes[1],
    concat([
      encodeFrame(FrameType.Request, 2, parts[0]),
      encodeFrame(FrameType.Request, 3, parts[1]),
    ]),
  );
});

Deno.test("FrameWriter.pushRequest writes the request header, prefix, metadata and payload as request.ts lays them out", async () => {
  const s = scriptedSink();
  const writer = new FrameWriter(s.sink);
  const prefix = new Uint8Array([3, 0x61, 0x62, 0x63]);
  const payload = new Uint8Array([0x91, 0x01]);
  const metadata = new Uint8Array([1, 0x6b, 0, 1, 0x76]);
  assert.equal(writer.pushRequest(7, 1500, prefix, payload, metadata), 1);
  const size = requestSize(1500, prefix, payload.length, metadata);
  const expected = new Uint8Array(9 + size);
  expected.set(encodeFrame(FrameType.Request, 7, new Uint8Array(size)));
  writeRequest(expected, 9, 1500, prefix, payload, metadata);
  assert.deepEqual(s.writes[0], expected);
  s.release();
  await within(writer.drained(), 5000, "drained");
});

Deno.test("a failing sink is reported once, after push returns; later pushes write nothing and drained() resolves", async () => {
  const errors: unknown[] = [];
  const s = scriptedSink();
  const boom = new Error("broken pipe");
  s.failNext(boom);
  const writer = new FrameWriter(s.sink, (e) => errors.push(e));
  writer.push(FrameType.Ping, 1);
  assert.deepEqual(errors, [], "not from inside push");
  await within(writer.drained(), 5000, "drained after the failure");
  await within(Promise.resolve(), 5000, "a microtask");
  assert.deepEqual(errors, [boom]);
  assert.equal(writer.failed, true);
  assert.equal(writer.buffered, 0);
  const batch = writer.started;
  assert.equal(writer.push(FrameType.Ping, 2), batch + 1);
  assert.equal(writer.pushRaw(new Uint8Array([1])), batch + 1);
  assert.equal(
    writer.pushRequest(3, undefined, new Uint8Array([0]), new Uint8Array(0)),
    batch + 1,
  );
  assert.equal(writer.buffered, 0);
  assert.deepEqual(errors, [boom]);
  // A sink failing with undefined still marks the writer failed.
  const t = scriptedSink();
  t.failNext(undefined);
  const w2 = new FrameWriter(t.sink);
  w2.push(FrameType.Ping, 1);
  await within(w2.drained(), 5000, "drained");
  assert.equal(w2.failed, true);
});

Deno.test("a failure while frames wait: the waiting frames are dropped and every drained() waiter resolves", async () => {
  const errors: unknown[] = [];
  const s = scriptedSink();
  const writer = new FrameWriter(s.sink, (e) => errors.push(e));
  writer.push(FrameType.Ping, 1);
  writer.push(FrameType.Ping, 2); // waits for batch 1
  const waiters = [writer.drained(), writer.drained()];
  const boom = new Error("reset");
  s.failNext(boom);
  s.release(); // batch 1 done; batch 2's write fails
  await within(Promise.all(waiters), 5000, "both drained() waiters");
  assert.equal(writer.failed, true);
  assert.equal(writer.buffered, 0);
  await within(Promise.resolve(), 5000, "a microtask");
  assert.deepEqual(errors, [boom]);
  assert.equal(s.writes.length, 1);
});

Deno.test("a held turn writes its first TURN_EARLY_FRAMES frames at once and the rest of the turn in one write after", async () => {
  const s = scriptedSink();
  const writer = new FrameWriter(s.sink);
  const total = TURN_EARLY_FRAMES * 3;
  writer.holdForTurn();
  for (let i = 1; i < TURN_EARLY_FRAMES; i++) writer.push(FrameType.Ping, i);
  assert.equal(s.writes.length, 0, "held below the early count");
  writer.push(FrameType.Ping, TURN_EARLY_FRAMES);
  assert.equal(s.writes.length, 1, "the early frames go out at once");
  assert.equal(s.writes[0]!.length, 9 * TURN_EARLY_FRAMES);
  for (let i = TURN_EARLY_FRAMES + 1; i <= total; i++) {
    writer.push(FrameType.Ping, i);
  }
  // The turn's end releases the hold; the rest waits for the early write.
  await Promise.resolve();
  assert.equal(s.writes.length, 1, "the rest waits for the first write");
  s.release();
  await waitFor(() => s.waiting > 0, "the second write");
  assert.equal(s.writes.length, 2);
  assert.equal(s.writes[1]!.length, 9 * (total - TURN_EARLY_FRAMES));
  s.release();
  await within(writer.drained(), 5000, "drained");
  // A hold() (a server answering one read) has no early write.
  writer.hold();
  for (let i = 1; i <= total; i++) writer.push(FrameType.Ping, i);
  assert.equal(s.writes.length, 2, "hold() keeps every frame");
  writer.release();
  assert.equal(s.writes.length, 3);
  assert.equal(s.writes[2]!.length, 9 * total);
  s.release();
  await within(writer.drained(), 5000, "drained after hold");
  // A turn that ends below the early count sends its frames in one write.
  writer.holdForTurn();
  writer.push(FrameType.Ping, 1);
  writer.push(FrameType.Ping, 2);
  await Promise.resolve();
  assert.equal(s.writes.length, 4);
  assert.equal(s.writes[3]!.length, 18);
  s.release();
  await within(writer.drained(), 5000, "drained after a short turn");
});

Deno.test("holdForTurn() during a write, or twice in one turn, changes nothing: frames join the next write, the early count is not reset", async () => {
  const s = scriptedSink();
  const writer = new FrameWriter(s.sink);
  writer.push(FrameType.Ping, 1); // a write in progress
  writer.holdForTurn(); // does nothing: frames already wait for that write
  writer.push(FrameType.Ping, 2);
  s.release();
  await waitFor(() => s.writes.length === 2, "the frame after the write");
  assert.equal(s.writes[1]!.length, 9);
  s.release();
  await within(writer.drained(), 5000, "drained");
  // A second holdForTurn() in the same turn keeps the first one's count.
  writer.holdForTurn();
  for (let i = 1; i < TURN_EARLY_FRAMES; i++) writer.push(FrameType.Ping, i);
  writer.holdForTurn();
  writer.push(FrameType.Ping, TURN_EARLY_FRAMES);
  assert.equal(s.writes.length, 3, "the early frames went out at the 16th");
  assert.equal(s.writes[2]!.length, 9 * TURN_EARLY_FRAMES);
  s.release();
  await within(writer.drained(), 5000, "drained after the turn");
});

/** Two writers on scripted sinks, as two connections of one process. */
function twoConnections() {
  const a = scriptedSink();
  const b = scriptedSink();
  return {
    a,
    b,
    writerA: new FrameWriter(a.sink),
    writerB: new FrameWriter(b.sink),
  };
}

/** Completes the pending write of each sink and waits until both drained. */
async function releaseBoth(
  a: ReturnType<typeof scriptedSink>,
  b: ReturnType<typeof scriptedSink>,
  writerA: FrameWriter,
  writerB: FrameWriter,
): Promise<void> {
  a.release();
  b.release();
  await within(
    Promise.all([writerA.drained(), writerB.drained()]),
    5000,
    "drained",
  );
}

Deno.test("holdWritesForTurn() holds every writer that starts a write in the turn, each until the turn ends; after it, a frame goes out at once", async () => {
  const { a, b, writerA, writerB } = twoConnections();
  let whileRunning = -1;
  // A read settles several calls (their callers are queued), then holds
  // the turn; the callers write on two connections.
  const callers = Promise.resolve().then(() => {
    writerA.push(FrameType.Ping, 1);
    writerB.push(FrameType.Ping, 2);
    writerB.push(FrameType.Ping, 3);
    writerA.push(FrameType.Ping, 4);
    whileRunning = a.writes.length + b.writes.length;
  });
  holdWritesForTurn();
  await within(callers, 5000, "the callers");
  assert.equal(whileRunning, 0, "held while the callers run");
  assert.deepEqual(a.writes.map((w) => w.length), [18], "A: one write");
  assert.deepEqual(b.writes.map((w) => w.length), [18], "B: one write");
  await releaseBoth(a, b, writerA, writerB);
  // The turn is over: no hold for a later frame.
  writerB.push(FrameType.Ping, 5);
  assert.equal(b.writes.length, 2, "at once after the turn");
  b.release();
  await within(writerB.drained(), 5000, "drained after the turn");
});

Deno.test("holdWritesForTurn(): a caller four microtask hops from the answers (three async functions of its own) still writes in the turn; one five hops away writes at once", async () => {
  const { a, b, writerA, writerB } = twoConnections();
  /** Runs `fn` `n` microtask hops from now, as a caller awaiting that deep. */
  const atHop = (n: number, fn: () => void): Promise<void> => {
    let p = Promise.resolve();
    for (let i = 1; i < n; i++) p = p.then(() => {});
    return p.then(fn);
  };
  let heldAtFour = -1;
  let writtenAtFive = -1;
  const callers = [
    atHop(4, () => {
      writerA.push(FrameType.Ping, 1);
      heldAtFour = a.writes.length;
    }),
    atHop(5, () => {
      writerB.push(FrameType.Ping, 2);
      writtenAtFive = b.writes.length;
    }),
  ];
  holdWritesForTurn();
  await within(Promise.all(callers), 5000, "the callers");
  assert.equal(heldAtFour, 0, "four hops: held for the turn");
  assert.equal(writtenAtFive, 1, "five hops: at once");
  assert.equal(a.writes.length, 1, "A's frame went out when its turn ended");
  await releaseBoth(a, b, writerA, writerB);
});

Deno.test("below(limit) resolves at once at or under the limit, else when a write takes the bytes waiting, or when writing fails", async () => {
  const s = scriptedSink();
  const writer = new FrameWriter(s.sink);
  writer.push(FrameType.Ping, 1); // written at once: nothing waits
  await within(writer.below(0), 5000, "nothing waits behind the write");
  writer.push(FrameType.Ping, 2); // 9 bytes wait
  await within(writer.below(9), 5000, "exactly the limit");
  let low = false;
  const waiting = writer.below(8).then(() => low = true);
  let other = false;
  writer.below(4).then(() => other = true);
  await Promise.resolve();
  assert.equal(low, false, "9 bytes wait, the limit is 8");
  s.release(); // the waiting frame goes out: 0 bytes wait
  await within(waiting, 5000, "the next write took them");
  await waitFor(() => other, "every waiter under its limit");
  writer.push(FrameType.Ping, 3); // waits behind write 2
  let failed = false;
  const failing = writer.below(0).then(() => failed = true);
  s.failNext(new Error("gone"));
  s.release(); // write 2 ends; write 3 fails
  await within(failing, 5000, "a failed writer lets its waiters go");
  assert.ok(failed);
  await within(writer.below(0), 5000, "a failed writer never blocks");
  await within(writer.drained(), 5000, "drained");
});
