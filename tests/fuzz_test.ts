/**
 * Bounded fuzzing of the server with fast-check (issue 9): random server
 * limits, mutated frame streams on raw sockets, and call/cancel interleavings
 * on a real connection. Asserts that nothing crashes (an uncaught error fails
 * the test), that memory stays bounded and that a good client is served
 * throughout. Runs for at most ~6 s (plus the run under way). The decoder's
 * cross-connection disclosure property (issue 21) is fuzzed in
 * decoder_disclosure_test.ts, its value model in value_model_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { serve } from "../src/server/server.ts";
import { Connection } from "../src/client/connection.ts";
import { type CallContext, withContext } from "../src/server/call_context.ts";
import { RpcError } from "../src/errors.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import {
  concat,
  delay,
  HELLO,
  readToEnd,
  requestPayload,
  within,
} from "./_core_helpers.ts";

const HOST = "127.0.0.1";
const MIB = 1024 * 1024;

/** Hostile params become a delay of 0–50 ms. */
function clamp(ms: unknown): number {
  return Math.max(0, Math.min(Number(ms) || 0, 50));
}

const handlers = {
  echo: (x: unknown) => x,
  async slow(ms: number): Promise<string> {
    // sleep-ok: handler work (a slow method), not a wait for an event
    await delay(clamp(ms)); // ignores cancellation
    return "slow";
  },
  listen: withContext((ctx: CallContext, ms: number) =>
    new Promise((resolve, reject) => {
      // sleep-ok: handler work (a slow method), not a wait for an event
      const timer = setTimeout(resolve, clamp(ms), "done");
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      }, { once: true });
    })
  ),
  boom(): never {
    throw Object.create(null);
  },
};
const METHODS = ["echo", "slow", "listen", "boom", "nope"];

const limits = fc.record({
  maxFrameSize: fc.integer({ min: 64, max: 64 * 1024 }),
  maxInFlightPerConnection: fc.integer({ min: 1, max: 16 }),
  maxPingsPerMinute: fc.integer({ min: 1, max: 50 }),
  frameTimeout: fc.integer({ min: 50, max: 500 }),
  // Long enough for the good client, idle between its calls.
  idleTimeout: fc.integer({ min: 3000, max: 10_000 }),
});

/** A valid client frame. */
const frame = fc.oneof(
  fc.tuple(
    fc.integer({ min: 0, max: 20 }),
    fc.constantFrom(...METHODS),
    fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  ).map(([id, method, params]) =>
    encodeFrame(
      FrameType.Request,
      id,
      requestPayload(method, jsonCodec.encode(params)),
    )
  ),
  fc.integer({ min: 0, max: 20 }).map((id) =>
    encodeFrame(FrameType.Cancel, id)
  ),
  fc.uint8Array({ maxLength: 80 }).map((p) =>
    encodeFrame(FrameType.Ping, 1, p)
  ),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 }))
    .map(([type, p]) => encodeFrame(type as FrameType, 0, p)),
);

/** A mutation applied to the concatenated stream. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip"), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant("truncate"), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert"),
    at: fc.nat(),
    bytes: fc.uint8Array({ maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant("length"), at: fc.nat(), value: fc.nat() }),
);

type Mutation =
  | { kind: "flip"; at: number; value: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "length"; at: number; value: number };

function mutate(stream: Uint8Array, mutations: Mutation[]): Uint8Array {
  let out = stream;
  for (const m of mutations) {
    if (out.length === 0) break;
    const at = HELLO.length + m.at % Math.max(1, out.length - HELLO.length);
    switch (m.kind) {
      case "flip":
        out = out.slice();
        out[Math.min(at, out.length - 1)] = m.value;
        break;
      case "truncate":
        out = out.subarray(0, at);
        break;
      case "insert":
        out = concat(out.subarray(0, at), m.bytes, out.subarray(at));
        break;
      case "length":
        if (at + 4 <= out.length) {
          out = out.slice();
          new DataView(out.buffer, out.byteOffset).setUint32(at, m.value);
        }
        break;
    }
  }
  return out;
}

/** One call of the interleaving: cancel after `cancelAfter` ms (or never). */
const call = fc.record({
  method: fc.constantFrom(...METHODS),
  ms: fc.integer({ min: 0, max: 40 }),
  cancelAfter: fc.option(fc.integer({ min: 0, max: 30 })),
  timeout: fc.option(fc.integer({ min: 1, max: 60 })),
});

Deno.test("fuzz: random limits, mutated frames and call/cancel interleavings never disturb a good client", async () => {
  const rssBefore = Deno.memoryUsage().rss / MIB;
  const stopAt = Date.now() + 6_000;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  /** A delay whose timer is cleared at the end of the test. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      limits,
      fc.array(fc.array(frame, { maxLength: 12 }), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.array(mutation, { maxLength: 4 }),
      fc.array(call, { maxLength: 24 }),
      fc.integer({ min: 1, max: 64 }),
      async (options, streams, mutations, calls, chunk) => {
        // Bounded in time: once the budget is spent, the remaining runs
        // are no-ops (fast-check's own time limit would abandon a run
        // mid-way, leaving its sockets open).
        if (Date.now() > stopAt) return;
        runs++;
        await using server = serve(handlers, {
          hostname: HOST,
          onError: () => {},
          closeTimeout: 200,
          ...options,
        });
        const endpoint = { hostname: HOST, port: server.addr.port };
        await using good = await Connection.connect(endpoint);
        // Hostile raw connections, each a mutated stream in small writes.
        const hostile = streams.map(async (frames) => {
          const conn = await Deno.connect(endpoint);
          const bytes = mutate(
            concat(HELLO, ...frames),
            mutations as Mutation[],
          );
          const reading = readToEnd(conn);
          try {
            for (let o = 0; o < bytes.length; o += chunk) {
              await conn.write(bytes.subarray(o, o + chunk));
            }
          } catch {
            // closed by the server: fine
          }
          // Give the server a moment to answer, then hang up.
          await Promise.race([reading, pause(30)]);
          conn.close();
          await reading;
        });
        // Call/cancel interleavings on a real connection.
        await using conn = await Connection.connect(endpoint);
        const settled = calls.map(async (c) => {
          const controller = new AbortController();
          let timer: ReturnType<typeof setTimeout> | undefined;
          if (c.cancelAfter !== null) {
            timer = setTimeout(() => controller.abort(), c.cancelAfter);
          }
          try {
            await conn.call(c.method, [c.ms], {
              signal: controller.signal,
              ...(c.timeout === null ? {} : { timeout: c.timeout }),
            });
          } catch (e) {
            // Every failure is a clear zkrpc error (or the caller's).
            assert.ok(e instanceof RpcError, String(e));
          } finally {
            clearTimeout(timer);
          }
        });
        await within(Promise.all(settled), 10_000, "calls settle");
        assert.equal(await good.call("echo", [runs], { timeout: 5000 }), runs);
        await within(Promise.all(hostile), 10_000, "hostile connections end");
        assert.equal(
          await good.call("echo", ["after"], { timeout: 5000 }),
          "after",
        );
      },
    ),
    { numRuns: 200 },
  );
  for (const timer of timers) clearTimeout(timer);
  const growth = Deno.memoryUsage().rss / MIB - rssBefore;
  assert.ok(runs > 0);
  assert.ok(
    growth < 200,
    `RSS grew by ${growth.toFixed(0)} MiB over ${runs} runs`,
  );
});
