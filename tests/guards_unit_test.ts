/**
 * The server connection's guards as a unit, on a scripted connection (no
 * socket): the handshake timeout, the idle timeout (calls, a waiting writer
 * and activity keep a connection; pings do not), the frame timeout for a
 * peer that stops mid-frame, the ping rate per minute at its boundary, and
 * the maximum connection age with its drain and forced close. Timers are
 * real and short; `Date.now()` is scripted where the guards read it.
 */
import assert from "node:assert/strict";
import { type GuardLimits, Guards } from "../src/server/_guards.ts";
import { within } from "./_wait.ts";
import { withFakeTimers } from "./_timers.ts";

const OFF: GuardLimits = {
  handshakeTimeout: Infinity,
  idleTimeout: 0,
  frameTimeout: 0,
  maxPingsPerMinute: 2,
  maxConnectionAge: Infinity,
  closeTimeout: Infinity,
};

/** A scripted connection recording what the guards do to it. */
function connection() {
  const state = { closed: false, handshaken: false, calls: 0, waiting: false };
  const violations: [string, boolean][] = [];
  const events: string[] = [];
  const next = Promise.withResolvers<void>();
  let wake = next;
  const record = (event: string) => {
    events.push(event);
    const w = wake;
    wake = Promise.withResolvers<void>();
    w.resolve();
  };
  return {
    state,
    violations,
    events,
    /** Resolves at the next thing the guards do. */
    next: (what: string) => within(wake.promise, 5000, what),
    conn: {
      closed: () => state.closed,
      handshaken: () => state.handshaken,
      calls: () => state.calls,
      waiting: () => state.waiting,
      violation(reason: string, tell: boolean) {
        violations.push([reason, tell]);
        state.closed = true;
        record("violation");
      },
      tooOld: () => record("tooOld"),
      close() {
        state.closed = true;
        record("close");
      },
    },
  };
}

/** Runs `body` with `Date.now()` returning `reads` in turn (then the last). */
async function withReads(
  reads: number[],
  body: () => Promise<void> | void,
): Promise<void> {
  const original = Date.now;
  let last = reads[0]!;
  Date.now = () => (last = reads.shift() ?? last);
  try {
    await body();
  } finally {
    Date.now = original;
  }
}

Deno.test("guards: no preface within handshakeTimeout is a violation not told to the peer", async () => {
  const c = connection();
  const g = new Guards(c.conn, { ...OFF, handshakeTimeout: 5 });
  g.start();
  await c.next("the handshake timeout");
  assert.deepEqual(c.violations, [[
    "no valid preface within 5 ms (handshake timeout)",
    false,
  ]]);
  g.stop();
});

Deno.test("guards: a handshake in time cancels the handshake timeout; no idle timeout when it is 0", () => {
  const c = connection();
  const g = new Guards(c.conn, { ...OFF, handshakeTimeout: 5 });
  g.start();
  c.state.handshaken = true;
  g.handshaken();
  // Nothing is left armed: the test's timer sanitizer fails on a leftover.
  assert.deepEqual(c.violations, []);
});

Deno.test("guards: idle with no call for idleTimeout closes; a call in flight or a waiting writer keeps the connection", async () => {
  const c = connection();
  c.state.handshaken = true;
  const g = new Guards(c.conn, { ...OFF, idleTimeout: 5 });
  c.state.calls = 1;
  g.handshaken();
  // Re-armed while a call runs; the check counts the calls at each fire.
  let checks = 0;
  const calls = c.conn.calls;
  const checked = Promise.withResolvers<void>();
  c.conn.calls = () => {
    if (++checks === 4) {
      c.state.calls = 0;
      c.state.waiting = true;
    }
    if (checks === 8) {
      c.state.waiting = false;
      checked.resolve();
    }
    return calls();
  };
  await within(checked.promise, 5000, "idle checks with a call, then a writer");
  assert.deepEqual(c.violations, [], "kept while busy");
  await c.next("the idle timeout");
  assert.deepEqual(c.violations, [[
    "no call for 5 ms (idle timeout; pings do not count)",
    false,
  ]]);
  g.stop();
});

Deno.test("guards: activity pushes the idle timeout back by what is left of it", async () => {
  const c = connection();
  c.state.handshaken = true;
  // Date.now(): construction, handshaken(), then the first idle check
  // sees 3 ms of idleness (re-armed for the 97 ms left), the second 100.
  await withReads([1000, 1000, 1003, 1100], async () => {
    const g = new Guards(c.conn, { ...OFF, idleTimeout: 100 });
    g.handshaken();
    await c.next("the idle timeout");
    assert.deepEqual(c.violations, [[
      "no call for 100 ms (idle timeout; pings do not count)",
      false,
    ]]);
    g.stop();
  });
});

Deno.test("guards: a closed connection is left alone by the handshake, idle, frame and age timers", async () => {
  const c = connection();
  const g = new Guards(c.conn, {
    ...OFF,
    handshakeTimeout: 1,
    maxConnectionAge: 1,
    closeTimeout: 1,
  });
  c.state.closed = true;
  g.start();
  g.framing(true);
  const done = Promise.withResolvers<void>();
  setTimeout(done.resolve, 30); // sleep-ok: the 1 ms guards have fired by then
  await within(done.promise, 5000, "the guards' timers");
  assert.deepEqual(c.events, []);
  g.stop();
});

Deno.test("guards: an incomplete frame for frameTimeout is a violation told to the peer; a completed one is not", async () => {
  const c = connection();
  c.state.handshaken = true;
  const g = new Guards(c.conn, { ...OFF, frameTimeout: 5 });
  // Completed in time: the timer finds no partial frame.
  g.framing(true);
  g.frameRead();
  g.framing(true);
  g.framing(false);
  const quiet = Promise.withResolvers<void>();
  setTimeout(quiet.resolve, 20); // sleep-ok: the 5 ms frame timer fired by then
  await within(quiet.promise, 5000, "the frame timer");
  assert.deepEqual(c.violations, []);
  // Stuck mid-frame.
  await withReads([2000, 2005], async () => {
    g.framing(true);
    g.framing(true); // still the same partial frame: not restarted
    await c.next("the frame timeout");
  });
  assert.deepEqual(c.violations, [[
    "incomplete frame for 5 ms (frame timeout 5 ms)",
    true,
  ]]);
  g.stop();
});

Deno.test("guards: a frame timer that fires early for a later partial frame waits for the rest", async () => {
  const c = connection();
  // Partial frame at 3000; the timer fires seeing 2 ms (re-armed for 8),
  // then 12 ms.
  await withReads([3000, 3000, 3002, 3012], async () => {
    const g = new Guards(c.conn, { ...OFF, frameTimeout: 10 });
    g.framing(true);
    await c.next("the frame timeout");
    assert.deepEqual(c.violations, [[
      "incomplete frame for 12 ms (frame timeout 10 ms)",
      true,
    ]]);
    g.stop();
  });
});

Deno.test("guards: maxPingsPerMinute pings are allowed in a minute, one more is too many; a new minute starts over", async () => {
  const c = connection();
  const g = new Guards(c.conn, { ...OFF, maxPingsPerMinute: 2 });
  await withReads([
    100_000,
    100_000,
    100_001,
    159_999,
    160_000,
    160_000,
    160_001,
  ], () => {
    assert.equal(g.tooManyPings(), false);
    assert.equal(g.tooManyPings(), false);
    assert.equal(g.tooManyPings(), true, "the third in the minute");
    assert.equal(g.tooManyPings(), true, "+59 999 ms: the same minute");
    assert.equal(g.tooManyPings(), false, "a new minute at +60 000 ms");
    assert.equal(g.tooManyPings(), false);
    assert.equal(g.tooManyPings(), true);
  });
  const none = new Guards(c.conn, { ...OFF, maxPingsPerMinute: 0 });
  assert.equal(none.tooManyPings(), true, "0: no ping at all");
});

Deno.test("guards: past maxConnectionAge (±10 %) the connection is drained, then closed after closeTimeout", async () => {
  const c = connection();
  const random = Math.random;
  const ages: number[] = [];
  for (const r of [0, 1]) {
    Math.random = () => r;
    const g = new Guards(c.conn, {
      ...OFF,
      maxConnectionAge: 10,
      closeTimeout: 5,
    });
    try {
      g.start();
      await c.next("the drain");
      assert.deepEqual(c.events.splice(0), ["tooOld"]);
      await c.next("the forced close");
      assert.deepEqual(c.events.splice(0), ["close"]);
      ages.push(r);
    } finally {
      Math.random = random;
      c.state.closed = false;
      g.stop();
    }
  }
  assert.deepEqual(ages, [0, 1]);
  // No age timer when the age is 0 or Infinity (the sanitizer would see one).
  new Guards(c.conn, { ...OFF, maxConnectionAge: 0 }).start();
  new Guards(c.conn, { ...OFF }).start();
});

Deno.test("guards: stop() clears the drain's close timer too", async () => {
  const c = connection();
  const g = new Guards(c.conn, {
    ...OFF,
    maxConnectionAge: 1,
    closeTimeout: 60_000,
  });
  g.start();
  await c.next("the drain");
  g.stop();
  assert.deepEqual(c.events, ["tooOld"]);
});

Deno.test("guards: each timer is armed for exactly what is left (fake timers)", async () => {
  await withFakeTimers((timers, clock) => {
    const c = connection();
    const random = Math.random;
    Math.random = () => 0.25;
    const g = new Guards(c.conn, {
      ...OFF,
      handshakeTimeout: 50,
      idleTimeout: 100,
      frameTimeout: 40,
      maxConnectionAge: 1000,
      closeTimeout: 30,
    });
    try {
      g.start();
    } finally {
      Math.random = random;
    }
    // The handshake timer, and the age with its jitter: 1000 × (0.9 + 0.05).
    assert.deepEqual(timers.map((t) => Math.round(t.ms)), [50, 950]);
    clock.now += 20;
    c.state.handshaken = true;
    g.handshaken();
    assert.equal(timers[0]!.cleared, true, "the handshake timer is cleared");
    assert.equal(timers[2]!.ms, 100, "the idle timer");
    // 30 ms later there was activity; at the idle check 70 ms have passed
    // since then: re-armed for the 30 left.
    clock.now += 30;
    g.active();
    clock.now += 70;
    timers[2]!.fire();
    assert.equal(timers[3]!.ms, 30);
    // With a call in flight the full idle timeout again.
    c.state.calls = 1;
    clock.now += 30;
    timers[3]!.fire();
    assert.equal(timers[4]!.ms, 100);
    // The call ends (activity); 99 ms later, at the next check, no call:
    // re-armed for the 1 ms left, then closed.
    c.state.calls = 0;
    g.active();
    clock.now += 99;
    timers[4]!.fire();
    assert.equal(timers[5]!.ms, 1);
    assert.deepEqual(c.violations, []);
    // A partial frame: the frame timer; fired after 15 ms, re-armed for 25.
    g.framing(true);
    assert.equal(timers[6]!.ms, 40);
    clock.now += 15;
    timers[6]!.fire();
    assert.equal(timers[7]!.ms, 25);
    assert.deepEqual(c.violations, []);
    // The age: drained, then closed after closeTimeout.
    timers[1]!.fire();
    assert.deepEqual(c.events, ["tooOld"]);
    assert.equal(timers[8]!.ms, 30);
    g.stop();
    assert.equal(timers[8]!.cleared, true, "stop() clears the close timer");
    assert.equal(timers[7]!.cleared, true, "and the frame timer");
    timers[5]!.fire();
    assert.deepEqual(c.violations, [[
      "no call for 100 ms (idle timeout; pings do not count)",
      false,
    ]]);
  });
});

Deno.test("guards: one frame timer at a time, none when the frame timeout is 0 or the connection closed; a frame read in time is no violation (fake timers)", async () => {
  await withFakeTimers((timers, clock) => {
    const c = connection();
    const g = new Guards(c.conn, { ...OFF, frameTimeout: 40 });
    g.framing(true);
    assert.equal(timers.length, 1);
    g.frameRead(); // the frame completed
    g.framing(true); // the next one is partial: the same timer serves
    assert.equal(timers.length, 1, "no second frame timer");
    g.frameRead();
    clock.now += 100;
    timers[0]!.fire();
    assert.deepEqual(c.violations, [], "read in time");
    assert.equal(timers.length, 1, "nothing partial: not re-armed");
    // No frame timeout, or a closed connection: no timer at all.
    new Guards(c.conn, { ...OFF, frameTimeout: 0 }).framing(true);
    c.state.closed = true;
    new Guards(c.conn, { ...OFF, frameTimeout: 40 }).framing(true);
    assert.equal(timers.length, 1);
    g.stop();
  });
});
