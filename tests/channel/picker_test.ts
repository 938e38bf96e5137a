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
