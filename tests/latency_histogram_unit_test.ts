/**
 * The bench's latency recorder (`bench/stats.ts` `LatencyHistogram`): its
 * percentiles agree with exact ones on the sorted sample within the bucket
 * width (1.6 %), count, max and mean are exact, and the empty case is NaN.
 *
 * @module
 */
import assert from "node:assert/strict";
import { LatencyHistogram, quantile } from "../bench/stats.ts";

Deno.test("LatencyHistogram: percentiles within 1.6 % of the exact ones, count, max and mean exact", () => {
  // A deterministic spread from 5 µs to 50 ms, in a shuffled order.
  const samples: number[] = [];
  let x = 12345;
  for (let i = 0; i < 20_000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    samples.push(0.005 * Math.exp((x / 2147483648) * Math.log(10_000)));
  }
  const histogram = new LatencyHistogram();
  for (const sample of samples) histogram.record(sample);
  const got = histogram.summary();
  const sorted = Float64Array.from(samples).sort();
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  assert.equal(got.count, sorted.length);
  assert.equal(got.max, sorted[sorted.length - 1]);
  assert.ok(Math.abs(got.mean - mean) < 1e-9 * mean);
  const exact = { p50: 0.5, p90: 0.9, p99: 0.99, p999: 0.999 };
  for (
    const [key, q] of Object.entries(exact) as [keyof typeof exact, number][]
  ) {
    const want = quantile(sorted, q);
    const error = Math.abs(got[key] / want - 1);
    assert.ok(error <= 0.016, `${key}: ${got[key]} vs ${want}`);
  }
});

Deno.test("LatencyHistogram: ranks are nearest-rank, zero and huge values are kept, nothing recorded is NaN", () => {
  const empty = new LatencyHistogram().summary();
  assert.ok(Number.isNaN(empty.p50) && Number.isNaN(empty.max));
  const h = new LatencyHistogram();
  for (let i = 0; i < 999; i++) h.record(0.1);
  h.record(500_000); // beyond the last bucket: counted, max exact
  const s = h.summary();
  assert.equal(s.count, 1000);
  const near = (v: number, want: number) => Math.abs(v / want - 1) <= 0.016;
  assert.ok(near(s.p999, 0.1), `the 999th of 1000 is the last 0.1: ${s.p999}`);
  assert.equal(s.max, 500_000);
  h.record(0);
  h.record(-1); // a clock step back counts as 0
  assert.equal(h.summary().count, 1002);
  assert.ok(near(h.summary().p50, 0.1));
});
