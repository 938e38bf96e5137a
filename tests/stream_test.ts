/**
 * Streaming calls against a server in its own process: order, flow control,
 * cancellation, errors, deadlines, a killed server, client and
 * bidirectional streams, and a peer without streams.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Connection } from "../src/client/connection.ts";
import { serve } from "../src/server/server.ts";
import { withContext } from "../src/server/call_context.ts";
import {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  ErrorRegistry,
  ProtocolError,
} from "../src/errors.ts";
import { type ChildServer, startChildServer, within } from "./_core_helpers.ts";
import { waitFor } from "./_wait.ts";
import { DEFAULT_STREAM_WINDOW } from "../src/protocol/stream_frames.ts";

const HOST = "127.0.0.1";

class InvalidOperation extends Error {
  override name = "InvalidOperation";
}

interface State {
  started: number;
  produced: number;
  finished: number;
  aborted: number;
}

/** Runs `fn` with a stream_server.ts process and a connection to it. */
async function withServer(
  fn: (conn: Connection, server: ChildServer) => Promise<void>,
  options: Record<string, unknown> = {},
): Promise<void> {
  await using server = await startChildServer("stream_server.ts", [
    JSON.stringify(options),
  ]);
  await using conn = await within(
    Connection.connect({ hostname: HOST, port: server.port }, {
      errors: new ErrorRegistry().register(InvalidOperation),
    }),
    5000,
    "the connection",
  );
  await fn(conn, server);
}

function state(conn: Connection): Promise<State> {
  return conn.call("state", [], { timeout: 5000 }) as Promise<State>;
}

/** Reads every item of `stream` within `ms`. */
async function collect(
  stream: ReadableStream<unknown>,
  ms = 20_000,
): Promise<unknown[]> {
  return await within(
    Array.fromAsync(stream),
    ms,
    "the stream to end",
  );
}

/** Reads `n` items through `reader`, each within 5 s. */
async function take(
  reader: ReadableStreamDefaultReader<unknown>,
  n: number,
): Promise<unknown[]> {
  const items: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const step = await within(reader.read(), 5000, `item ${i}`);
    assert.equal(step.done, false, `the stream ended after ${i} items`);
    items.push(step.value);
  }
  return items;
}

Deno.test("stream: 100,000 items arrive complete and in order", async () => {
  await withServer(async (conn) => {
    let expected = 0;
    await within(
      (async () => {
        for await (const item of conn.stream("count", [100_000])) {
          assert.equal(item, expected++);
        }
      })(),
      60_000,
      "100,000 items",
    );
    assert.equal(expected, 100_000);
  });
});

Deno.test("stream: a paused consumer holds the producer within its window", async () => {
  await withServer(async (conn) => {
    const reader = conn.stream("tracked", [10_000], { timeout: 60_000 })
      .getReader();
    assert.deepEqual(await take(reader, 5), [0, 1, 2, 3, 4]);
    // Pulled lazily: the producer runs only on credit (the window).
    await waitFor(async () => (await state(conn)).produced >= 5, {
      what: "the producer to fill the window",
    });
    // The consumer pauses: whatever the producer could do meanwhile, it
    // stays within the window.
    // sleep-ok: the consumer's pause is the scenario: time passes, the producer must not run ahead
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const paused = await state(conn);
    assert.ok(
      paused.produced <= DEFAULT_STREAM_WINDOW,
      `produced ${paused.produced} items with a window of ${DEFAULT_STREAM_WINDOW}`,
    );
    assert.equal(paused.finished, 0);
    // Reading resumes the producer; nothing was lost or reordered.
    const rest = await take(reader, 995);
    assert.deepEqual(rest, Array.from({ length: 995 }, (_, i) => i + 5));
    await reader.cancel();
  });
});

Deno.test("stream: cancel after 5 items runs the handler's finally and stops it", async () => {
  await withServer(async (conn) => {
    const reader = conn.stream("tracked", [1_000_000_000]).getReader();
    assert.deepEqual(await take(reader, 5), [0, 1, 2, 3, 4]);
    await within(reader.cancel(), 1000, "cancel()");
    await waitFor(async () => (await state(conn)).finished === 1, {
      what: "the generator's finally",
      timeout: 1000,
    });
    const after = await state(conn);
    assert.equal(after.aborted, 1, "the context signal aborted");
    assert.ok(after.produced <= 5 + DEFAULT_STREAM_WINDOW);
    // Nothing more is produced once the finally ran.
    assert.equal((await state(conn)).produced, after.produced);
  });
});

Deno.test("stream: break in for await cancels the stream like cancel()", async () => {
  await withServer(async (conn) => {
    let seen = 0;
    for await (const item of conn.stream("tracked", [1_000_000])) {
      assert.equal(item, seen++);
      if (seen === 5) break;
    }
    await waitFor(async () => (await state(conn)).finished === 1, {
      what: "the generator's finally",
      timeout: 1000,
    });
    assert.equal(conn.inFlight, 0);
  });
});

Deno.test("stream: an error after 3 items delivers them, then the typed error", async () => {
  await withServer(async (conn) => {
    const items: unknown[] = [];
    await assert.rejects(
      within(
        (async () => {
          for await (const item of conn.stream("failAfter", [3])) {
            items.push(item);
          }
        })(),
        5000,
        "the stream to fail",
      ),
      (error: unknown) =>
        error instanceof InvalidOperation &&
        error.message.includes("failed after 3 items"),
    );
    assert.deepEqual(items, [0, 1, 2]);
    // The connection goes on.
    assert.deepEqual(await collect(conn.stream("count", [2])), [0, 1]);
  });
});

Deno.test("stream: the deadline covers the whole stream and stops the producer", async () => {
  await withServer(async (conn) => {
    const items: unknown[] = [];
    await assert.rejects(
      within(
        (async () => {
          for await (
            const item of conn.stream("slow", [1000, 20], { timeout: 400 })
          ) items.push(item);
        })(),
        5000,
        "the deadline",
      ),
      DeadlineExceededError,
    );
    assert.ok(items.length > 0, "items arrived before the deadline");
    assert.ok(items.length < 1000);
    await waitFor(async () => (await state(conn)).finished === 1, {
      what: "the generator's finally after the deadline",
    });
  });
});

Deno.test("stream: a server killed mid-stream fails it with how many items arrived", async () => {
  await withServer(async (conn, server) => {
    const reader = conn.stream("slow", [1000, 10]).getReader();
    await take(reader, 3);
    await server.kill();
    const failure = await within(
      (async () => {
        while (true) {
          const step = await reader.read();
          if (step.done) return undefined;
        }
      })().catch((error) => error),
      5000,
      "the stream to fail",
    );
    assert.ok(failure instanceof ConnectionError, String(failure));
    assert.equal(failure.written, true);
    const count = Number(/broke after (\d+) items/.exec(failure.message)?.[1]);
    assert.ok(count >= 3, failure.message);
  });
});

Deno.test("stream: client streaming sums the caller's input", async () => {
  await withServer(async (conn) => {
    async function* numbers() {
      for (let i = 1; i <= 1000; i++) yield i;
    }
    assert.deepEqual(
      await collect(conn.stream("sum", [2], { input: numbers() })),
      [1000 * 1001],
    );
    // A ReadableStream is an input too.
    assert.deepEqual(
      await collect(
        conn.stream("sum", [1], { input: ReadableStream.from([1, 2, 3]) }),
      ),
      [6],
    );
  });
});

Deno.test("stream: bidirectional echo keeps order both ways beyond the windows", async () => {
  await withServer(async (conn) => {
    const n = DEFAULT_STREAM_WINDOW * 50;
    async function* values() {
      for (let i = 0; i < n; i++) yield { i, text: `item ${i}` };
    }
    const echoed = await collect(conn.stream("echo", [], { input: values() }));
    assert.equal(echoed.length, n);
    echoed.forEach((item, i) =>
      assert.deepEqual(item, { i, text: `item ${i}` })
    );
  });
});

Deno.test("stream: a bidirectional stream pulls its input only as the server grants", async () => {
  await withServer(async (conn) => {
    let pulled = 0;
    async function* endless() {
      while (true) yield pulled++;
    }
    const reader = conn.stream("echo", [], { input: endless() }).getReader();
    assert.deepEqual(await take(reader, 3), [0, 1, 2]);
    // The consumer stops reading: server and client windows both fill.
    await waitFor(() => pulled >= DEFAULT_STREAM_WINDOW, {
      what: "the input to fill the windows",
    });
    // sleep-ok: the consumer's pause is the scenario: time passes, the input must not be pulled ahead
    await new Promise((resolve) => setTimeout(resolve, 500));
    const bound = 3 + 3 * DEFAULT_STREAM_WINDOW;
    assert.ok(pulled <= bound, `pulled ${pulled} input items (bound ${bound})`);
    await reader.cancel();
  });
});

Deno.test("stream: a unary handler called as a stream gives one item", async () => {
  await withServer(async (conn) => {
    assert.deepEqual(
      await collect(conn.stream("state")),
      [{ started: 0, produced: 0, finished: 0, aborted: 0 }],
    );
  });
});

Deno.test("stream: a server without streams refuses with a clear error, the connection lives", async () => {
  await using server = serve({
    async *count() {
      yield 1;
    },
    ok: () => "ok",
  }, { hostname: HOST, streamWindow: 0 });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await assert.rejects(
    within(Array.fromAsync(conn.stream("count")), 5000, "the refusal"),
    (error: unknown) =>
      error instanceof ProtocolError &&
      /does not accept streaming calls.*request not sent/.test(error.message),
  );
  assert.equal(await conn.call("ok", [], { timeout: 5000 }), "ok");
});

Deno.test("stream: a graceful close lets an open stream finish", async () => {
  await withServer(async (conn, server) => {
    const reader = conn.stream("slow", [40, 10]).getReader();
    await take(reader, 2);
    server.child.kill("SIGTERM");
    const rest: unknown[] = [];
    await within(
      (async () => {
        while (true) {
          const step = await reader.read();
          if (step.done) return;
          rest.push(step.value);
        }
      })(),
      10_000,
      "the stream to finish",
    );
    assert.deepEqual(rest, Array.from({ length: 38 }, (_, i) => i + 2));
    assert.ok(conn.draining, "the server sent goaway");
  });
});

Deno.test("stream: the close deadline ends a stream that outlives it with a clear error", async () => {
  await withServer(async (conn, server) => {
    const reader = conn.stream("slow", [100_000, 10]).getReader();
    await take(reader, 2);
    server.child.kill("SIGTERM");
    const failure = await within(
      (async () => {
        while (!(await reader.read()).done);
      })().catch((error) => error),
      10_000,
      "the close deadline",
    );
    assert.ok(failure instanceof ConnectionError, String(failure));
    assert.match(failure.message, /broke after \d+ items/);
  }, { closeTimeout: 300 });
});

Deno.test("stream: a streaming method called with call() says to use stream()", async () => {
  await withServer(async (conn) => {
    await assert.rejects(
      conn.call("count", [3], { timeout: 5000 }),
      /it streams its result; call it with stream\(\)/,
    );
    assert.deepEqual(await collect(conn.stream("count", [3])), [0, 1, 2]);
  });
});

Deno.test("stream: an interceptor sees one call per stream, settled when the stream ends, and its metadata reaches the handler", async () => {
  await using server = serve({
    tenant: withContext(async function* (ctx) {
      yield ctx.metadata["tenant"];
      // The stream's timeout travels as the request's deadline.
      yield Number.isFinite(ctx.deadline) && ctx.deadline! > Date.now();
    }),
  }, { hostname: HOST });
  const seen: string[] = [];
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  }, {
    interceptors: [async (call, next) => {
      call.metadata["tenant"] = "acme";
      seen.push(`start ${call.method}`);
      const result = await next();
      seen.push(`end ${String(result)}`);
      return result;
    }],
  });
  const items = await collect(conn.stream("tenant", [], { timeout: 5000 }));
  assert.deepEqual(items, ["acme", true]);
  await waitFor(() => seen.length === 2, { what: "the interceptor to end" });
  assert.deepEqual(seen, ["start tenant", "end undefined"]);
});

Deno.test("stream: unread input past the connection's 16 MiB budget fails that stream's input, not the connection", async () => {
  const { promise: gate, resolve: open } = Promise.withResolvers<void>();
  await using server = serve({
    hoard: withContext(async (ctx) => {
      await gate;
      let read = 0;
      try {
        for await (const _ of ctx.input ?? []) read++;
      } catch (error) {
        return { read, error: (error as Error).name };
      }
      return { read, error: null };
    }),
    // Answered after every frame sent before it was read (TCP keeps order).
    release: () => {
      open();
      return true;
    },
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  let pulled = 0;
  const item = new Uint8Array(128 * 1024);
  async function* big() {
    while (true) {
      pulled++;
      yield item;
    }
  }
  const result = collect(conn.stream("hoard", [], { input: big() }));
  // The server reads nothing: the client stops at the server's window.
  await waitFor(() => pulled >= DEFAULT_STREAM_WINDOW, {
    what: "a window of input to be sent",
  });
  assert.equal(await conn.call("release", [], { timeout: 5000 }), true);
  // 127 items of 128 KiB fit in 16 MiB; the next one failed the input.
  assert.deepEqual(await result, [{
    read: 127,
    error: "ResourceExhaustedError",
  }]);
  assert.equal(await conn.call("release", [], { timeout: 5000 }), true);
});

Deno.test("stream: an input that throws cancels the call and fails the stream with its error", async () => {
  await withServer(async (conn) => {
    async function* broken() {
      yield 1;
      yield 2;
      throw new RangeError("the source broke");
    }
    await assert.rejects(
      collect(conn.stream("echo", [], { input: broken() })),
      (error: unknown) =>
        error instanceof RangeError && error.message === "the source broke",
    );
    // The connection goes on.
    assert.deepEqual(await collect(conn.stream("count", [2])), [0, 1]);
  });
});

Deno.test("stream: the caller's signal cancels it with CancelledError, its reason as cause", async () => {
  await withServer(async (conn) => {
    const controller = new AbortController();
    const reader = conn.stream("tracked", [1_000_000], {
      signal: controller.signal,
    }).getReader();
    await take(reader, 2);
    const reason = new Error("the caller stopped");
    controller.abort(reason);
    const failure = await within(
      (async () => {
        while (!(await reader.read()).done);
      })().catch((error) => error),
      5000,
      "the stream to fail",
    );
    assert.ok(failure instanceof CancelledError, String(failure));
    assert.equal(failure.cause, reason);
    await waitFor(async () => (await state(conn)).finished === 1, {
      what: "the generator's finally",
    });
  });
});

Deno.test("stream: a server interceptor sees the handler's call; the stream it returns is streamed", async () => {
  const seen: string[] = [];
  await using server = serve({
    async *count(n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
  }, {
    hostname: HOST,
    interceptors: [(call, next) => {
      seen.push(call.method);
      return next();
    }],
  });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.deepEqual(await collect(conn.stream("count", [3])), [0, 1, 2]);
  assert.deepEqual(seen, ["count"]);
});

Deno.test("stream: a stream opened inside a handler inherits what is left of its call's deadline", async () => {
  await withServer(async (conn, inner) => {
    let innerOutcome: string | undefined;
    await using outer = serve({
      // Relays the inner server's slow stream; its own caller gave 400 ms.
      relay: withContext(async (_ctx) => {
        await using down = await Connection.connect({
          hostname: HOST,
          port: inner.port,
        });
        try {
          await Array.fromAsync(down.stream("slow", [1000, 20]));
          innerOutcome = "ended";
        } catch (error) {
          innerOutcome = (error as Error).name;
        }
        return innerOutcome;
      }),
    }, { hostname: HOST });
    await using up = await Connection.connect({
      hostname: HOST,
      port: outer.addr.port,
    });
    // The inner stream fails at the outer call's deadline, not after 20 s.
    const outcome = await within(
      up.call("relay", [], { timeout: 400 }).catch((error) => error.name),
      10_000,
      "the relay to end",
    );
    assert.equal(outcome, "DeadlineExceededError");
    await waitFor(() => innerOutcome !== undefined, {
      what: "the inner stream to end",
    });
    assert.equal(innerOutcome, "DeadlineExceededError");
    await waitFor(async () => (await state(conn)).finished === 1, {
      what: "the inner generator's finally",
    });
  });
});
