/**
 * The picker as a unit, on a real `SubchannelPool` (no connection is
 * opened): untried endpoints first, ejected ones only when nothing else is
 * left, draining ones never; every attempt counted in flight until its
 * `onCallEnded`, which books answers on the endpoint and tells every
 * subscriber the outcome; a retired endpoint let go after its last attempt.
 */
import assert from "node:assert/strict";
import { createBalancer } from "../../src/channel/balancer.ts";
import {
  type CallOutcome,
  type OutcomeListener,
  Picker,
} from "../../src/channel/picker.ts";
import { SubchannelPool } from "../../src/channel/pool.ts";
import type { Subchannel } from "../../src/channel/subchannel.ts";

const HOST = "127.0.0.1";

/** A pool of `ports` (never connected) and a round-robin picker over it. */
function setup(ports: number[]) {
  const retired: Subchannel[] = [];
  const pool = new SubchannelPool({}, {
    onBroken() {},
    onGoaway() {},
    onReregistered() {},
    onRetired: (subchannel) => retired.push(subchannel),
  });
  pool.apply({
    added: new Map(ports.map((port) => [`m${port}`, { host: HOST, port }])),
    removed: [],
  }, () => true);
  const picker = new Picker(pool, createBalancer("round-robin"));
  const heard: [string, CallOutcome, boolean][] = [];
  const listener: OutcomeListener = {
    onCallEnded: (subchannel, outcome, latency) =>
      heard.push([subchannel.key, outcome, latency !== undefined]),
  };
  picker.subscribe(listener);
  return {
    pool,
    picker,
    heard,
    retired,
    [Symbol.asyncDispose]: () => pool.close(picker.retired),
  };
}

Deno.test("pick() prefers untried endpoints, falls back to ejected ones, never picks a draining one", async () => {
  await using t = setup([9001, 9002, 9003]);
  const [a, b, c] = [...t.pool.subchannels()] as [
    Subchannel,
    Subchannel,
    Subchannel,
  ];
  const tried = new Set([a.key, b.key]);
  for (let i = 0; i < 6; i++) {
    const pick = t.picker.pick(tried)!;
    assert.equal(pick.subchannel, c, "the untried one");
    pick.onCallEnded("local");
  }
  // Every one tried: any of them again.
  tried.add(c.key);
  assert.ok(t.picker.pick(tried) !== undefined);
  // b and c ejected, a draining: an ejected one rather than no endpoint.
  a.draining = true;
  b.ejected = true;
  c.ejected = true;
  t.pool.changed();
  const seen = new Set<Subchannel>();
  for (let i = 0; i < 6; i++) seen.add(t.picker.pick(undefined)!.subchannel);
  assert.deepEqual([...seen].map((s) => s.key).sort(), [b.key, c.key]);
  assert.equal(t.picker.hasUntried(new Set([b.key]), c), false);
  assert.equal(t.picker.hasUntried(new Set([b.key])), true);
  // Only draining endpoints: none.
  b.draining = true;
  c.draining = true;
  t.pool.changed();
  assert.equal(t.picker.pick(undefined), undefined);
});

Deno.test("onCallEnded() counts the attempt out, books answers on the endpoint and tells every subscriber", async () => {
  await using t = setup([9001]);
  const outcomes: CallOutcome[] = [
    "ok",
    "answered",
    "deadline",
    "may-have-run",
    "not-run",
    "cancelled",
    "local",
  ];
  for (const outcome of outcomes) {
    const pick = t.picker.pick(undefined)!;
    const before = pick.subchannel.calls;
    assert.equal(pick.subchannel.candidate.inFlight, 1, outcome);
    pick.onCallEnded(outcome);
    assert.equal(pick.subchannel.candidate.inFlight, 0, outcome);
    // Results and remote errors are answers: the endpoint works.
    const answered = outcome === "ok" || outcome === "answered";
    assert.equal(pick.subchannel.calls, before + (answered ? 1 : 0), outcome);
  }
  assert.deepEqual(t.heard.map(([, outcome]) => outcome), outcomes);
  // A latency only for answers: the first is measured (the endpoint has
  // none yet), failures never are.
  assert.equal(t.heard[0]![2], true);
  assert.deepEqual(t.heard.slice(2).map(([, , latency]) => latency), [
    false,
    false,
    false,
    false,
    false,
  ]);
  // report(): an outcome outside an attempt (a failed connect).
  const [subchannel] = [...t.pool.subchannels()] as [Subchannel];
  t.picker.report(subchannel, "connect");
  assert.deepEqual(t.heard.at(-1), [subchannel.key, "connect", false]);
});

Deno.test("a listener that needs every latency gets one for every answer; others get a sample", async () => {
  await using t = setup([9001]);
  const sampled = t.heard;
  // Book one latency first: from then on, one attempt in eight is measured.
  t.picker.pick(undefined)!.onCallEnded("ok");
  sampled.length = 0;
  for (let i = 0; i < 16; i++) t.picker.pick(undefined)!.onCallEnded("ok");
  const measured = sampled.filter(([, , latency]) => latency).length;
  assert.ok(measured >= 1 && measured <= 3, `${measured} of 16 measured`);
  const all: number[] = [];
  t.picker.subscribe({
    measureAll: true,
    onCallEnded: (_s, _o, latency) => {
      if (latency !== undefined) all.push(latency);
    },
  });
  for (let i = 0; i < 16; i++) t.picker.pick(undefined)!.onCallEnded("ok");
  assert.equal(all.length, 16);
});

Deno.test("an endpoint that leaves the membership is let go after its last attempt ends", async () => {
  await using t = setup([9001]);
  const pick = t.picker.pick(undefined)!;
  t.pool.apply({ added: new Map(), removed: ["m9001"] }, () => true);
  assert.deepEqual(t.retired, [pick.subchannel]);
  t.picker.retire(pick.subchannel);
  assert.equal(t.picker.retired.has(pick.subchannel), true, "in flight");
  pick.onCallEnded("ok");
  assert.equal(t.picker.retired.has(pick.subchannel), false, "let go");
});

/** Runs `body` with `performance.now()` reading `clock.now`. */
async function withClock(
  body: (clock: { now: number }) => Promise<void> | void,
): Promise<void> {
  const clock = { now: 1000 };
  const original = performance.now;
  performance.now = () => clock.now;
  try {
    await body(clock);
  } finally {
    performance.now = original;
  }
}

Deno.test("latency: from the pick to the first answered() (or the end); only answers have one; every 8th attempt is sampled", async () => {
  await withClock(async (clock) => {
    await using t = setup([9001]);
    const got: (number | undefined)[] = [];
    t.picker.subscribe({ onCallEnded: (_s, _o, l) => got.push(l) });
    // No latency booked yet: measured, from the pick to answered().
    const first = t.picker.pick(undefined)!;
    clock.now += 30;
    first.answered();
    clock.now += 50;
    first.answered(); // a second answered() changes nothing
    first.onCallEnded("ok");
    assert.deepEqual(got, [30]);
    // A remote error is an answer too: measured to the end without answered().
    const second = t.picker.pick(undefined)!;
    clock.now += 12;
    second.onCallEnded("answered");
    assert.deepEqual(got, [30, undefined], "latency booked: now sampled");
    // From now on one attempt in eight: the 8th and the 16th.
    got.length = 0;
    for (let i = 0; i < 16; i++) {
      const pick = t.picker.pick(undefined)!;
      clock.now += 7;
      pick.onCallEnded("ok");
    }
    assert.deepEqual(
      got.map((l, i) => l === undefined ? undefined : i),
      got.map((_, i) => i === 6 || i === 14 ? i : undefined),
    );
    assert.deepEqual(got.filter((l) => l !== undefined), [7, 7]);
    // A failure is never measured, even when sampled or answered().
    got.length = 0;
    t.picker.subscribe({ measureAll: true, onCallEnded() {} });
    const failed = t.picker.pick(undefined)!;
    failed.answered();
    clock.now += 5;
    failed.onCallEnded("may-have-run");
    assert.deepEqual(got, [undefined]);
  });
});

Deno.test("hasUntried(): an endpoint not tried, not draining and not the one excluded", async () => {
  await using t = setup([9001, 9002]);
  const [a, b] = [...t.pool.subchannels()] as [Subchannel, Subchannel];
  assert.equal(t.picker.hasUntried(undefined), true);
  assert.equal(t.picker.hasUntried(new Set([a.key])), true);
  assert.equal(t.picker.hasUntried(new Set([a.key, b.key])), false);
  assert.equal(t.picker.hasUntried(new Set([a.key]), b), false);
  assert.equal(t.picker.hasUntried(undefined, a), true);
  b.draining = true;
  assert.equal(t.picker.hasUntried(new Set([a.key])), false);
  // An ejected endpoint still counts: it may be picked as a last resort.
  b.draining = false;
  b.ejected = true;
  assert.equal(t.picker.hasUntried(new Set([a.key])), true);
});

Deno.test("pick(): the balancer chooses among several; none when the pool no longer knows the candidate", async () => {
  await using t = setup([9001, 9002, 9003]);
  const keys = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const pick = t.picker.pick(new Set())!;
    keys.add(pick.subchannel.key);
    pick.onCallEnded("local");
  }
  assert.equal(keys.size, 3, "round-robin over all three");
  // Every attempt is counted in flight until it ends.
  const picks = [0, 1, 2].map(() => t.picker.pick(undefined)!);
  assert.deepEqual(
    [...t.pool.subchannels()].map((s) => s.candidate.inFlight),
    [1, 1, 1],
  );
  for (const p of picks) p.onCallEnded("ok");
  const stranger = new Picker({
    usable: t.pool.usable,
    all: t.pool.all,
    of: () => undefined,
    subchannels: () => t.pool.subchannels(),
  }, createBalancer("round-robin"));
  assert.equal(stranger.pick(undefined), undefined);
});

Deno.test("retire(): an endpoint with nothing in flight is disconnected at once; others when their last attempt ends", async () => {
  await using t = setup([9001, 9002]);
  const [a, b] = [...t.pool.subchannels()] as [Subchannel, Subchannel];
  const disconnected: string[] = [];
  for (const s of [a, b]) {
    s.disconnect = () => {
      disconnected.push(s.key);
      return Promise.resolve();
    };
  }
  t.picker.retire(a);
  assert.deepEqual(disconnected, [a.key]);
  assert.equal(t.picker.retired.has(a), false);
  const p1 = t.picker.pick(new Set([a.key]))!;
  const p2 = t.picker.pick(new Set([a.key]))!;
  assert.equal(p1.subchannel, b);
  t.pool.apply({ added: new Map(), removed: ["m9002"] }, () => true);
  t.picker.retire(b);
  assert.equal(t.picker.retired.has(b), true);
  p1.onCallEnded("ok");
  assert.deepEqual(disconnected, [a.key], "one attempt still in flight");
  assert.equal(t.picker.retired.has(b), true);
  p2.onCallEnded("deadline");
  assert.deepEqual(disconnected, [a.key, b.key]);
  assert.equal(t.picker.retired.has(b), false);
});

Deno.test("report() and onCallEnded() tell every subscriber, in order", async () => {
  await using t = setup([9001]);
  const order: string[] = [];
  t.picker.subscribe(
    { onCallEnded: (_s, o) => order.push(`1:${o}`) },
    { onCallEnded: (_s, o) => order.push(`2:${o}`) },
  );
  const [s] = [...t.pool.subchannels()] as [Subchannel];
  t.picker.report(s, "connect");
  t.picker.pick(undefined)!.onCallEnded("not-run");
  assert.deepEqual(order, ["1:connect", "2:connect", "1:not-run", "2:not-run"]);
  assert.equal(s.calls, 0, "neither is an answer");
});

Deno.test("pick(): an ejected endpoint is not picked while a usable one is left", async () => {
  await using t = setup([9001, 9002, 9003]);
  const [a, b, c] = [...t.pool.subchannels()] as [
    Subchannel,
    Subchannel,
    Subchannel,
  ];
  b.ejected = true;
  c.ejected = true;
  t.pool.changed();
  for (let i = 0; i < 6; i++) {
    const pick = t.picker.pick(undefined)!;
    assert.equal(pick.subchannel, a, `attempt ${i}`);
    pick.onCallEnded("ok");
  }
});

Deno.test("latency: a remote error is an answer and is measured like a result", async () => {
  await withClock(async (clock) => {
    await using t = setup([9001]);
    const got: (number | undefined)[] = [];
    t.picker.subscribe({
      measureAll: true,
      onCallEnded: (_s, _o, l) => got.push(l),
    });
    for (const outcome of ["ok", "answered", "not-run"] as const) {
      const pick = t.picker.pick(undefined)!;
      clock.now += 9;
      pick.onCallEnded(outcome);
    }
    assert.deepEqual(got, [9, 9, undefined]);
  });
});

Deno.test("unmeasured attempts on one endpoint share a Pick, yet each is counted in flight and ends on its own", async () => {
  await using t = setup([9001]);
  // Book a latency: from then on only one attempt in eight is measured.
  t.picker.pick(undefined)!.onCallEnded("ok");
  t.heard.length = 0;
  const picks = Array.from({ length: 7 }, () => t.picker.pick(undefined)!);
  const [first] = picks as [typeof picks[0]];
  const subchannel = first.subchannel;
  // Seven in flight, all unmeasured: one object (no object per attempt).
  assert.equal(subchannel.candidate.inFlight, 7);
  assert.equal(new Set(picks).size, 1);
  // The eighth is measured: an object of its own, in flight with the others.
  const measured = t.picker.pick(undefined)!;
  assert.notEqual(measured, first);
  assert.equal(subchannel.candidate.inFlight, 8);
  // The endpoint leaves: it is let go only after its last attempt ends.
  t.pool.apply({ added: new Map(), removed: ["m9001"] }, () => true);
  t.picker.retire(subchannel);
  // Each ends once, with its own outcome; answered() measures nothing.
  const outcomes: CallOutcome[] = [
    "ok",
    "deadline",
    "answered",
    "ok",
    "not-run",
    "ok",
    "local",
  ];
  for (const [i, pick] of picks.entries()) {
    pick.answered();
    pick.onCallEnded(outcomes[i]!);
    assert.equal(subchannel.candidate.inFlight, 7 - i);
  }
  assert.deepEqual(
    t.heard,
    outcomes.map((outcome) => [subchannel.key, outcome, false]),
  );
  assert.equal(t.picker.retired.has(subchannel), true, "one still in flight");
  measured.onCallEnded("ok");
  assert.equal(subchannel.candidate.inFlight, 0);
  assert.deepEqual(t.heard.at(-1), [subchannel.key, "ok", true]);
  assert.equal(t.picker.retired.has(subchannel), false, "let go");
});
