import assert from "node:assert/strict";
import { serve } from "../src/server/server.ts";
import { withContext } from "../src/server/call_context.ts";
import { Connection } from "../src/client/connection.ts";
import {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  ProtocolError,
  ServerClosingError,
} from "../src/errors.ts";
import {
  concat,
  delay,
  HELLO,
  rawFrames,
  readToEnd,
  startChildServer,
  SUPPORTED_VALUES,
  within,
  writeAll,
} from "./_core_helpers.ts";
import { nextEvent, waitFor } from "./_wait.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { MAX_METADATA_SIZE } from "../src/protocol/metadata.ts";

const HOST = "127.0.0.1";

Deno.test("every supported value round-trips over a real socket", async () => {
  await using server = serve({ echo: (x: unknown) => x }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  for (const [name, value] of Object.entries(SUPPORTED_VALUES)) {
    const back = await conn.call("echo", [value]);
    if (name === "null-prototype object") {
      assert.deepEqual({ ...(back as object) }, { ...(value as object) }, name);
    } else {
      assert.deepEqual(back, value, name);
    }
  }
  assert.ok(Object.is(await conn.call("echo", [-0]), -0));
  const { "null-prototype object": _, ...all } = SUPPORTED_VALUES;
  assert.deepEqual(await conn.call("echo", [all]), all);
});

Deno.test("unsupported values fail with a TypeError before anything is sent", async () => {
  let runs = 0;
  await using server = serve({
    echo: (x: unknown) => {
      runs++;
      return x;
    },
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  for (
    const bad of [
      () => 1,
      Symbol("s"),
      new Map(),
      new Set(),
      new (class A {})(),
      cyclic,
    ]
  ) {
    await assert.rejects(
      conn.call("echo", [1, { nested: [bad] }]),
      (e: unknown) => {
        assert.ok(e instanceof TypeError);
        assert.match(
          e.message,
          /^Cannot call method "echo": cannot encode value at \$\[1\]\.nested\[0\]/,
        );
        return true;
      },
    );
    assert.equal(conn.inFlight, 0);
  }
  await assert.rejects(conn.call("x".repeat(300), []), RangeError);
  // Requests arrive in order: had any bad call been sent, it would have run
  // before this one.
  assert.equal(await conn.call("echo", ["still fine"]), "still fine");
  assert.equal(runs, 1);
});

Deno.test("a request larger than maxFrameSize fails with a RangeError before sending", async () => {
  await using server = serve({ echo: (x: unknown) => x }, { hostname: HOST });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxFrameSize: 1000 },
  );
  await assert.rejects(
    conn.call("echo", ["x".repeat(2000)]),
    (e: unknown) =>
      e instanceof RangeError &&
      /exceeds the frame limit of 1000 bytes/.test(e.message),
  );
  assert.equal(await conn.call("echo", ["small"]), "small");
});

Deno.test("1,000 concurrent calls on one connection with random delays get their own results", async () => {
  await using server = serve({
    async work(i: number): Promise<{ i: number; sq: bigint }> {
      // sleep-ok: handler work (a slow method), not a wait for an event
      await delay(Math.random() * 30);
      return { i, sq: BigInt(i) * BigInt(i) };
    },
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const calls = Array.from({ length: 1000 }, (_, i) => conn.call("work", [i]));
  assert.equal(conn.inFlight, 1000);
  const order: number[] = [];
  calls.forEach((p, i) => p.then(() => order.push(i)));
  const results = await Promise.all(calls);
  results.forEach((r, i) =>
    assert.deepEqual(r, { i, sq: BigInt(i) * BigInt(i) })
  );
  assert.equal(conn.inFlight, 0);
  assert.notDeepEqual(
    order,
    [...order].sort((a, b) => a - b),
    "responses came out of order",
  );
});

function cancellable(log: { aborted: unknown[]; started?: number }) {
  return {
    wait: withContext((ctx, ms: number): Promise<string> => {
      log.started = (log.started ?? 0) + 1;
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve("finished"), ms);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          log.aborted.push(ctx.signal.reason);
          resolve("aborted");
        }, { once: true });
      });
    }),
    ping: () => "pong",
  };
}

Deno.test("a timeout rejects before the handler ends, the handler sees the cancellation, the connection stays usable", async () => {
  const log = { aborted: [] as unknown[], started: 0 };
  await using server = serve(cancellable(log), { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  // The handler would answer after 60 s: the rejection is the deadline's.
  await assert.rejects(
    within(conn.call("wait", [60_000], { timeout: 50 }), 10_000, "the call"),
    (e: unknown) => {
      assert.ok(e instanceof DeadlineExceededError);
      assert.equal(
        e.message,
        'Cannot call method "wait": deadline of 50 ms exceeded',
      );
      return true;
    },
  );
  assert.equal(conn.inFlight, 0);
  await waitFor(
    () => log.aborted.length === 1,
    "the handler to see the cancel",
  );
  assert.ok(log.aborted[0] instanceof CancelledError);
  assert.equal(await conn.call("ping", [], { timeout: 1000 }), "pong");
});

Deno.test("an AbortSignal rejects promptly with CancelledError and cancels the handler", async () => {
  const log = { aborted: [] as unknown[], started: 0 };
  await using server = serve(cancellable(log), { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const controller = new AbortController();
  const call = conn.call("wait", [5000], { signal: controller.signal });
  await waitFor(() => log.started === 1, "the handler to start");
  const reason = new Error("user gave up");
  controller.abort(reason);
  await assert.rejects(call, (e: unknown) => {
    assert.ok(e instanceof CancelledError);
    assert.equal(e.cause, reason);
    return true;
  });
  await waitFor(
    () => log.aborted.length === 1,
    "the handler to see the cancel",
  );
  assert.equal(await conn.call("ping", []), "pong");
  // An already-aborted signal rejects without sending anything.
  await assert.rejects(
    conn.call("wait", [1], { signal: controller.signal }),
    CancelledError,
  );
  assert.equal(conn.inFlight, 0);
});

Deno.test("killing the server mid-call rejects pending calls with ConnectionError and the client can reconnect", async () => {
  const first = await startChildServer();
  const conn = await Connection.connect({ hostname: HOST, port: first.port });
  try {
    assert.equal(await conn.call("echo", [1]), 1);
    const pending = [conn.call("sleep", [10_000]), conn.call("sleep", [10_000])]
      .map((p) =>
        p.then(() => assert.fail("call should fail"), (e: unknown) => e)
      );
    await first.sleepStarted();
    await first.sleepStarted();
    await first.kill();
    for (const p of pending) {
      const e = await within(p, 5000, "pending call rejects");
      {
        assert.ok(e instanceof ConnectionError, String(e));
        assert.equal(e.written, true);
        assert.match(
          e.message,
          /^Cannot call method "sleep": .*\(request may have run\)$/,
        );
      }
    }
    await within(conn.finished, 2000, "connection closed");
    await assert.rejects(
      conn.call("echo", [1]),
      (e: unknown) => e instanceof ConnectionError && e.written === false,
    );
  } finally {
    conn.close();
    await first.kill();
  }
  await using second = await startChildServer();
  await using again = await Connection.connect({
    hostname: HOST,
    port: second.port,
  });
  assert.equal(await again.call("echo", ["back"]), "back");
});

Deno.test("connecting to a closed port fails with ConnectionError written=false", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(
    Connection.connect({ hostname: HOST, port }),
    (e: unknown) =>
      e instanceof ConnectionError && e.written === false &&
      e.message.startsWith(`Cannot connect to ${HOST}:${port}:`),
  );
});

Deno.test("connecting to a peer that is not a zkrpc server fails with ProtocolError", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await writeAll(conn, new TextEncoder().encode("SSH-2.0-OpenSSH_9.6\r\n"));
    await readToEnd(conn);
    conn.close();
  })();
  await assert.rejects(
    Connection.connect({
      hostname: HOST,
      port: (listener.addr as Deno.NetAddr).port,
    }),
    (e: unknown) =>
      e instanceof ProtocolError && /is not a zkrpc server/.test(e.message),
  );
  await serving;
  listener.close();
});

Deno.test("Connection.close() rejects pending calls; calls after it are never written", async () => {
  let started = false;
  await using server = serve({
    wait: () => {
      started = true;
      // sleep-ok: handler work (a slow method), not a wait for an event
      return delay(100);
    },
  }, { hostname: HOST });
  const conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  }, { maxInFlight: 1 });
  const closeEvent = new Promise<CustomEvent>((resolve) =>
    conn.addEventListener("close", (e) => resolve(e as CustomEvent), {
      once: true,
    })
  );
  const sent = conn.call("wait", []);
  await waitFor(() => started, "the first call to run");
  const unsent = conn.call("wait", []); // over maxInFlight: queued, not written
  conn.close();
  await assert.rejects(
    sent,
    (e: unknown) => e instanceof ConnectionError && e.written,
  );
  await assert.rejects(
    unsent,
    (e: unknown) =>
      e instanceof ConnectionError && !e.written &&
      /\(request not sent\)$/.test(e.message),
  );
  await assert.rejects(
    conn.call("wait", []),
    (e: unknown) => e instanceof ConnectionError && !e.written,
  );
  conn.close(); // idempotent
  await conn.finished;
  assert.equal((await closeEvent).detail.error, undefined);
  assert.equal(conn.isClosed, true);
});

Deno.test("after goaway the connection is draining and refuses new calls without sending", async () => {
  let runs = 0;
  let slowRuns = 0;
  const server = serve({
    slow: () => {
      slowRuns++;
      // sleep-ok: handler work (a slow method), not a wait for an event
      return delay(80);
    },
    count: () => ++runs,
  }, { hostname: HOST });
  const conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const closeEvent = new Promise<CustomEvent>((resolve) =>
    conn.addEventListener("close", (e) => resolve(e as CustomEvent), {
      once: true,
    })
  );
  const slow = conn.call("slow", []);
  await waitFor(() => slowRuns === 1, "the slow call to run");
  const closing = server.close();
  await nextEvent(conn, "goaway", 5000);
  assert.equal(conn.draining, true);
  assert.equal(conn.goawayReason, "Server is closing");
  await assert.rejects(
    conn.call("count", []),
    (e: unknown) =>
      e instanceof ServerClosingError &&
      /\(request not sent\)$/.test(e.message),
  );
  await slow;
  await closing;
  await conn.finished;
  assert.equal(runs, 0);
  // A graceful shutdown is not an error.
  assert.equal((await closeEvent).detail.error, undefined);
});

Deno.test("EOF after goaway with calls pending is not a clean end: they fail with ConnectionError written=true", async () => {
  // A fake server: reads the first request, then says goaway and closes
  // without answering it (a crash during a drain, or a hostile peer).
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const requested = Promise.withResolvers<void>();
  const serving = (async () => {
    const conn = await listener.accept();
    await writeAll(conn, HELLO);
    // A client's stream is a preface and frames, like a server's.
    await rawFrames(conn).next(FrameType.Request);
    requested.resolve();
    await writeAll(
      conn,
      encodeFrame(FrameType.Goaway, 0, new TextEncoder().encode("bye")),
    );
    conn.close();
  })();
  const conn = await Connection.connect(
    { hostname: HOST, port: (listener.addr as Deno.NetAddr).port },
    { maxInFlight: 1 },
  );
  const closeEvent = new Promise<CustomEvent>((resolve) =>
    conn.addEventListener("close", (e) => resolve(e as CustomEvent), {
      once: true,
    })
  );
  const sent = conn.call("work", [], { timeout: 10_000 });
  const queued = conn.call("work", [], { timeout: 10_000 }); // over maxInFlight
  await within(requested.promise, 5000, "the request to reach the server");
  await assert.rejects(
    within(sent, 5000, "the sent call to fail"),
    (e: unknown) =>
      e instanceof ConnectionError && e.written &&
      /closed by the server/.test(e.message),
  );
  await assert.rejects(
    within(queued, 5000, "the queued call to fail"),
    (e: unknown) => e instanceof ConnectionError && !e.written,
  );
  const { detail } = await within(closeEvent, 5000, "the close event");
  assert.ok(detail.error instanceof ConnectionError);
  await serving;
  listener.close();
});

Deno.test("EOF after goaway with no call pending is a clean end", async () => {
  // A fake server: answers a ping (so the connection is surely open), then
  // says goaway and closes.
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await writeAll(conn, HELLO);
    const ping = await rawFrames(conn).next(FrameType.Ping);
    await writeAll(
      conn,
      concat(
        encodeFrame(FrameType.Pong, ping.id, ping.payload),
        encodeFrame(FrameType.Goaway, 0, new TextEncoder().encode("bye")),
      ),
    );
    conn.close();
  })();
  const conn = await Connection.connect({
    hostname: HOST,
    port: (listener.addr as Deno.NetAddr).port,
  });
  const closeEvent = new Promise<CustomEvent>((resolve) =>
    conn.addEventListener("close", (e) => resolve(e as CustomEvent), {
      once: true,
    })
  );
  await conn.ping(5000);
  const { detail } = await within(closeEvent, 5000, "the close event");
  assert.equal(conn.draining, true);
  assert.equal(detail.error, undefined);
  await serving;
  listener.close();
});

Deno.test("a malformed error reply fails that call alone; the connection and its other calls go on", async () => {
  // A fake server: answers the first two requests with error frames that are
  // not `{ name, message }`, the third with a result.
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await writeAll(conn, HELLO);
    const frames = rawFrames(conn);
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await frames.next(FrameType.Request)).id);
    }
    await writeAll(
      conn,
      concat(
        encodeFrame(FrameType.Error, ids[0]!, new TextEncoder().encode("{")),
        encodeFrame(FrameType.Error, ids[1]!, jsonCodec.encode({ name: 1 })),
        encodeFrame(FrameType.Result, ids[2]!, jsonCodec.encode("ok")),
      ),
    );
    await readToEnd(conn);
    conn.close();
  })();
  await using conn = await Connection.connect({
    hostname: HOST,
    port: (listener.addr as Deno.NetAddr).port,
  }, { codec: jsonCodec });
  const calls = ["a", "b", "c"].map((method) =>
    conn.call(method, [], { timeout: 10_000 })
  );
  for (const [i, method] of ["a", "b"].entries()) {
    await assert.rejects(
      within(calls[i]!, 5000, `call ${method}`),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.message.startsWith(
          `Cannot call method "${method}": cannot read the error reply from `,
        ),
    );
  }
  assert.equal(await within(calls[2]!, 5000, "call c"), "ok");
  assert.equal(conn.isClosed, false);
  conn.close();
  await serving;
  listener.close();
});

Deno.test("call metadata at the limit is sent; one byte more, a reserved key or a non-string value fails that call alone, unsent", async () => {
  let runs = 0;
  await using server = serve({
    size: withContext((ctx) => {
      runs++;
      return ctx.metadata.big?.length ?? -1;
    }),
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  // One entry: u8 key length, the key, u16 value length, the value.
  const fits = "x".repeat(MAX_METADATA_SIZE - 3 - "big".length);
  assert.equal(
    await conn.call("size", [], { timeout: 5000, metadata: { big: fits } }),
    fits.length,
  );
  const refused: [Record<string, string>, ErrorConstructor, RegExp][] = [
    [{ big: fits + "x" }, RangeError, /exceeds the limit of 8192 bytes/],
    [{ "zkrpc-deadline": "1" }, TypeError, /is reserved/],
    [{ big: 1 as unknown as string }, TypeError, /must be a string/],
    [{ "Bad Key": "1" }, TypeError, /must be 1-64 characters/],
  ];
  for (const [metadata, type, pattern] of refused) {
    await assert.rejects(
      conn.call("size", [], { timeout: 5000, metadata }),
      (e: unknown) => e instanceof type && pattern.test((e as Error).message),
    );
  }
  assert.equal(runs, 1);
  assert.equal(conn.inFlight, 0);
  assert.equal(await conn.call("size", [], { timeout: 5000 }), -1);
});

Deno.test("keepalive pings detect a peer that stopped answering", async () => {
  // A fake server: answers the preface, then goes silent (reads, never writes).
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await writeAll(conn, HELLO);
    await readToEnd(conn);
    conn.close();
  })();
  const conn = await Connection.connect(
    { hostname: HOST, port: (listener.addr as Deno.NetAddr).port },
    { keepaliveInterval: 50, keepaliveTimeout: 50 },
  );
  const call = conn.call("anything", []);
  await assert.rejects(
    within(call, 2000, "dead peer detected"),
    (e: unknown) =>
      e instanceof ConnectionError && e.written &&
      /no answer to a ping within 50 ms/.test(e.message),
  );
  await conn.finished;
  await serving;
  listener.close();
});

Deno.test("calls work over TLS with a custom CA certificate", async () => {
  const dir = new URL("./fixtures/tls/", import.meta.url);
  const cert = await Deno.readTextFile(new URL("localhost.crt", dir));
  const key = await Deno.readTextFile(new URL("localhost.key", dir));
  const ca = await Deno.readTextFile(new URL("ca.crt", dir));
  await using server = serve({ echo: (x: unknown) => x }, {
    hostname: HOST,
    tls: { cert, key },
    onError: () => {},
  });
  await using conn = await Connection.connect(
    { hostname: "localhost", port: server.addr.port, tls: true },
    { caCerts: [ca] },
  );
  assert.deepEqual(await conn.call("echo", [{ secret: 42n }]), { secret: 42n });
  // A plain-TCP client cannot talk to the TLS port.
  await assert.rejects(
    Connection.connect({ hostname: HOST, port: server.addr.port }, {
      connectTimeout: 2000,
    }),
    (e: unknown) => e instanceof ConnectionError || e instanceof ProtocolError,
  );
});

Deno.test("connect() gives up when the peer never sends its preface", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = [
    Promise.withResolvers<void>(),
    Promise.withResolvers<void>(),
  ];
  const serving = (async () => {
    for (const { resolve } of accepted) {
      const conn = await listener.accept();
      resolve();
      await readToEnd(conn);
      conn.close();
    }
  })();
  await assert.rejects(
    within(
      Connection.connect({ hostname: HOST, port }, { connectTimeout: 100 }),
      10_000,
      "the connect timeout",
    ),
    (e: unknown) =>
      e instanceof ConnectionError && !e.written &&
      /no preface from the server within 100 ms/.test(e.message),
  );
  const controller = new AbortController();
  const connecting = Connection.connect({ hostname: HOST, port }, {
    signal: controller.signal,
  });
  // Aborted while waiting for the preface (the server accepted the socket).
  await within(accepted[1]!.promise, 5000, "the second connection");
  controller.abort(new Error("stop"));
  await assert.rejects(
    within(connecting, 10_000, "the aborted connect"),
    (e: unknown) =>
      e instanceof ConnectionError && !e.written && /aborted/.test(e.message),
  );
  await serving;
  listener.close();
});

Deno.test("calls with mixed timeouts expire in deadline order and leave no timers", async () => {
  const log = { aborted: [] as unknown[], started: 0 };
  await using server = serve(cancellable(log), { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const order: number[] = [];
  const t0 = performance.now();
  // The handler would answer after 60 s: each rejection is its deadline's.
  const calls = [120, 40, 80, 20].map((timeout) =>
    conn.call("wait", [60_000], { timeout }).catch((e) => {
      assert.ok(e instanceof DeadlineExceededError);
      order.push(timeout);
      return performance.now() - t0;
    })
  );
  assert.equal(await conn.call("ping", [], { timeout: 10_000 }), "pong");
  const elapsed = (await Promise.all(calls)) as number[];
  assert.deepEqual(order, [20, 40, 80, 120]);
  // Never early (a loaded machine only makes timers late).
  [120, 40, 80, 20].forEach((timeout, i) =>
    // clock-ok: a lower bound (not early): timers never fire early
    assert.ok(elapsed[i]! >= timeout - 2, `${timeout}: ${elapsed[i]}`)
  );
  // Each cancel reached its handler, whose timer is cleared.
  await waitFor(
    () => log.aborted.length === 4,
    "the handlers to see the cancels",
  );
});

Deno.test("a payload close to the frame limit round-trips", async () => {
  await using server = serve({ echo: (x: unknown) => x }, {
    hostname: HOST,
    maxFrameSize: 2 * 1024 * 1024,
  });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxFrameSize: 2 * 1024 * 1024 },
  );
  const bytes = new Uint8Array(1024 * 1024).map((_, i) => (i * 7919) & 0xff); // ~1.4 MB as base64
  assert.deepEqual(await conn.call("echo", [bytes]), bytes);
  const text = "é".repeat(500_000);
  assert.equal(await conn.call("echo", [text]), text);
});

Deno.test("calls beyond maxInFlight wait locally instead of breaking the server's limit", async () => {
  let running = 0;
  let peak = 0;
  await using server = serve({
    async work(i: number): Promise<number> {
      peak = Math.max(peak, ++running);
      // sleep-ok: handler work (a slow method), not a wait for an event, so that calls overlap
      await delay(5);
      running--;
      return i;
    },
  }, { hostname: HOST, maxInFlightPerConnection: 4 });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxInFlight: 4 },
  );
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => conn.call("work", [i])),
  );
  assert.deepEqual(results, Array.from({ length: 40 }, (_, i) => i));
  assert.ok(peak <= 4, `peak ${peak}`);
  // A queued call that times out was never sent; one that closes is unwritten.
  const busy = Array.from({ length: 4 }, () => conn.call("work", [0]));
  await assert.rejects(
    conn.call("work", [1], { timeout: 1 }),
    DeadlineExceededError,
  );
  const queued = conn.call("work", [2]);
  conn.close();
  await assert.rejects(
    queued,
    (e: unknown) => e instanceof ConnectionError && !e.written,
  );
  await Promise.allSettled(busy);
  await waitFor(() => running === 0, "the server's handlers to finish");
});
