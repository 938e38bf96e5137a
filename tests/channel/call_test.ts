/**
 * One `ChannelCall` per call: its attempts are numbered across its hedges
 * (what interceptors see as `attempt`), its hedges share one tried set (each
 * goes to another endpoint), and a first attempt that fails before it was
 * sent continues in the same call on another endpoint.
 */
import assert from "node:assert/strict";
import {
  DistributedChannel,
  serve,
  StaticMembership,
  withContext,
} from "../../mod.ts";
import type { ClientCall } from "../../extend.ts";
import { closedPort } from "../_core_helpers.ts";
import { within } from "../_wait.ts";

const HOST = "127.0.0.1";

Deno.test("a hedged call numbers its attempts across hedges and sends each to another endpoint", async () => {
  // One endpoint never answers (until cancelled); the other answers.
  await using hung = serve({
    who: withContext((ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), {
          once: true,
        })
      )
    ),
  }, { hostname: HOST, port: 0 });
  await using live = serve({ who: () => "live" }, { hostname: HOST, port: 0 });
  const seen: ClientCall[] = [];
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: hung.addr.port },
      { host: HOST, port: live.addr.port },
    ]),
    // The first attempt always goes to the hung endpoint: only the hedge
    // can answer.
    balancer: {
      pick: (candidates) =>
        candidates.find((c) => c.key === `${HOST}:${hung.addr.port}`),
    },
    hedging: { delay: 0, maxHedges: 1 },
    interceptors: [(call, next) => {
      seen.push({ ...call });
      return next();
    }],
    timeout: 30_000,
  });
  for (let i = 0; i < 4; i++) {
    seen.length = 0;
    assert.equal(
      await within(
        channel.call("who", [], { idempotent: true }),
        10_000,
        "a hedged call",
      ),
      "live",
    );
    // The hedge is attempt 2, on the other endpoint.
    assert.deepEqual(seen.map((call) => [call.attempt, call.target]), [
      [1, `${HOST}:${hung.addr.port}`],
      [2, `${HOST}:${live.addr.port}`],
    ]);
  }
});

Deno.test("a first attempt refused before it was sent continues in the same call on the next endpoint", async () => {
  await using live = serve({ who: () => "live" }, { hostname: HOST, port: 0 });
  const seen: ClientCall[] = [];
  const refused = closedPort();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: refused },
      { host: HOST, port: live.addr.port },
    ]),
    balancer: "round-robin",
    interceptors: [(call, next) => {
      seen.push({ ...call });
      return next();
    }],
    maxAttempts: 1, // a refused connect does not count
  });
  for (let i = 0; i < 4; i++) {
    assert.equal(
      await within(channel.call("who", []), 10_000, "a call"),
      "live",
    );
  }
  // Only the live endpoint was ever sent to.
  assert.deepEqual(
    [...new Set(seen.map((call) => call.target))],
    [`${HOST}:${live.addr.port}`],
  );
});
