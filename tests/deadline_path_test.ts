/**
 * One deadline from the caller to the handler (issue 24): a call's
 * `timeout`, `parent: null`, an inherited deadline, `Infinity` and timeouts
 * beyond 2^31 ms travel through a `Connection` (with and without client and
 * server interceptors) as one absolute `Deadline`, and the handler's
 * `ctx.deadline` is that instant. Bounds come from the same clock on both
 * sides: the server sees `arrival + ceil(deadline - written)`, so the
 * deadline it sees lies between the caller's and the caller's plus the
 * trip — no wall-clock figure is asserted.
 */
import assert from "node:assert/strict";
import { Connection, MAX_WIRE_DEADLINE } from "../src/client/connection.ts";
import { serve } from "../src/server/server.ts";
import { withContext } from "../src/server/call_context.ts";
import type {
  ClientInterceptor,
  ServerInterceptor,
} from "../src/_interceptors.ts";
import { MAX_TIMER_DELAY } from "../src/_async.ts";
import { deadlineSeen } from "./_core_helpers.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";
const WAIT = 10_000;

const passClient: ClientInterceptor = (_call, next) => next();
const passServer: ServerInterceptor = (_call, next) => next();

/** A nested call the outer handler makes, as options to `call()`. */
type Nested = { timeout?: number; parent?: null };

/** What the outer handler reports: its deadline and the inner's. */
interface Seen {
  outer: number | null;
  inner: number | null;
}

/**
 * A caller connected to an outer server whose `nest` handler calls an inner
 * server's `seen` over its own connection; both report `ctx.deadline`.
 */
async function path(intercepted: boolean): Promise<
  AsyncDisposable & {
    call(timeout: number | undefined, nested: Nested): Promise<Seen>;
  }
> {
  const serverOptions = {
    hostname: HOST,
    ...(intercepted ? { interceptors: [passServer] } : {}),
  };
  const clientOptions = intercepted ? { interceptors: [passClient] } : {};
  const inner = serve({
    seen: withContext((ctx) => deadlineSeen(ctx)),
  }, serverOptions);
  const toInner = await Connection.connect(
    { hostname: HOST, port: inner.addr.port },
    clientOptions,
  );
  const outer = serve({
    nest: withContext(async (ctx, nested: Nested) => ({
      outer: deadlineSeen(ctx),
      inner: await toInner.call("seen", [], nested),
    })),
  }, serverOptions);
  const caller = await Connection.connect(
    { hostname: HOST, port: outer.addr.port },
    clientOptions,
  );
  return {
    call: (timeout, nested) =>
      within(
        caller.call(
          "nest",
          [nested],
          timeout === undefined ? {} : { timeout },
        ) as Promise<Seen>,
        WAIT,
        `nest with timeout ${timeout} and ${JSON.stringify(nested)}`,
      ),
    async [Symbol.asyncDispose]() {
      caller.close();
      toInner.close();
      await Promise.all([caller.finished, toInner.finished]);
      await Promise.all([outer.close(), inner.close()]);
    },
  };
}

/**
 * Asserts that `seen` is the deadline `timeout` ms after a call made
 * between `before` and `after`: the server sees at least the caller's
 * deadline, and at most that plus the trip (and 1 ms of rounding up).
 */
function assertDeadline(
  seen: number | null,
  timeout: number,
  before: number,
  after: number,
  what: string,
): void {
  assert.ok(seen !== null, `${what}: the server saw no deadline`);
  assert.ok(
    seen >= before + timeout && seen <= after + timeout + 1,
    `${what}: saw ${seen}, expected within [${before + timeout}, ${
      after + timeout + 1
    }]`,
  );
}

for (const intercepted of [false, true]) {
  const how = intercepted ? "with interceptors" : "without interceptors";

  Deno.test(`${how}: timeout, Infinity and timeouts beyond 2^31 ms reach ctx.deadline as one instant`, async () => {
    await using calls = await path(intercepted);
    for (
      const timeout of [
        5000,
        MAX_TIMER_DELAY + 1,
        2 ** 31 + 5,
        MAX_WIRE_DEADLINE,
      ]
    ) {
      const before = Date.now();
      const seen = await calls.call(timeout, { parent: null });
      const after = Date.now();
      assertDeadline(seen.outer, timeout, before, after, `timeout ${timeout}`);
      assert.equal(seen.inner, null, "parent: null inherits nothing");
    }
    for (const timeout of [Infinity, MAX_WIRE_DEADLINE + 1, undefined]) {
      assert.deepEqual(
        await calls.call(timeout, {}),
        { outer: null, inner: null },
        `timeout ${timeout}: no deadline on the wire, none inherited`,
      );
    }
  });

  Deno.test(`${how}: a nested call inherits the handler's deadline, capped by its own timeout`, async () => {
    await using calls = await path(intercepted);
    for (const timeout of [5000, 2 ** 31 + 5]) {
      const before = Date.now();
      // No timeout of its own, then a longer one: the outer deadline rules.
      for (const nested of [{}, { timeout: timeout * 2 }]) {
        const seen = await calls.call(timeout, nested);
        const after = Date.now();
        assertDeadline(seen.outer, timeout, before, after, "outer");
        assert.ok(
          seen.inner !== null && seen.inner >= seen.outer! &&
            seen.inner <= seen.outer! + (after - before) + 1,
          `inner ${seen.inner} inherits outer ${seen.outer} (${
            JSON.stringify(nested)
          })`,
        );
      }
    }
    // A shorter timeout of its own wins over the inherited deadline.
    const before = Date.now();
    const seen = await calls.call(2 ** 31 + 5, { timeout: 3000 });
    const after = Date.now();
    assertDeadline(seen.inner, 3000, before, after, "own shorter timeout");
  });

  Deno.test(`${how}: parent: null drops the inherited deadline but keeps the call's own timeout`, async () => {
    await using calls = await path(intercepted);
    const before = Date.now();
    const seen = await calls.call(5000, { parent: null, timeout: 2 ** 31 + 5 });
    const after = Date.now();
    assertDeadline(seen.outer, 5000, before, after, "outer");
    assertDeadline(
      seen.inner,
      2 ** 31 + 5,
      before,
      after,
      "inner, own timeout",
    );
    const none = await calls.call(5000, { parent: null, timeout: Infinity });
    assert.ok(none.outer !== null, "the outer call has its deadline");
    assert.equal(none.inner, null, "parent: null and Infinity: no deadline");
  });
}
