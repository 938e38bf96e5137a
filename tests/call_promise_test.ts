/**
 * `Connection.call` and `DistributedChannel.call` are plain functions that
 * return the call's promise (no `async` wrapper, issue 25): every refusal
 * still arrives as a rejection, never as a synchronous throw; the caller's
 * options object is only read; and an error from the server carries the
 * frame of the code that awaited the call.
 */
import assert from "node:assert/strict";
import { DistributedChannel, StaticMembership } from "../mod.ts";
import { Connection } from "../src/client/connection.ts";
import {
  ConnectionError,
  DeadlineExceededError,
  RemoteError,
} from "../src/errors.ts";
import { serve } from "../src/server/server.ts";
import { withContext } from "../src/server/call_context.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";

function server() {
  return serve({
    add: (a: number, b: number) => a + b,
    /** Ends only when the call is cancelled (its deadline passed). */
    slow: withContext((ctx) =>
      new Promise<never>((_, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), {
          once: true,
        });
      })
    ),
    fail(): never {
      const error = new Error("no");
      error.name = "Boom"; // no class registered for it: a RemoteError
      throw error;
    },
  }, { hostname: HOST, port: 0 });
}

/** Calls `run` synchronously: a throw fails the test, a promise is kept. */
function called(run: () => Promise<unknown>): Promise<unknown> {
  const promise = run();
  assert.ok(promise instanceof Promise, "a promise, not a throw");
  return promise;
}

/** Awaits `call` from a function whose name the stack must show. */
async function awaitedByTheTest(call: () => Promise<unknown>): Promise<Error> {
  try {
    await call();
  } catch (error) {
    return error as Error;
  }
  throw new Error("the call should fail");
}

Deno.test("channel.call rejects, never throws, for a bad timeout, a passed parent deadline and a closed channel", async () => {
  const srv = server();
  const channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: srv.addr.port }]),
  });
  try {
    await assert.rejects(
      called(() => channel.call("add", [1, 2], { timeout: -1 })),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `Cannot call method "add": timeout must be a number of ms >= 0 or Infinity, got -1`,
    );
    const parent = { deadline: Date.now() - 1 }; // already passed
    await assert.rejects(
      called(() => channel.call("add", [1, 2], { parent })),
      DeadlineExceededError,
    );
    await channel.close();
    await assert.rejects(
      called(() => channel.call("add", [1, 2])),
      (e: unknown) =>
        e instanceof ConnectionError && e.written === false &&
        /the channel for service "static" is closed/.test(e.message),
    );
  } finally {
    await channel.close();
    await srv.close();
  }
});

Deno.test("channel.call only reads the caller's options: a frozen options object and none at all both work", async () => {
  const srv = server();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: srv.addr.port }]),
  });
  const options = Object.freeze({
    timeout: 10_000,
    metadata: Object.freeze({ tenant: "acme" }),
    idempotent: true,
  });
  assert.equal(
    await within(channel.call("add", [1, 2], options), 10_000, "a call"),
    3,
  );
  assert.equal(
    await within(channel.call("add", [3, 4]), 10_000, "a call"),
    7,
  );
  assert.deepEqual(options, {
    timeout: 10_000,
    metadata: { tenant: "acme" },
    idempotent: true,
  });
  await channel.close();
  await srv.close();
});

Deno.test("Connection.call rejects, never throws, on a closed connection and for params that are not an array", async () => {
  const srv = server();
  const conn = await Connection.connect({
    hostname: HOST,
    port: srv.addr.port,
  });
  await assert.rejects(
    called(() => conn.call("add", 1 as unknown as unknown[])),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message === 'Cannot call method "add": params must be an array',
  );
  conn.close();
  await assert.rejects(
    called(() => conn.call("add", [1, 2])),
    (e: unknown) => e instanceof ConnectionError && e.written === false,
  );
  await conn.finished;
  await srv.close();
});

/**
 * The errors of `method` called with `timeout` through a channel and through
 * a connection, each awaited from `awaitedByTheTest`.
 */
async function failedBothWays(method: string, timeout: number) {
  await using srv = server();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: srv.addr.port }]),
  });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: srv.addr.port,
  });
  return [
    await within(
      awaitedByTheTest(() => channel.call(method, [], { timeout })),
      10_000,
      "a channel call",
    ),
    await within(
      awaitedByTheTest(() => conn.call(method, [], { timeout })),
      10_000,
      "a connection call",
    ),
  ];
}

Deno.test("a server's error reaches the awaiting caller with its frame, through a channel and a connection", async () => {
  for (const error of await failedBothWays("fail", 10_000)) {
    assert.ok(error instanceof RemoteError, String(error));
    assert.equal(error.remoteName, "Boom");
    assert.match(
      String(error.stack),
      /^RemoteError: Cannot call method "fail"/,
    );
    assert.match(String(error.stack), /awaitedByTheTest/);
  }
});

Deno.test("a deadline reaches the awaiting caller with its frame, through a channel and a connection", async () => {
  for (const error of await failedBothWays("slow", 50)) {
    assert.ok(error instanceof DeadlineExceededError, String(error));
    assert.match(String(error.stack), /^DeadlineExceededError: /);
    assert.match(String(error.stack), /awaitedByTheTest/);
  }
});
