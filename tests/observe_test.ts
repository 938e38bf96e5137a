/**
 * Issue 13: interceptors (order, short-circuit, both sides), call metadata
 * (round trip, limits), deadline propagation through a nested call, health
 * and readiness, member filters and weighted balancing.
 *
 * @module
 */
import { deadlineSeen } from "./_core_helpers.ts";
import assert from "node:assert/strict";
import {
  CancelledError,
  Connection,
  DeadlineExceededError,
  DistributedChannel,
  RemoteError,
  serve,
  StaticMembership,
  withContext,
} from "../mod.ts";
import { HEALTH_METHOD, MAX_METADATA_SIZE } from "../protocol.ts";
import type {
  ClientInterceptor,
  MemberData,
  Registrar,
  ServerInterceptor,
} from "../extend.ts";

const HOST = "127.0.0.1";

function connect(port: number, interceptors?: ClientInterceptor[]) {
  return Connection.connect(
    { hostname: HOST, port },
    interceptors === undefined ? {} : { interceptors },
  );
}

Deno.test("server interceptors run in order around the handler, see params, metadata and outcome", async () => {
  const log: string[] = [];
  const tag = (name: string): ServerInterceptor => async (call, next) => {
    log.push(
      `${name} in ${call.method} ${JSON.stringify(call.params)} ${
        call.metadata["tenant"]
      }`,
    );
    try {
      const result = await next();
      log.push(`${name} out ${JSON.stringify(result)}`);
      return result;
    } catch (error) {
      log.push(`${name} error ${(error as Error).message}`);
      throw error;
    }
  };
  await using server = serve({
    add: (a: number, b: number) => {
      log.push("handler");
      return a + b;
    },
    fail: () => {
      throw new Error("boom");
    },
  }, { hostname: HOST, interceptors: [tag("a"), tag("b")] });
  await using conn = await connect(server.addr.port);
  assert.equal(
    await conn.call("add", [1, 2], { metadata: { tenant: "acme" } }),
    3,
  );
  assert.deepEqual(log, [
    "a in add [1,2] acme",
    "b in add [1,2] acme",
    "handler",
    "b out 3",
    "a out 3",
  ]);
  log.length = 0;
  await assert.rejects(conn.call("fail", []), RemoteError);
  assert.deepEqual(log, [
    "a in fail [] undefined",
    "b in fail [] undefined",
    "b error boom",
    "a error boom",
  ]);
});

Deno.test("a server interceptor can short-circuit (the handler does not run) or decorate", async () => {
  let ran = 0;
  const auth: ServerInterceptor = (call, next) => {
    if (call.metadata["token"] !== "s3cret") {
      return Promise.reject(new Error("Cannot call: not authorised"));
    }
    return next();
  };
  const double: ServerInterceptor = async (_call, next) =>
    (await next() as number) * 2;
  await using server = serve({
    one: () => {
      ran++;
      return 1;
    },
  }, { hostname: HOST, interceptors: [auth, double] });
  await using conn = await connect(server.addr.port);
  await assert.rejects(conn.call("one", []), /not authorised/);
  assert.equal(ran, 0);
  assert.equal(
    await conn.call("one", [], { metadata: { token: "s3cret" } }),
    2,
  );
  assert.equal(ran, 1);
});

Deno.test("client interceptors run in order, may add metadata, and can short-circuit", async () => {
  const log: string[] = [];
  await using server = serve({
    echo: withContext((ctx) => ({ ...ctx.metadata })),
  }, { hostname: HOST });
  const a: ClientInterceptor = async (call, next) => {
    log.push(`a ${call.method} attempt ${call.attempt}`);
    call.metadata["from"] = "a";
    const result = await next();
    log.push("a out");
    return result;
  };
  const b: ClientInterceptor = (call, next) => {
    log.push(`b ${call.target === `${HOST}:${server.addr.port}`}`);
    if (call.params[0] === "cached") return Promise.resolve("from cache");
    return next();
  };
  await using conn = await connect(server.addr.port, [a, b]);
  assert.deepEqual(await conn.call("echo", [], { metadata: { x: "1" } }), {
    x: "1",
    from: "a",
  });
  assert.deepEqual(log, ["a echo attempt 1", "b true", "a out"]);
  assert.equal(await conn.call("echo", ["cached"]), "from cache");
});

Deno.test("channel interceptors see every attempt with its number", async () => {
  await using good = serve({ ok: () => "ok" }, { hostname: HOST });
  // A port nothing listens on: the first attempt there fails to connect.
  const dead = Deno.listen({ hostname: HOST, port: 0 });
  const deadPort = (dead.addr as Deno.NetAddr).port;
  dead.close();
  const attempts: string[] = [];
  const membership = new StaticMembership([
    { host: HOST, port: deadPort },
    { host: HOST, port: good.addr.port },
  ]);
  await using channel = new DistributedChannel({
    membership,
    balancer: {
      pick: (c) => c.find((e) => e.key.endsWith(`:${deadPort}`)) ?? c[0],
    },
    interceptors: [(call, next) => {
      attempts.push(`${call.attempt} ${call.target}`);
      return next();
    }],
  });
  assert.equal(await channel.call("ok", []), "ok");
  // The first attempt never connected: it counts, but nothing was sent.
  assert.deepEqual(attempts, [`2 ${HOST}:${good.addr.port}`]);
  attempts.length = 0;
  membership.set([{ host: HOST, port: good.addr.port }]);
  assert.equal(await channel.call("ok", []), "ok");
  assert.deepEqual(attempts, [`1 ${HOST}:${good.addr.port}`]);
});

Deno.test("metadata round-trips to ctx.metadata; bad or oversized metadata fails before sending", async () => {
  let calls = 0;
  await using server = serve({
    echo: withContext((ctx) => {
      calls++;
      return { ...ctx.metadata };
    }),
  }, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  const metadata = { "user-id": "42", "x.lang": "héllo ✓", empty: "" };
  assert.deepEqual(await conn.call("echo", [], { metadata }), metadata);
  assert.deepEqual(await conn.call("echo", []), {});
  await assert.rejects(
    conn.call("echo", [], {
      metadata: { big: "x".repeat(MAX_METADATA_SIZE) },
    }),
    new RangeError(
      `Cannot call method "echo": metadata exceeds the limit of ${MAX_METADATA_SIZE} bytes`,
    ),
  );
  await assert.rejects(
    conn.call("echo", [], { metadata: { "Upper": "1" } }),
    TypeError,
  );
  await assert.rejects(
    conn.call("echo", [], { metadata: { "zkrpc-internal": "1" } }),
    /is reserved/,
  );
  await assert.rejects(
    conn.call("echo", [], {
      metadata: { n: 1 as unknown as string },
    }),
    /must be a string/,
  );
  assert.equal(calls, 2);
  // The connection is still usable.
  assert.deepEqual(await conn.call("echo", [], { metadata: { a: "b" } }), {
    a: "b",
  });
});

Deno.test("a nested call inherits the outer call's remaining deadline; parent: null opts out", async () => {
  await using inner = serve({
    deadline: withContext((ctx) => deadlineSeen(ctx)),
  }, { hostname: HOST });
  await using innerConn = await connect(inner.addr.port);
  await using outer = serve({
    nest: withContext(async (ctx, optOut: boolean) => ({
      outer: ctx.deadline,
      inner: await innerConn.call(
        "deadline",
        [],
        optOut ? { parent: null } : {},
      ),
    })),
    explicit: withContext(async (ctx) =>
      await innerConn.call("deadline", [], { parent: ctx, timeout: 60_000 })
    ),
  }, { hostname: HOST });
  await using conn = await connect(outer.addr.port);
  const before = Date.now();
  const r = await conn.call("nest", [false], { timeout: 5000 }) as {
    outer: number;
    inner: number;
  };
  // clock-ok: an absolute deadline (a timestamp), not a duration
  assert.ok(r.outer >= before + 4000 && r.outer <= Date.now() + 5000);
  // The inner deadline is the outer's remainder (up to transit and rounding).
  assert.ok(
    Math.abs(r.inner - r.outer) < 500,
    `inner ${r.inner} outer ${r.outer}`,
  );
  const free = await conn.call("nest", [true], { timeout: 5000 }) as {
    inner: number | null;
  };
  assert.equal(free.inner, null);
  const explicit = await conn.call("explicit", [], { timeout: 5000 }) as number;
  // clock-ok: an absolute deadline (a timestamp), not a duration
  assert.ok(explicit <= Date.now() + 5000, `${explicit}`);
  // Without a deadline outside, none inside.
  assert.deepEqual(await conn.call("nest", [false]), {
    outer: Infinity,
    inner: null,
  });
});

Deno.test("a nested call after the outer deadline fails at once with DeadlineExceededError", async () => {
  await using inner = serve({ ok: () => true }, { hostname: HOST });
  await using innerConn = await connect(inner.addr.port);
  let innerError: unknown;
  const done = Promise.withResolvers<void>();
  await using outer = serve({
    late: withContext(async (ctx) => {
      // wait-ok: a handler waiting for the client's cancel; the call has a deadline
      await new Promise<void>((resolve) => {
        ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      // The client's cancel can arrive just before the server-side deadline.
      while (Date.now() <= ctx.deadline!) {
        // sleep-ok: waits until the wall-clock deadline has passed: that is the scenario
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      try {
        await innerConn.call("ok", []);
      } catch (error) {
        innerError = error;
      }
      done.resolve();
    }),
  }, { hostname: HOST });
  await using conn = await connect(outer.addr.port);
  await assert.rejects(
    conn.call("late", [], { timeout: 50 }),
    DeadlineExceededError,
  );
  await done.promise;
  assert.ok(innerError instanceof DeadlineExceededError, String(innerError));
});

Deno.test("ctx.signal fires at the deadline even without the client's cancel", async () => {
  const aborted = Promise.withResolvers<unknown>();
  await using server = serve({
    wait: withContext((ctx) => {
      ctx.signal.addEventListener(
        "abort",
        () => aborted.resolve(ctx.signal.reason),
        { once: true },
      );
      return new Promise((resolve) =>
        ctx.signal.addEventListener("abort", resolve, { once: true })
      );
    }),
  }, { hostname: HOST });
  // A raw request with a 30 ms deadline and no cancel: a client whose
  // timer would fire much later.
  await using conn = await connect(server.addr.port);
  const call = conn.call("wait", [], { timeout: 30 }).catch(() => {});
  const reason = await aborted.promise;
  assert.ok(reason instanceof CancelledError, String(reason));
  await call;
});

Deno.test("health: not-serving and unregistered until warmUp resolves, serving, then not-serving as close() starts", async () => {
  const warm = Promise.withResolvers<void>();
  const events: string[] = [];
  const deregistered = Promise.withResolvers<void>();
  let statusAtDeregister: unknown;
  const holder: { conn?: Connection } = {};
  const registrar: Registrar = {
    register() {
      events.push("register");
      return Promise.resolve({
        async deregister() {
          statusAtDeregister = await holder.conn!.call(HEALTH_METHOD, []);
          events.push("deregister");
          deregistered.resolve();
        },
      });
    },
  };
  const server = serve({ ok: () => true }, {
    hostname: HOST,
    registrar,
    warmUp: warm.promise,
  });
  const conn = holder.conn = await connect(server.addr.port);
  try {
    assert.deepEqual(await conn.call(HEALTH_METHOD, []), {
      status: "not-serving",
    });
    assert.deepEqual(events, []);
    warm.resolve();
    await server.ready;
    assert.deepEqual(events, ["register"]);
    assert.deepEqual(await conn.call(HEALTH_METHOD, []), { status: "serving" });
    server.setServing(false, "orders");
    assert.deepEqual(await conn.call(HEALTH_METHOD, ["orders"]), {
      status: "not-serving",
    });
    assert.deepEqual(await conn.call(HEALTH_METHOD, ["billing"]), {
      status: "unknown",
    });
    server.setServing(true, "orders");
    assert.deepEqual(await conn.call(HEALTH_METHOD, ["orders"]), {
      status: "serving",
    });
    const closing = server.close();
    await deregistered.promise;
    assert.deepEqual(statusAtDeregister, { status: "not-serving" });
    await closing;
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test("a server whose warmUp rejects never registers and closes", async () => {
  let registered = false;
  const errors: string[] = [];
  const server = serve({ ok: () => true }, {
    hostname: HOST,
    registrar: {
      register() {
        registered = true;
        return Promise.resolve({ deregister: () => Promise.resolve() });
      },
    },
    warmUp: Promise.reject(new Error("cache load failed")),
    onError: (error) => errors.push(error.message),
  });
  await assert.rejects(server.ready, /cache load failed/);
  await assert.rejects(
    server.finished,
    /^Error: Cannot serve: warmUp rejected: cache load failed/,
  );
  assert.equal(registered, false);
  assert.match(errors.join("\n"), /cache load failed/);
});

function servers(n: number) {
  const list = [];
  for (let i = 0; i < n; i++) {
    list.push(serve({ who: () => i }, { hostname: HOST }));
  }
  return list;
}

Deno.test("a channel filter routes only to matching members", async () => {
  const all = servers(3);
  try {
    const members: MemberData[] = all.map((s, i) => ({
      host: HOST,
      port: s.addr.port,
      zone: i === 1 ? "eu-1" : "us-1",
    }));
    await using channel = new DistributedChannel({
      membership: new StaticMembership(members),
      filter: (member) => member["zone"] === "eu-1",
    });
    const seen = new Set<unknown>();
    for (let i = 0; i < 30; i++) seen.add(await channel.call("who", []));
    assert.deepEqual([...seen], [1]);
  } finally {
    await Promise.all(all.map((s) => s.close()));
  }
});

for (
  const balancer of ["weighted-random", "weighted-least-in-flight"] as const
) {
  Deno.test(`${balancer} spreads calls in proportion to member weight (within tolerance)`, async () => {
    const all = servers(2);
    try {
      await using channel = new DistributedChannel({
        membership: new StaticMembership([
          { host: HOST, port: all[0]!.addr.port, weight: 1 },
          { host: HOST, port: all[1]!.addr.port, weight: 3 },
        ]),
        balancer,
      });
      const counts = [0, 0];
      const N = 2000;
      for (let i = 0; i < N; i += 20) {
        // 20 at a time, so in-flight counts matter for the second balancer.
        const got = await Promise.all(
          Array.from({ length: 20 }, () => channel.call("who", [])),
        );
        for (const who of got) counts[who as number]!++;
      }
      const share = counts[1]! / N; // expected 0.75
      assert.ok(share > 0.65 && share < 0.85, `share ${share} ${counts}`);
    } finally {
      await Promise.all(all.map((s) => s.close()));
    }
  });
}

Deno.test("serve({ inheritDeadline: false }): nested calls inherit only with an explicit parent", async () => {
  await using inner = serve({
    deadline: withContext((ctx) => deadlineSeen(ctx)),
  }, { hostname: HOST });
  await using innerConn = await connect(inner.addr.port);
  await using outer = serve({
    nest: withContext(async (ctx) => [
      await innerConn.call("deadline", []),
      await innerConn.call("deadline", [], { parent: ctx }),
    ]),
  }, { hostname: HOST, inheritDeadline: false });
  await using conn = await connect(outer.addr.port);
  const [implicit, explicit] = await conn.call("nest", [], {
    timeout: 5000,
  }) as [number | null, number | null];
  assert.equal(implicit, null);
  assert.ok(typeof explicit === "number");
});
