import assert from "node:assert/strict";
import { type Registrar, serve } from "../src/server/server.ts";
import { type CallContext, withContext } from "../src/server/call_context.ts";
import { Connection } from "../src/client/connection.ts";
import {
  ConnectionError,
  DeadlineExceededError,
  ErrorRegistry,
  MethodNotFoundError,
  RemoteError,
  ResourceExhaustedError,
  ServerClosingError,
} from "../src/errors.ts";
import {
  concat,
  HELLO,
  rawFrames,
  requestFrame,
  writeAll,
} from "./_core_helpers.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { waitFor, within } from "./_wait.ts";

const HOST = "127.0.0.1";

class InvalidOperation extends Error {}

class Handlers {
  static divide(a: number, b: number): number {
    if (b === 0) throw new InvalidOperation("Cannot divide by zero");
    return a / b;
  }
  static async add(a: number, b: number): Promise<number> {
    await Promise.resolve();
    return a + b;
  }
  static twice(a: number): number {
    return this.add2(a, a);
  }
  static add2(a: number, b: number): number {
    return a + b;
  }
}

function quiet(errors: Error[] = []): (error: Error) => void {
  return (error) => void errors.push(error);
}

Deno.test("serve() binds port 0 and reports the real address", async () => {
  await using server = serve(Handlers, { hostname: HOST, port: 0 });
  assert.equal(server.addr.hostname, HOST);
  assert.ok(server.addr.port > 0);
  assert.deepEqual(server.methods.sort(), ["add", "add2", "divide", "twice"]);
});

Deno.test("serve() exposes a class's static methods with this bound to the class", async () => {
  await using server = serve(Handlers, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.equal(await conn.call("divide", [10, 2]), 5);
  assert.equal(await conn.call("add", [2, 3]), 5);
  assert.equal(await conn.call("twice", [21]), 42);
});

Deno.test("serve() exposes a plain object's own sync and async methods", async () => {
  const api = {
    hello: (name: string) => `hello ${name}`,
    async later(x: number): Promise<number> {
      await Promise.resolve();
      return x * 2;
    },
    notAMethod: 5,
  };
  await using server = serve(api, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.equal(await conn.call("hello", ["zk"]), "hello zk");
  assert.equal(await conn.call("later", [4]), 8);
  await assert.rejects(conn.call("notAMethod", []), MethodNotFoundError);
});

Deno.test("a handler wrapped with withContext receives the call context first", async () => {
  let seen: CallContext | undefined;
  await using server = serve({
    who: withContext((ctx, a: number): number => {
      seen = ctx;
      return a;
    }),
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.equal(await conn.call("who", [1]), 1);
  assert.equal(seen?.method, "who");
  assert.equal(seen?.remoteAddr?.hostname, HOST);
  assert.equal(seen?.signal.aborted, false);
});

Deno.test("a handler gets exactly the caller's arguments, so default parameters work", async () => {
  await using server = serve({
    divide(num1: number, num2 = 1): number {
      return num1 / num2;
    },
    count(...args: unknown[]): number {
      return args.length;
    },
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.equal(await conn.call("divide", [6]), 6);
  assert.equal(await conn.call("divide", [6, 3]), 2);
  assert.equal(await conn.call("count", [1, 2, 3]), 3);
});

Deno.test("inherited and reserved names are method not found", async () => {
  await using server = serve(Handlers, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  for (
    const name of [
      "constructor",
      "__proto__",
      "toString",
      "hasOwnProperty",
      "valueOf",
      "prototype",
      "length",
      "name",
      "call",
      "apply",
      "bind",
      "__defineGetter__",
      "nope",
    ]
  ) {
    await assert.rejects(conn.call(name, []), (e: unknown) => {
      assert.ok(e instanceof MethodNotFoundError, name);
      assert.equal(e.method, name);
      assert.equal(e.message, `Cannot call method "${name}": method not found`);
      return true;
    });
  }
  assert.equal(await conn.call("divide", [9, 3]), 3); // still usable
});

Deno.test("a plain object's own toString is still not callable", async () => {
  await using server = serve({ toString: () => "x", ok: () => 1 }, {
    hostname: HOST,
  });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await assert.rejects(conn.call("toString", []), MethodNotFoundError);
  assert.equal(await conn.call("ok", []), 1);
});

Deno.test("divide(1, 0) rejects with the caller's registered InvalidOperation", async () => {
  await using server = serve(Handlers, { hostname: HOST });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { errors: new ErrorRegistry().register(InvalidOperation) },
  );
  await assert.rejects(conn.call("divide", [1, 0]), (e: unknown) => {
    assert.ok(e instanceof InvalidOperation);
    assert.equal(e.message, "Cannot divide by zero");
    assert.equal(e.name, "InvalidOperation");
    assert.ok(!String(e.stack).includes("server.ts:"), "no server stack");
    return true;
  });
});

Deno.test("an unregistered error arrives as RemoteError keeping the remote name and data", async () => {
  class QuotaError extends Error {
    data = { limit: 10, used: 11n };
  }
  await using server = serve({
    boom(): never {
      throw new QuotaError("Quota exceeded");
    },
    range(): never {
      throw new RangeError("Out of range");
    },
    str(): never {
      throw "plain string";
    },
    nested(): never {
      throw new ServerClosingError("nested call failed");
    },
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await assert.rejects(conn.call("boom", []), (e: unknown) => {
    assert.ok(e instanceof RemoteError);
    assert.equal(e.remoteName, "QuotaError");
    assert.equal(e.remoteMessage, "Quota exceeded");
    assert.deepEqual(e.data, { limit: 10, used: 11n });
    return true;
  });
  await assert.rejects(
    conn.call("range", []),
    (e: unknown) => e instanceof RemoteError && e.remoteName === "RangeError",
  );
  await assert.rejects(
    conn.call("str", []),
    (e: unknown) =>
      e instanceof RemoteError && e.remoteName === "Error" &&
      e.remoteMessage === "plain string",
  );
  // A handler re-throwing zkrpc's "not run" error must not make the caller think so.
  await assert.rejects(
    conn.call("nested", []),
    (e: unknown) =>
      e instanceof RemoteError && !(e instanceof ServerClosingError) &&
      e.remoteName === "RpcError",
  );
});

Deno.test("a result that cannot be encoded becomes a TypeError for the caller", async () => {
  await using server = serve({ map: () => new Map() }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await assert.rejects(
    conn.call("map", []),
    (e: unknown) =>
      e instanceof RemoteError && e.remoteName === "TypeError" &&
      /Cannot call method "map": cannot encode result/.test(e.message),
  );
});

Deno.test("RpcServer.close() lets in-flight calls finish and refuses new ones", async () => {
  const started: string[] = [];
  const gate = Promise.withResolvers<void>();
  const server = serve({
    async slow(): Promise<string> {
      started.push("slow");
      await gate.promise; // held until the refusal below was seen
      return "done";
    },
  }, { hostname: HOST });
  const conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const goaway = new Promise<void>((resolve) =>
    conn.addEventListener("goaway", () => resolve(), { once: true })
  );
  const inflight = [conn.call("slow", []), conn.call("slow", [])];
  await waitFor(() => started.length === 2, "both slow calls to start");
  const closing = server.close();
  await within(goaway, 5000, "the goaway");
  assert.equal(conn.draining, true);
  await assert.rejects(
    conn.call("slow", [1]),
    (e: unknown) =>
      e instanceof ServerClosingError &&
      /Cannot call method "slow": server .* is closing/.test(e.message),
  );
  assert.equal(server.connections, 1, "the calls in flight hold the drain");
  gate.resolve();
  assert.deepEqual(await Promise.all(inflight), ["done", "done"]);
  await within(closing, 5000, "close()");
  await within(conn.finished, 5000, "client sees close");
  assert.equal(server.connections, 0);
  assert.equal(started.length, 2);
  await within(server.finished, 5000, "the server to finish");
});

Deno.test("RpcServer.close() is idempotent and Symbol.asyncDispose never throws", async () => {
  const server = serve(Handlers, { hostname: HOST });
  const a = server.close();
  const b = server.close();
  assert.equal(a, b);
  await a;
  await server[Symbol.asyncDispose]();
  await server.finished;
});

Deno.test("RpcServer.close() aborts handlers still running at the deadline", async () => {
  let aborted: unknown;
  let running = false;
  const server = serve({
    hang: withContext((ctx): Promise<never> => {
      running = true;
      return new Promise((_, reject) => {
        ctx.signal.addEventListener("abort", () => {
          aborted = ctx.signal.reason;
          reject(ctx.signal.reason);
        }, { once: true });
      });
    }),
  }, { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const call = conn.call("hang", []);
  await waitFor(() => running, "the handler to start");
  await within(server.close({ timeout: 50 }), 5000, "close()");
  await assert.rejects(
    call,
    (e: unknown) => e instanceof ConnectionError && e.written,
  );
  assert.ok(aborted instanceof ServerClosingError);
});

Deno.test("a new request on a draining connection gets ServerClosingError and is not run", async () => {
  // A raw client that ignores goaway, so that the server's own refusal (not
  // the client's) is what stops the request.
  let runs = 0;
  const release = Promise.withResolvers<void>();
  const server = serve({
    slow: () => release.promise,
    count(): number {
      return ++runs;
    },
  }, { hostname: HOST, onError: quiet() });
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  await writeAll(conn, concat(HELLO, requestFrame(1, "slow", [])));
  await frames.preface(); // handshake done: the server drains, not drops, it
  const closing = server.close({ timeout: 60_000 });
  const goaway = await frames.next(FrameType.Goaway);
  assert.equal(new TextDecoder().decode(goaway.payload), "Server is closing");
  const ping = await frames.next(FrameType.Ping);
  // After the goaway: the server refuses, does not run, and stays draining.
  await writeAll(conn, requestFrame(2, "count", []));
  const refused = await frames.next(FrameType.Error);
  assert.equal(refused.id, 2);
  const payload = jsonCodec.decode(refused.payload) as {
    name: string;
    message: string;
  };
  assert.equal(payload.name, "ServerClosingError");
  assert.match(payload.message, /server is closing \(request not run\)/);
  assert.equal(runs, 0);
  // The draining call still completes; the pong lets the drain finish.
  release.resolve();
  const result = await frames.next(FrameType.Result);
  assert.equal(result.id, 1);
  await writeAll(conn, encodeFrame(FrameType.Pong, ping.id, ping.payload));
  await within(closing, 5000, "close() once the drain is over");
  conn.close();
  assert.equal(runs, 0);
});

Deno.test("serve() calls the registrar after listening and close() deregisters before goaway", async () => {
  const events: string[] = [];
  const seen: { conn?: Connection } = {};
  const registrar: Registrar = {
    register(addr) {
      events.push(`register ${addr.port}`);
      return Promise.resolve({
        deregister() {
          events.push(`deregister draining=${seen.conn?.draining}`);
          return Promise.resolve();
        },
      });
    },
  };
  const server = serve(Handlers, { hostname: HOST, registrar });
  await within(server.ready, 5000, "the server to register");
  const conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  seen.conn = conn;
  conn.addEventListener("goaway", () => events.push("goaway"));
  await within(server.close(), 5000, "close()");
  await within(conn.finished, 5000, "the connection to close");
  assert.deepEqual(events, [
    `register ${server.addr.port}`,
    "deregister draining=false",
    "goaway",
  ]);
});

Deno.test("clients that connect while close() deregisters are still served", async () => {
  const deregistering = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const registrar: Registrar = {
    register: () =>
      Promise.resolve({
        deregister() {
          deregistering.resolve();
          return release.promise; // ZooKeeper is slow to answer
        },
      }),
  };
  const server = serve(Handlers, { hostname: HOST, registrar });
  await within(server.ready, 5000, "the server to register");
  const closing = server.close();
  await within(deregistering.promise, 5000, "close() to deregister");
  const results = await Promise.all([1, 2, 3].map(async (i) => {
    await using conn = await Connection.connect({
      hostname: HOST,
      port: server.addr.port,
    });
    return await conn.call("divide", [i * 10, 2], { timeout: 2000 });
  }));
  release.resolve();
  await closing;
  assert.deepEqual(results, [5, 10, 15]);
});

Deno.test("a failing registrar rejects ready and closes the server", async () => {
  const errors: Error[] = [];
  const server = serve(Handlers, {
    hostname: HOST,
    onError: quiet(errors),
    registrar: { register: () => Promise.reject(new Error("ZooKeeper down")) },
  });
  await assert.rejects(server.ready, /ZooKeeper down/);
  await assert.rejects(
    within(server.finished, 5000, "the server to finish"),
    (error: unknown) => error === errors[0],
  );
  assert.match(errors[0]!.message, /^Cannot register server: ZooKeeper down/);
});

Deno.test("the signal option closes the server", async () => {
  const controller = new AbortController();
  const server = serve(Handlers, { hostname: HOST, signal: controller.signal });
  controller.abort();
  await within(server.finished, 2000, "server finished");
});

Deno.test("maxConnections refuses extra connections and keeps serving the others", async () => {
  const errors: Error[] = [];
  await using server = serve(Handlers, {
    hostname: HOST,
    maxConnections: 1,
    onError: quiet(errors),
  });
  await using first = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const second = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  })
    .catch((e) => e);
  if (second instanceof Connection) {
    await within(second.finished, 2000, "refused connection closes");
    await assert.rejects(
      second.call("divide", [1, 1]),
      (e: unknown) =>
        e instanceof ServerClosingError ||
        (e instanceof ConnectionError && !e.written),
    );
  } else {
    // Usually the goaway arrives with the preface: connect() itself rejects.
    assert.ok(
      second instanceof ServerClosingError ||
        (second instanceof ConnectionError && !second.written),
      String(second),
    );
    if (second instanceof ServerClosingError) {
      assert.match(
        second.message,
        /the server is closing: Too many connections/,
      );
    }
  }
  assert.equal(await first.call("divide", [8, 2]), 4);
  assert.match(errors[0]!.message, /limit of 1 connections reached/);
});

Deno.test("a client keeps within the maxInFlightPerConnection the server announced", async () => {
  let running = 0;
  let most = 0;
  /** The handlers running, each released by the test. */
  let held: (() => void)[] = [];
  await using server = serve({
    wait(): Promise<void> {
      most = Math.max(most, ++running);
      return new Promise((resolve) =>
        held.push(() => {
          running--;
          resolve();
        })
      );
    },
    ok: () => "ok",
  }, { hostname: HOST, maxInFlightPerConnection: 3, onError: quiet() });
  await using greedy = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxInFlight: 100 },
  );
  const calls = Promise.all(
    Array.from({ length: 10 }, () => greedy.call("wait", []).catch((e) => e)),
  );
  // Rounds of 3, 3, 3 and 1 handlers, each held until the test saw it.
  for (let left = 10; left > 0;) {
    const round = Math.min(3, left);
    await waitFor(() => held.length === round, `${round} handlers running`);
    const release = held;
    held = [];
    left -= round;
    for (const r of release) r();
  }
  assert.deepEqual(await calls, Array(10).fill(undefined));
  assert.equal(most, 3);
  assert.equal(await greedy.call("ok", []), "ok");
});

Deno.test("a handler's signal aborts when its client disconnects", async () => {
  let reason: unknown;
  let started!: () => void;
  const running = new Promise<void>((resolve) => started = resolve);
  let finished!: () => void;
  const done = new Promise<void>((resolve) => finished = resolve);
  await using server = serve({
    hang: withContext((ctx): Promise<void> => {
      started();
      return new Promise((resolve) => {
        ctx.signal.addEventListener("abort", () => {
          reason = ctx.signal.reason;
          resolve();
          finished();
        }, { once: true });
      });
    }),
  }, { hostname: HOST });
  const conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const call = conn.call("hang", []).catch((e) => e);
  await within(running, 5000, "the handler to start");
  conn.close();
  assert.ok((await call) instanceof ConnectionError);
  await within(done, 2000, "handler aborted");
  assert.ok(reason instanceof ConnectionError);
});

Deno.test("a registrar that throws synchronously does not leak the listener", async () => {
  const server = serve(Handlers, {
    hostname: HOST,
    onError: quiet(),
    registrar: {
      register(): Promise<never> {
        throw new Error("sync failure");
      },
    },
  });
  await assert.rejects(server.ready, /sync failure/);
  // finished rejects too: `await server.finished` ends the process non-zero.
  await assert.rejects(
    within(server.finished, 5000, "the server to finish"),
    /^Error: Cannot register server: sync failure/,
  );
});

Deno.test("stacks stay on the server unless exposeStack is set", async () => {
  const thrower = {
    fail(): never {
      throw new RangeError("deep failure");
    },
  };
  for (const exposeStack of [false, true]) {
    await using server = serve(thrower, { hostname: HOST, exposeStack });
    await using conn = await Connection.connect({
      hostname: HOST,
      port: server.addr.port,
    });
    const error = await conn.call("fail", []).catch((e) => e);
    assert.ok(error instanceof RemoteError);
    assert.equal(
      String(error.stack).includes("--- remote stack ---"),
      exposeStack,
    );
    // The handler's frame (the caller's own frames are in the local stack).
    assert.equal(
      /at (Object\.)?fail \(/.test(String(error.stack)),
      exposeStack,
    );
  }
});

Deno.test("a cancelled call keeps its in-flight slot until its handler settles", async () => {
  let started = 0;
  let running = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  await using server = serve({
    async stubborn(): Promise<string> {
      started++;
      running++;
      await gate; // ignores cancellation
      running--;
      return "done";
    },
    ok: () => "ok",
  }, { hostname: HOST, maxInFlightPerConnection: 4, onError: quiet() });
  // Declared after the server: a failed assertion releases the handlers
  // before the server closes, so the test fails at once, never hangs.
  using _gate = { [Symbol.dispose]: () => release() };
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  // Call and cancel, many times: each handler keeps running.
  for (let round = 0; round < 3; round++) {
    const controller = new AbortController();
    const calls = Array.from(
      { length: 4 },
      () =>
        conn.call("stubborn", [], { signal: controller.signal }).catch((e) =>
          e
        ),
    );
    if (round === 0) {
      await waitFor(() => started === 4, "the four calls to start");
    }
    controller.abort();
    await Promise.all(calls);
  }
  // A deadline on each call: a server that let this one in would hold it.
  // The sync call after it is refused too (every slot is taken); a server
  // that let the first in would answer the second at once: checked first,
  // so such a server fails this test without waiting on the handler.
  const pending = conn.call("stubborn", [], { timeout: 10_000 })
    .catch((e) => e);
  const second = await conn.call("ok", [], { timeout: 10_000 })
    .catch((e) => e);
  assert.ok(second instanceof ResourceExhaustedError, String(second));
  const refused = await pending;
  assert.ok(refused instanceof ResourceExhaustedError, String(refused));
  assert.equal(refused.ran, false);
  assert.equal(started, 4, "handlers started beyond the limit");
  release();
  await waitFor(() => running === 0, "every handler to stop");
  assert.equal(
    await conn.call("stubborn", [], { timeout: 10_000 }),
    "done",
  );
  assert.equal(started, 5);
});

Deno.test("a context-aware handler that stops on cancel frees its slot", async () => {
  let stopped = 0;
  let entered = 0;
  await using server = serve({
    listen: withContext((ctx: CallContext) => {
      entered++;
      return new Promise<never>((_, reject) =>
        ctx.signal.addEventListener("abort", () => {
          stopped++;
          reject(ctx.signal.reason);
        }, { once: true })
      );
    }),
    ok: () => "ok",
  }, { hostname: HOST, maxInFlightPerConnection: 2, onError: quiet() });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  for (let round = 0; round < 5; round++) {
    const controller = new AbortController();
    const calls = [1, 2].map(() =>
      conn.call("listen", [], { signal: controller.signal }).catch((e) => e)
    );
    await waitFor(
      () => entered === 2 * (round + 1),
      "both calls running",
      5000,
    );
    controller.abort();
    await Promise.all(calls);
    await waitFor(
      () => stopped === 2 * (round + 1),
      "the handlers of the round to stop",
    );
  }
  const last = conn.call("listen", [], { timeout: 50 }).catch((e) => e);
  assert.ok((await last) instanceof DeadlineExceededError, "it ran");
  assert.equal(await conn.call("ok", []), "ok");
});

Deno.test("3,000 call+cancel pairs never run more handlers than maxInFlightPerConnection", async () => {
  let started = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  await using server = serve({
    async stubborn(): Promise<void> {
      started++;
      await gate; // ignores cancellation
    },
    ok: () => "ok",
  }, { hostname: HOST, maxInFlightPerConnection: 64, onError: quiet() });
  using _gate = { [Symbol.dispose]: () => release() };
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const outcomes = [];
  for (let i = 0; i < 3000; i++) {
    const controller = new AbortController();
    outcomes.push(
      conn.call("stubborn", [], { signal: controller.signal }).catch((e) => e),
    );
    controller.abort(); // the request is in the write batch: cancel follows it
  }
  await Promise.all(outcomes);
  // Every request reached the server before this answer (TCP keeps order).
  assert.ok(
    (await conn.call("ok", []).catch((e) => e)) instanceof
      ResourceExhaustedError,
  );
  assert.equal(started, 64);
  release();
  await waitFor(
    async () => (await conn.call("ok", []).catch(() => "")) === "ok",
    "a call to succeed",
  );
});

Deno.test("health answers not-serving on a connection draining because the server closes", async () => {
  const release = Promise.withResolvers<void>();
  const server = serve({ slow: () => release.promise.then(() => "done") }, {
    hostname: HOST,
  });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  try {
    await writeAll(conn, concat(HELLO, requestFrame(1, "slow", [])));
    await frames.preface();
    // The handler runs; close() drains: goaway first.
    await waitFor(() => server.connections === 1, "the connection", 5000);
    const closing = server.close({ timeout: 10_000 });
    await frames.next(FrameType.Goaway);
    // After the goaway, zkrpc's own health method is still answered.
    await writeAll(conn, requestFrame(2, "zkrpc.health", []));
    const health = await frames.next(FrameType.Result);
    assert.equal(health.id, 2);
    assert.deepEqual(jsonCodec.decode(health.payload), {
      status: "not-serving",
    });
    // Any other request is refused, not run.
    await writeAll(conn, requestFrame(3, "slow", []));
    const refused = await frames.next(FrameType.Error);
    assert.equal(refused.id, 3);
    assert.match(
      (jsonCodec.decode(refused.payload) as { message: string }).message,
      /server is closing \(request not run\)/,
    );
    release.resolve();
    const done = await frames.next(FrameType.Result);
    assert.deepEqual([done.id, jsonCodec.decode(done.payload)], [1, "done"]);
    conn.close();
    await within(closing, 15_000, "close()");
  } finally {
    release.resolve();
    await server.close();
  }
});
