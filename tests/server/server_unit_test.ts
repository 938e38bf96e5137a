/**
 * `serveBounded()` and `RpcServer` (`src/server/server.ts`) with a scripted
 * registrar and in-process servers on 127.0.0.1: health while warming up,
 * serving, set not serving, per service and from the moment `close()`
 * starts; withdraw and restore; `ready` and `finished` on every path; the
 * settings a connection announces; interceptors around every call; the
 * signal option; errors of the registrar and of `onError` itself.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Registrar,
  type Registration,
  serve,
} from "../../src/server/server.ts";
import {
  type CallContext,
  withContext,
} from "../../src/server/call_context.ts";
import { Connection } from "../../src/client/connection.ts";
import { ServerClosingError } from "../../src/errors.ts";
import type { ServerCall, ServerInterceptor } from "../../src/_interceptors.ts";
import {
  decodeSettings,
  DEFAULT_MAX_FRAME_SIZE,
  FrameType,
  PROTOCOL_VERSION,
} from "../../src/protocol/frame.ts";
import { HELLO, rawFrames, writeAll } from "../_core_helpers.ts";
import { stillPending, waitFor, within } from "../_wait.ts";
import { serveBounded, untilAborted } from "./_helpers.ts";

const HOST = "127.0.0.1";
const HEALTH = "zkrpc.health";

function quiet(errors: Error[] = []): (error: Error) => void {
  return (error) => void errors.push(error);
}

/** A registrar recording what the server does with its registration. */
function recordingRegistrar(overrides: Partial<Registration> = {}) {
  const events: string[] = [];
  const fail: ((e: Error) => void)[] = [];
  const registrar: Registrar = {
    register(addr, context) {
      events.push(`register ${addr.port} tls=${context?.tls}`);
      if (context) fail.push(context.fail);
      return Promise.resolve({
        deregister() {
          events.push("deregister");
          return Promise.resolve();
        },
        withdraw() {
          events.push("withdraw");
          return Promise.resolve();
        },
        restore() {
          events.push("restore");
        },
        ...overrides,
      });
    },
  };
  return { registrar, events, fail };
}

async function connect(port: number): Promise<Connection> {
  return await within(
    Connection.connect({ hostname: HOST, port }),
    5000,
    "the connection",
  );
}

const health = (conn: Connection, service?: unknown) =>
  conn.call(HEALTH, service === undefined ? [] : [service]) as Promise<{
    status: string;
  }>;

Deno.test("server: health is serving once listening; per service as set; unknown services are unknown", async () => {
  await using server = serveBounded({ ok: () => 1 }, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  assert.deepEqual(await health(conn), { status: "serving" });
  assert.deepEqual(await health(conn, ""), { status: "serving" });
  assert.deepEqual(await health(conn, null), { status: "serving" });
  assert.deepEqual(await health(conn, "orders"), { status: "unknown" });
  server.setServing(false, "orders");
  server.setServing(true, "billing");
  assert.deepEqual(await health(conn, "orders"), { status: "not-serving" });
  assert.deepEqual(await health(conn, "billing"), { status: "serving" });
  assert.deepEqual(
    await health(conn),
    { status: "serving" },
    "per service only",
  );
  server.setServing(true, "orders");
  assert.deepEqual(await health(conn, "orders"), { status: "serving" });
  assert.deepEqual(await health(conn, 7), { status: "unknown" });
});

Deno.test("server: set not serving, every service is not-serving and the registration is withdrawn once; serving again restores it", async () => {
  const { registrar, events } = recordingRegistrar();
  await using server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    registrar,
    onError: quiet(),
  });
  await within(server.ready, 5000, "ready");
  server.setServing(true, "orders");
  // A connection opened while serving gets goaway when the server stops.
  await using conn = await connect(server.addr.port);
  assert.equal(await conn.call("ok", []), 1);
  const goaway = new Promise<string>((resolve) =>
    conn.addEventListener("goaway", () => resolve(conn.goawayReason ?? ""), {
      once: true,
    })
  );
  server.setServing(false);
  server.setServing(false);
  assert.equal(
    await within(goaway, 5000, "the goaway"),
    "Server is not serving",
  );
  await using fresh = await connect(server.addr.port);
  assert.deepEqual(await health(fresh), { status: "not-serving" });
  assert.deepEqual(await health(fresh, "orders"), { status: "not-serving" });
  assert.deepEqual(await health(fresh, "other"), { status: "unknown" });
  server.setServing(true);
  server.setServing(true);
  assert.deepEqual(await health(fresh), { status: "serving" });
  assert.deepEqual(await health(fresh, "orders"), { status: "serving" });
  assert.deepEqual(events, [
    `register ${server.addr.port} tls=false`,
    "withdraw",
    "restore",
  ]);
});

Deno.test("server: health says not-serving from the moment close() starts, while it still deregisters", async () => {
  const deregistering = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const { registrar } = recordingRegistrar({
    deregister() {
      deregistering.resolve();
      return release.promise;
    },
  });
  const server = serveBounded({ ok: () => 1 }, { hostname: HOST, registrar });
  try {
    await within(server.ready, 5000, "ready");
    await using conn = await connect(server.addr.port);
    server.setServing(true, "orders");
    assert.deepEqual(await health(conn), { status: "serving" });
    const closing = server.close();
    await within(deregistering.promise, 5000, "close() to deregister");
    assert.deepEqual(await health(conn), { status: "not-serving" });
    assert.deepEqual(await health(conn, "orders"), { status: "not-serving" });
    // Still served meanwhile (clients that have not seen the node go).
    assert.equal(await conn.call("ok", []), 1);
    // setServing(true) during close changes nothing.
    server.setServing(true);
    assert.deepEqual(await health(conn), { status: "not-serving" });
    release.resolve();
    await within(closing, 5000, "close()");
  } finally {
    release.resolve();
    await server.close();
  }
});

Deno.test("server: setServing(false) before the registration resolves withdraws it as soon as it does", async () => {
  const registered = Promise.withResolvers<void>();
  const events: string[] = [];
  const registrar: Registrar = {
    async register() {
      await registered.promise;
      return {
        deregister: () => Promise.resolve(),
        withdraw() {
          events.push("withdraw");
          return Promise.resolve();
        },
      };
    },
  };
  await using server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    registrar,
  });
  server.setServing(false);
  assert.deepEqual(events, []);
  registered.resolve();
  await within(server.ready, 5000, "ready");
  assert.deepEqual(events, ["withdraw"]);
});

Deno.test("server: until warmUp resolves health is not-serving and nothing is registered; then both", async () => {
  const warm = Promise.withResolvers<void>();
  const { registrar, events } = recordingRegistrar();
  await using server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    registrar,
    warmUp: warm.promise,
  });
  await using conn = await connect(server.addr.port);
  assert.deepEqual(await health(conn), { status: "not-serving" });
  assert.equal(await stillPending(server.ready), true);
  assert.deepEqual(events, []);
  warm.resolve();
  await within(server.ready, 5000, "ready");
  assert.deepEqual(events, [`register ${server.addr.port} tls=false`]);
  assert.deepEqual(await health(conn), { status: "serving" });
});

Deno.test("server: a warmUp that rejects fails ready and finished with the reason and closes the server", async () => {
  const errors: Error[] = [];
  const { registrar, events } = recordingRegistrar();
  const cause = new Error("cache cold");
  const server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    registrar,
    warmUp: Promise.reject(cause),
    onError: quiet(errors),
  });
  const check = (e: unknown) =>
    e instanceof Error &&
    e.message === "Cannot serve: warmUp rejected: cache cold" &&
    e.cause === cause;
  await assert.rejects(within(server.ready, 5000, "ready"), check);
  await assert.rejects(within(server.finished, 5000, "finished"), check);
  assert.equal(errors.length, 1);
  assert.ok(check(errors[0]));
  assert.deepEqual(events, [], "never registered");
  assert.equal(server.connections, 0);
});

Deno.test("server: a registration that fails later (context.fail) closes the server; messages starting with Cannot are kept", async () => {
  for (
    const [given, expected] of [
      ["session expired", "Cannot register server: session expired"],
      ["Cannot create node", "Cannot create node"],
    ]
  ) {
    const errors: Error[] = [];
    const { registrar, fail } = recordingRegistrar();
    const server = serveBounded({ ok: () => 1 }, {
      hostname: HOST,
      registrar,
      onError: quiet(errors),
    });
    await within(server.ready, 5000, "ready");
    fail[0]!(new Error(given));
    await assert.rejects(
      within(server.finished, 5000, "finished"),
      (e: unknown) => e instanceof Error && e.message === expected,
    );
    assert.deepEqual(errors.map((e) => e.message), [expected]);
    if (expected !== given) {
      assert.equal((errors[0]!.cause as Error).message, given);
    }
    // Once closing, a later failure is ignored.
    fail[0]!(new Error("again"));
    assert.equal(errors.length, 1);
  }
});

Deno.test("server: close() while warming up rejects ready with ServerClosingError and finishes without waiting for warmUp", async () => {
  const never = Promise.withResolvers<void>();
  const server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    warmUp: never.promise,
  });
  const closing = server.close();
  await assert.rejects(
    server.ready,
    (e: unknown) =>
      e instanceof ServerClosingError &&
      e.message === "Cannot serve: the server was closed before it was ready",
  );
  await within(closing, 5000, "close()");
  await within(server.finished, 5000, "finished");
  never.resolve();
});

Deno.test("server: ready waits for the registration's registered()", async () => {
  const visible = Promise.withResolvers<void>();
  const { registrar } = recordingRegistrar({
    registered: () => visible.promise,
  });
  await using server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    registrar,
  });
  await waitFor(() => server.connections === 0, "listening");
  assert.equal(await stillPending(server.ready), true);
  visible.resolve();
  await within(server.ready, 5000, "ready");
});

Deno.test("server: errors of deregister, withdraw and restore are reported, and close still completes", async () => {
  const errors: Error[] = [];
  const { registrar } = recordingRegistrar({
    deregister: () => Promise.reject(new Error("d")),
    withdraw: () => Promise.reject(new Error("w")),
    restore() {
      throw new Error("r");
    },
  });
  const server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    registrar,
    onError: quiet(errors),
  });
  await within(server.ready, 5000, "ready");
  server.setServing(false);
  await waitFor(() => errors.length === 1, "the withdraw error");
  server.setServing(true);
  await within(server.close(), 5000, "close()");
  await within(server.finished, 5000, "finished");
  assert.deepEqual(errors.map((e) => e.message), [
    "Cannot withdraw server from discovery: w",
    "Cannot register server again: r",
    "Cannot deregister server: d",
  ]);
  assert.deepEqual(errors.map((e) => (e.cause as Error).message), [
    "w",
    "r",
    "d",
  ]);
});

Deno.test("server: a registrar whose register() throws synchronously fails ready", async () => {
  const errors: Error[] = [];
  const server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    onError: quiet(errors),
    registrar: {
      register() {
        throw new Error("no registry");
      },
    },
  });
  await assert.rejects(
    within(server.ready, 5000, "ready"),
    /Cannot register server: no registry/,
  );
  await assert.rejects(within(server.finished, 5000, "finished"));
});

Deno.test("server: an onError that throws is reported on the console, the server goes on; the default onError warns", async () => {
  const logged: unknown[][] = [];
  const saved = [console.error, console.warn] as const;
  console.error = (...args: unknown[]) => void logged.push(["error", ...args]);
  console.warn = (...args: unknown[]) => void logged.push(["warn", ...args]);
  try {
    const failing = serveBounded({ ok: () => 1 }, {
      hostname: HOST,
      registrar: { register: () => Promise.reject(new Error("x")) },
      onError() {
        throw new Error("onError broke");
      },
    });
    await assert.rejects(within(failing.finished, 5000, "finished"));
    assert.equal(logged[0]![0], "error");
    assert.equal(logged[0]![1], "zkrpc server: onError threw");
    const plain = serveBounded({ ok: () => 1 }, {
      hostname: HOST,
      registrar: { register: () => Promise.reject(new Error("y")) },
    });
    await assert.rejects(within(plain.finished, 5000, "finished"));
    assert.deepEqual(logged[1], [
      "warn",
      "zkrpc server: Cannot register server: y",
    ]);
  } finally {
    [console.error, console.warn] = saved;
  }
});

Deno.test("server: the signal option closes the server, also when already aborted; after close it is let go", async () => {
  const early = new AbortController();
  early.abort();
  const a = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    signal: early.signal,
  });
  await within(a.finished, 5000, "closed at once");
  const later = new AbortController();
  const b = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    signal: later.signal,
  });
  assert.equal(await stillPending(b.finished), true);
  later.abort();
  await within(b.finished, 5000, "closed on abort");
  const kept = new AbortController();
  let removed = false;
  const signal = kept.signal;
  const original = signal.removeEventListener.bind(signal);
  signal.removeEventListener = ((...args: Parameters<typeof original>) => {
    removed = args[0] === "abort";
    return original(...args);
  }) as typeof signal.removeEventListener;
  const c = serveBounded({ ok: () => 1 }, { hostname: HOST, signal });
  await c.close();
  assert.equal(removed, true, "close() removes its abort listener");
});

Deno.test("server: each connection announces the limits given, or the defaults", async () => {
  const settingsOf = async (options: Parameters<typeof serve>[1]) => {
    await using server = serveBounded({ ok: () => 1 }, {
      hostname: HOST,
      ...options,
    });
    using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
    const frames = rawFrames(conn);
    await writeAll(conn, HELLO);
    await frames.preface();
    return decodeSettings((await frames.next(FrameType.Settings)).payload);
  };
  const given = await settingsOf({
    maxFrameSize: 70_000,
    maxInFlightPerConnection: 9,
    streamWindow: 17,
  });
  assert.equal(given.maxFrameSize, 70_000);
  assert.equal(given.maxInFlight, 9);
  assert.equal(given.streamWindow, 17);
  assert.deepEqual(given.codecs, ["msgpack", "json"]);
  const defaults = await settingsOf({});
  assert.equal(defaults.maxFrameSize, DEFAULT_MAX_FRAME_SIZE);
  assert.equal(defaults.maxInFlight, 1024);
  assert.equal(defaults.streamWindow, 256);
});

Deno.test("server: describe names the protocol, the codecs in order and the methods; methods lists the callable names", async () => {
  const { jsonCodec } = await import("../../src/protocol/codec.ts");
  await using server = serveBounded({ add: (a: number, b: number) => a + b }, {
    hostname: HOST,
    codec: [jsonCodec],
  });
  assert.deepEqual(server.methods, ["add"]);
  await using conn = await connect(server.addr.port);
  assert.deepEqual(await conn.call("zkrpc.describe", []), {
    protocol: PROTOCOL_VERSION,
    codec: "json",
    methods: [{ name: "add", params: 2 }],
  });
});

Deno.test("server: interceptors see every call (method, params, metadata, deadline, address, signal) and run plain and context handlers with this bound", async () => {
  const seen: ServerCall[] = [];
  const params: unknown[][] = [];
  const aborted: boolean[] = [];
  const order: string[] = [];
  const outer: ServerInterceptor = async (call, next) => {
    order.push(`outer ${call.method}`);
    seen.push(call);
    params.push([...call.params]);
    aborted.push(call.signal.aborted);
    return await next();
  };
  const inner: ServerInterceptor = (call, next) => {
    order.push(`inner ${call.method}`);
    call.params = call.params.map((p) => (p as number) * 10);
    return next();
  };
  const handlers = {
    factor: 2,
    times(this: { factor: number }, a: number) {
      return a * this.factor;
    },
    ctx: withContext(function (
      this: { factor: number },
      ctx: CallContext,
      a: number,
    ) {
      return `${ctx.method}:${a * this.factor}:${ctx.signal.aborted}`;
    }),
  };
  await using server = serveBounded(handlers, {
    hostname: HOST,
    interceptors: [outer, inner],
  });
  await using conn = await connect(server.addr.port);
  assert.equal(
    await conn.call("times", [3], { timeout: 4000, metadata: { t: "v" } }),
    60,
  );
  assert.equal(await conn.call("ctx", [1]), "ctx:20:false");
  assert.deepEqual(await health(conn), { status: "serving" });
  assert.deepEqual(order, [
    "outer times",
    "inner times",
    "outer ctx",
    "inner ctx",
    "outer zkrpc.health",
    "inner zkrpc.health",
  ]);
  const first = seen[0]!;
  assert.deepEqual(params, [[3], [1], []]);
  assert.deepEqual(first.params, [30], "an interceptor may replace them");
  assert.deepEqual({ ...first.metadata }, { t: "v" });
  assert.ok(Number.isFinite(first.deadline), "a call with a timeout");
  assert.equal(first.remoteAddr?.hostname, HOST);
  assert.deepEqual(aborted, [false, false, false]);
  assert.equal(seen[1]!.deadline, Infinity);
});

Deno.test("serveBounded(): handlers that cannot be served throw and free the port at once", () => {
  const probe = Deno.listen({ hostname: HOST, port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  assert.throws(
    () => serve({}, { hostname: HOST, port }),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message.startsWith("Cannot serve handlers: no callable method found"),
  );
  const again = Deno.listen({ hostname: HOST, port });
  again.close();
});

Deno.test("server: a failure nobody awaits (ready or finished) is not an unhandled rejection", async () => {
  const failing = () => ({
    hostname: HOST,
    onError: quiet(),
    registrar: { register: () => Promise.reject(new Error("down")) },
  });
  const a = serveBounded({ ok: () => 1 }, failing());
  await assert.rejects(within(a.ready, 5000, "ready"), /down/);
  await within(a.close(), 5000, "close()"); // finished is never awaited
  const b = serveBounded({ ok: () => 1 }, failing());
  await assert.rejects(within(b.finished, 5000, "finished"), /down/);
  // ready is never awaited
});

Deno.test("server: setServing with the empty service name is the whole server", async () => {
  await using server = serveBounded({ ok: () => 1 }, { hostname: HOST });
  server.setServing(true, "orders");
  server.setServing(false, "");
  // A connection opened now answers health (its other calls get goaway).
  await using a = await connect(server.addr.port);
  assert.deepEqual(await health(a, "orders"), { status: "not-serving" });
  server.setServing(true, "");
  await using b = await connect(server.addr.port);
  assert.deepEqual(await health(b, "orders"), { status: "serving" });
  assert.equal(await b.call("ok", []), 1);
});

Deno.test("server: close() deregisters, then sends goaway; after closeTimeout it aborts what still runs and closes", async () => {
  const { registrar, events } = recordingRegistrar();
  const hang = untilAborted();
  const server = serveBounded({ hang: hang.handler }, {
    hostname: HOST,
    registrar,
    closeTimeout: 50,
    onError: quiet(),
  });
  await within(server.ready, 5000, "ready");
  await using conn = await connect(server.addr.port);
  conn.addEventListener("goaway", () => events.push("goaway"));
  const call = conn.call("hang", []).catch((e: Error) => e);
  await within(hang.started, 5000, "the call to start");
  await within(server.close(), 5000, "close() after its closeTimeout");
  const reason = await within(hang.aborted, 5000, "the abort") as Error;
  assert.ok(reason instanceof ServerClosingError);
  assert.equal(
    reason.message,
    "Server closed before the call completed: close timeout of 50 ms exceeded",
  );
  assert.equal((await call as Error).name, "ConnectionError");
  assert.deepEqual(events, [
    `register ${server.addr.port} tls=false`,
    "deregister",
    "goaway",
  ]);
  assert.equal(server.connections, 0);
  await within(server.finished, 5000, "finished");
});

Deno.test("server: nested calls of a context handler inherit its deadline by default, not with inheritDeadline false", async () => {
  await using inner = serveBounded({
    deadline: withContext((ctx: CallContext) => Number.isFinite(ctx.deadline)),
  }, { hostname: HOST });
  await using client = await connect(inner.addr.port);
  const outer = (inheritDeadline?: boolean) =>
    serveBounded({
      nested: withContext(() => client.call("deadline", [])),
    }, {
      hostname: HOST,
      ...(inheritDeadline === undefined ? {} : { inheritDeadline }),
    });
  await using inheriting = outer(); // the default

  await using plain = outer(false);
  await using a = await connect(inheriting.addr.port);
  await using b = await connect(plain.addr.port);
  assert.equal(await a.call("nested", [], { timeout: 5000 }), true);
  assert.equal(await b.call("nested", [], { timeout: 5000 }), false);
});

Deno.test("server: close() is idempotent; its timeout overrides closeTimeout", async () => {
  const hang = untilAborted();
  const server = serveBounded({ hang: hang.handler }, {
    hostname: HOST,
    closeTimeout: 60_000,
    onError: quiet(),
  });
  await using conn = await connect(server.addr.port);
  const call = conn.call("hang", []).catch((e: Error) => e);
  await within(hang.started, 5000, "the call to start");
  const closing = server.close({ timeout: 30 });
  assert.equal(server.close(), closing);
  await within(closing, 5000, "close() after 30 ms");
  assert.equal(
    (await within(hang.aborted, 5000, "the abort") as Error).message,
    "Server closed before the call completed: close timeout of 30 ms exceeded",
  );
  await call;
});

Deno.test("server: close() while warming up never registers, even when warmUp resolves later; a registration without withdraw is left alone", async () => {
  const warm = Promise.withResolvers<void>();
  const { registrar, events } = recordingRegistrar();
  const server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    registrar,
    warmUp: warm.promise,
  });
  await within(server.close(), 5000, "close()");
  warm.resolve();
  await assert.rejects(server.ready, ServerClosingError);
  await within(server.finished, 5000, "finished");
  assert.deepEqual(events, []);
  const errors: Error[] = [];
  await using plain = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    onError: quiet(errors),
    registrar: {
      register: () => Promise.resolve({ deregister: () => Promise.resolve() }),
    },
  });
  await within(plain.ready, 5000, "ready");
  plain.setServing(false);
  plain.setServing(true);
  // A round trip: an error reported on a later turn would be in by then.
  await using conn = await connect(plain.addr.port);
  assert.deepEqual(await health(conn), { status: "serving" });
  assert.deepEqual(errors, []);
});

Deno.test("server: describe lists the default codecs in order", async () => {
  await using server = serveBounded({ ok: () => 1 }, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  const description = await conn.call("zkrpc.describe", []) as {
    codec: string;
  };
  assert.equal(description.codec, "msgpack, json");
});

Deno.test("server: serving again before the registration resolved, or a withdraw that throws at once, is handled", async () => {
  const errors: Error[] = [];
  const registered = Promise.withResolvers<Registration>();
  await using server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    onError: quiet(errors),
    registrar: { register: () => registered.promise },
  });
  server.setServing(false);
  server.setServing(true);
  assert.equal(errors.length, 0, "nothing to withdraw or restore yet");
  registered.resolve({
    deregister: () => Promise.resolve(),
    withdraw() {
      throw new Error("at once");
    },
  });
  await within(server.ready, 5000, "ready");
  server.setServing(false);
  await waitFor(() => errors.length === 1, "the withdraw error");
  assert.equal(
    errors[0]!.message,
    "Cannot withdraw server from discovery: at once",
  );
});

Deno.test("server: close() gives handlers aborted at its timeout a moment to settle", async () => {
  let settled = false;
  const started = Promise.withResolvers<void>();
  const server = serveBounded({
    slowToStop: withContext((ctx: CallContext) => {
      started.resolve();
      return new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => {
          // sleep-ok: a handler that takes a moment to honour its signal
          setTimeout(() => {
            settled = true;
            reject(ctx.signal.reason);
          }, 20);
        }, { once: true })
      );
    }),
  }, { hostname: HOST, closeTimeout: 10, onError: quiet() });
  await using conn = await connect(server.addr.port);
  const call = conn.call("slowToStop", []).catch((e: Error) => e);
  await within(started.promise, 5000, "the call to start");
  await within(server.close(), 5000, "close()");
  assert.equal(settled, true, "close() waited for the aborted handler");
  await call;
});

Deno.test("serve(): a bad codec list is refused naming serve()", () => {
  assert.throws(
    () => serve({ ok: () => 1 }, { hostname: HOST, codec: [] }),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message === "Cannot serve: the codec list is empty",
  );
});
