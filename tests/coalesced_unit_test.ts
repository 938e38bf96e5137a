/**
 * Unit tests of `coalesced` (`src/zookeeper/_coalesced.ts`), which serializes
 * the registration's and the membership's runs: calls during a run coalesce
 * into exactly one more run after it, every call is answered by a run that
 * started after it, and no call, at any microtask offset around the end of a
 * run, starts a second run beside the queued one. No I/O. The real-ZooKeeper
 * consequence (one member node) is in not_serving_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { coalesced } from "../src/zookeeper/_coalesced.ts";

/** A task whose runs end when the test says so; counts and overlaps. */
function gatedTask() {
  const state = { runs: 0, active: 0, maxActive: 0 };
  const gates: PromiseWithResolvers<void>[] = [];
  const task = async () => {
    state.runs++;
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    const gate = Promise.withResolvers<void>();
    gates.push(gate);
    try {
      await gate.promise;
    } finally {
      state.active--;
    }
  };
  /** Ends the oldest unfinished run. */
  const finish = () => gates.shift()!.resolve();
  return { state, task, finish, gates };
}

const hops = async (n: number) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

Deno.test("coalesced: the first call starts a run at once, and its promise settles when that run ends", async () => {
  const { state, task, finish } = gatedTask();
  const run = coalesced(task);
  let settled = false;
  const first = run().then(() => settled = true);
  assert.equal(state.runs, 1);
  await hops(5);
  assert.equal(settled, false);
  finish();
  await first;
  assert.equal(state.runs, 1);
});

Deno.test("coalesced: calls during a run coalesce into exactly one more run, after it", async () => {
  const { state, task, finish, gates } = gatedTask();
  const run = coalesced(task);
  const first = run();
  const later = [run(), run(), run()];
  assert.equal(later[0], later[1], "the calls share one promise");
  assert.equal(later[1], later[2]);
  assert.equal(state.runs, 1, "nothing more starts while the run runs");
  finish();
  await first;
  await hops(5);
  assert.equal(state.runs, 2, "one more run");
  assert.equal(gates.length, 1);
  let settled = false;
  const done = later[0]!.then(() => settled = true);
  await hops(5);
  assert.equal(settled, false, "the calls wait for the run after theirs");
  finish();
  await done;
  assert.equal(state.runs, 2);
  assert.equal(state.maxActive, 1);
});

Deno.test("coalesced: a call at any microtask offset after a run ends never starts a second run beside the queued one", async () => {
  for (let offset = 0; offset < 12; offset++) {
    const { state, task, finish, gates } = gatedTask();
    const run = coalesced(task);
    const first = run();
    const queued = run(); // the run after the first
    finish();
    await first;
    // `first` settles after its run cleared the slot; the queued run starts
    // a few microtasks later: calls in between must join it.
    for (let i = 0; i < offset; i++) {
      await Promise.resolve();
      void run();
    }
    const last = run();
    await hops(10);
    assert.equal(state.maxActive, 1, `one run at a time (offset ${offset})`);
    // Drain: every run, queued or requested, ends.
    while (gates.length > 0) {
      finish();
      await hops(10);
    }
    await Promise.all([queued, last]);
    assert.equal(state.maxActive, 1, `one run at a time (offset ${offset})`);
    assert.ok(state.runs <= 3, `no extra runs (offset ${offset})`);
  }
});

Deno.test("coalesced: a call after the runs ended starts a new run, and a run that failed still lets the next one start", async () => {
  let runs = 0;
  const run = coalesced(() => {
    runs++;
    return runs === 1 ? Promise.reject(new Error("boom")) : Promise.resolve();
  });
  const first = run();
  const second = run();
  await assert.rejects(first, /boom/);
  await second;
  assert.equal(runs, 2);
  await run();
  assert.equal(runs, 3);
});
