/**
 * Per-call options through every path of the channel: the fast path (a
 * ready connection), a first connect, a retry after a refused endpoint, a
 * retry after a draining member's refusal, an idempotent retry after a
 * may-have-run answer, and a hedged call, each with and without interceptors
 * and metadata. Nested calls made inside a context handler check the
 * deadline the inner server sees: `parent: null` opts out of the caller's
 * deadline, an explicit parent caps it, the default inherits it.
 */
import assert from "node:assert/strict";
import {
  type ChannelCallOptions,
  DistributedChannel,
  type DistributedChannelOptions,
  StaticMembership,
  withContext,
} from "../mod.ts";
import { Connection } from "../src/client/connection.ts";
import {
  CancelledError,
  DeadlineExceededError,
  NoServersError,
} from "../src/errors.ts";
import type { ClientCall, ClientInterceptor } from "../src/_interceptors.ts";
import { type RpcServer, serve } from "../src/server/server.ts";
import { closedPort, deadlineSeen } from "./_core_helpers.ts";
import { startFakeMember } from "./_fake_member.ts";
import { waitFor, within } from "./_wait.ts";

const HOST = "127.0.0.1";

/** What the inner server saw of a call. */
interface Seen {
  deadline: number | null;
  metadata: Record<string, string>;
}

/** The inner server: reports the deadline and metadata of each call. */
function innerServer(): RpcServer {
  return serve({
    seen: withContext((ctx): Seen => ({
      deadline: deadlineSeen(ctx),
      metadata: { ...ctx.metadata },
    })),
  }, { hostname: HOST, port: 0 });
}

/** How a channel path is set up around the inner server. */
interface Path {
  name: string;
  /** Extra members listed before the inner server (tried first). */
  before?: () => { port: number; close(): Promise<void> };
  /** Warm the connection first (the fast path). */
  warm?: boolean;
  options?: Partial<DistributedChannelOptions>;
  call?: ChannelCallOptions;
}

const PATHS: Path[] = [
  { name: "fast path", warm: true },
  { name: "first connect" },
  {
    name: "retry after a refused endpoint",
    before: () => ({ port: closedPort(), close: () => Promise.resolve() }),
  },
  {
    name: "retry after a draining member's refusal",
    before: () => startFakeMember("goaway-then-closing"),
  },
  {
    name: "idempotent retry after a may-have-run answer",
    before: () => startFakeMember("run-then-closing"),
    call: { idempotent: true },
  },
  {
    name: "hedged",
    options: { hedging: { delay: 0 } },
    call: { idempotent: true },
  },
];

/** An interceptor that writes into every attempt's metadata and params. */
function scribbler(seen: ClientCall[]): ClientInterceptor {
  return (call, next) => {
    seen.push({
      ...call,
      metadata: { ...call.metadata },
      params: [...call.params],
    });
    call.metadata[`x-attempt-${call.attempt}`] = "1";
    call.params.push("scribbled");
    return next();
  };
}

/**
 * The inner server, and an outer one whose `nested` handler makes the call
 * `rig.nested` says (from inside a handler with its own deadline) and
 * returns both deadlines; `call()` calls `nested` with the outer `timeout`.
 */
async function nestedRig() {
  const inner = innerServer();
  const rig = {
    inner,
    nested: (): Promise<Seen> => Promise.reject(new Error("unset")),
    call(timeout: number, name: string) {
      return within(
        conn.call("nested", [], { timeout }) as Promise<
          { outer: number; inner: Seen }
        >,
        10_000,
        name,
      );
    },
    async [Symbol.asyncDispose]() {
      conn.close();
      await outer.close();
      await inner.close();
    },
  };
  const outer = serve({
    nested: withContext(async (ctx) => ({
      outer: deadlineSeen(ctx),
      inner: await rig.nested(),
    })),
  }, { hostname: HOST, port: 0 });
  const conn = await Connection.connect({
    hostname: HOST,
    port: outer.addr.port,
  });
  return rig;
}

Deno.test("parent, timeout and metadata survive every path of the channel, with and without interceptors", async () => {
  await using rig = await nestedRig();
  const inner = rig.inner;
  const failures: string[] = [];
  for (const path of PATHS) {
    for (const intercepted of [false, true]) {
      for (const metadata of [undefined, { tenant: "acme" }]) {
        for (const parent of [null, undefined, "explicit"] as const) {
          const name = `${path.name}, ${
            intercepted ? "intercepted" : "plain"
          }, ${metadata ? "metadata" : "no metadata"}, parent ${parent}`;
          const attempts: ClientCall[] = [];
          const extra = path.before?.();
          const channel = new DistributedChannel({
            membership: new StaticMembership([
              ...(extra ? [{ host: HOST, port: extra.port }] : []),
              { host: HOST, port: inner.addr.port },
            ]),
            balancer: "round-robin",
            timeout: 30_000,
            ...(intercepted ? { interceptors: [scribbler(attempts)] } : {}),
            ...path.options,
          });
          try {
            if (path.warm) {
              await within(channel.call("seen", []), 10_000, "a warm-up");
              attempts.length = 0;
            }
            const callerMetadata = metadata && { ...metadata };
            const options: ChannelCallOptions = {
              timeout: 60_000,
              ...path.call,
              ...(callerMetadata ? { metadata: callerMetadata } : {}),
              ...(parent === null ? { parent: null } : {}),
            };
            let explicit = 0;
            rig.nested = () => {
              if (parent !== "explicit") {
                return channel.call("seen", [], options) as Promise<Seen>;
              }
              explicit = Date.now() + 500;
              return channel.call("seen", [], {
                ...options,
                parent: { deadline: explicit },
              }) as Promise<Seen>;
            };
            const { outer: outerDeadline, inner: seen } = await rig.call(
              3000,
              name,
            );
            // parent: null: the nested call's own 60 s; inherited: the
            // outer call's 3 s.
            if (parent === null) {
              if (!(seen.deadline! > outerDeadline + 20_000)) {
                failures.push(`${name}: parent: null was not honoured`);
              }
            } else if (parent === "explicit") {
              // 0.5 s where the handler's call had 3 s.
              if (!(seen.deadline! <= explicit + 1500)) {
                failures.push(`${name}: the explicit parent was lost`);
              }
            } else if (!(seen.deadline! <= outerDeadline + 1000)) {
              failures.push(`${name}: the deadline was not inherited`);
            }
            const expected: Record<string, string> = { ...metadata };
            if (intercepted) {
              const last = attempts.at(-1)!;
              expected[`x-attempt-${last.attempt}`] = "1";
              // Each attempt starts from the caller's metadata and params.
              for (const attempt of attempts) {
                assert.deepEqual(attempt.metadata, { ...metadata }, name);
                assert.deepEqual(attempt.params, [], name);
              }
            }
            for (const [key, value] of Object.entries(expected)) {
              if (seen.metadata[key] !== value) {
                failures.push(`${name}: metadata ${key} lost`);
              }
            }
            for (const key of Object.keys(seen.metadata)) {
              if (key.startsWith("x-attempt-") && !(key in expected)) {
                failures.push(`${name}: ${key} leaked from another attempt`);
              }
            }
            assert.deepEqual(callerMetadata, metadata, name);
          } finally {
            await channel.close();
            await extra?.close();
          }
        }
      }
    }
  }
  assert.deepEqual(failures, []);
});

Deno.test("an aborted call ends with CancelledError at once on every path, with and without interceptors", async () => {
  let started = 0;
  let aborted = 0;
  const server = serve({
    wait: withContext((ctx) =>
      new Promise<never>((_, reject) => {
        started++;
        ctx.signal.addEventListener("abort", () => {
          aborted++;
          reject(ctx.signal.reason);
        }, { once: true });
      })
    ),
  }, { hostname: HOST, port: 0 });
  try {
    for (const path of PATHS) {
      for (const intercepted of [false, true]) {
        const name = `${path.name}, ${intercepted ? "intercepted" : "plain"}`;
        const extra = path.before?.();
        await using channel = new DistributedChannel({
          membership: new StaticMembership([
            ...(extra ? [{ host: HOST, port: extra.port }] : []),
            { host: HOST, port: server.addr.port },
          ]),
          balancer: "round-robin",
          timeout: 60_000,
          ...(intercepted
            ? { interceptors: [(_call, next) => next()] as ClientInterceptor[] }
            : {}),
          ...path.options,
        });
        try {
          const before = started;
          const controller = new AbortController();
          const call = channel.call("wait", [], {
            ...path.call,
            signal: controller.signal,
          }).catch((error) => error);
          await waitFor(() => started > before, `${name}: the call to run`);
          controller.abort(new Error("user gave up"));
          // Far below the call's 60 s deadline: a lost signal would fail
          // this wait, not end the call with DeadlineExceededError.
          const error = await within(call, 10_000, `${name}: the cancel`);
          assert.ok(error instanceof CancelledError, `${name}: ${error}`);
          await waitFor(
            () => aborted === started,
            `${name}: the server to see the cancel`,
          );
        } finally {
          await channel.close();
          await extra?.close();
        }
      }
    }
  } finally {
    await server.close();
  }
});

Deno.test("a hedged idempotent call to hung servers ends by its deadline, never pending", async () => {
  let running = 0;
  const hung = [0, 1].map(() =>
    serve({
      hang: withContext((ctx) =>
        new Promise<never>((_, reject) => {
          running++;
          ctx.signal.addEventListener("abort", () => {
            running--;
            reject(ctx.signal.reason);
          }, { once: true });
        })
      ),
    }, { hostname: HOST, port: 0 })
  );
  try {
    for (const servers of [hung.slice(0, 1), hung]) {
      await using channel = new DistributedChannel({
        membership: new StaticMembership(
          servers.map((s) => ({ host: HOST, port: s.addr.port })),
        ),
        idempotent: ["hang"],
        hedging: { delay: 1, maxHedges: 2 },
      });
      const error = await within(
        channel.call("hang", [], { timeout: 150 }).catch((e) => e),
        10_000,
        `a hedged call to ${servers.length} hung servers to end`,
      );
      assert.ok(
        error instanceof DeadlineExceededError,
        `${servers.length} servers: ${error}`,
      );
      await channel.close();
      await waitFor(() => running === 0, "the hung handlers to be cancelled");
    }
  } finally {
    await Promise.all(hung.map((s) => s.close()));
  }
});

/** A membership whose members are keyed by id, as ZooKeeper's are. */
class IdMembership extends StaticMembership {
  #ids = new Map<string, { host: string; port: number }>();

  /** Replaces the members with `entries` (id → address). */
  setIds(entries: [string, { host: string; port: number }][]): void {
    const next = new Map(entries);
    const added = new Map([...next].filter(([id]) => !this.#ids.has(id)));
    const removed = [...this.#ids.keys()].filter((id) => !next.has(id));
    this.#ids = next;
    this.dispatchEvent(
      new CustomEvent("change", { detail: { added, removed } }),
    );
  }

  override get members(): ReadonlyMap<string, { host: string; port: number }> {
    return this.#ids;
  }
}

Deno.test("an endpoint stays while another member id still uses its address (a restarted server and its ghost)", async () => {
  const server = innerServer();
  const address = { host: HOST, port: server.addr.port };
  const membership = new IdMembership();
  membership.setIds([["server0000000001", address]]);
  await using channel = new DistributedChannel({ membership, timeout: 5000 });
  // The server restarts at the same address: a new registration appears
  // while the old one (its ghost) waits for its session to expire.
  membership.setIds([
    ["server0000000001", address],
    ["server0000000002", address],
  ]);
  await within(channel.call("seen", []), 10_000, "a call");
  membership.setIds([["server0000000002", address]]); // the ghost expires
  const endpoints = channel.endpoints().map((e) => e.key);
  const result = await within(
    channel.call("seen", []).catch((e) => e),
    10_000,
    "a call after the ghost left",
  );
  await channel.close();
  await server.close();
  assert.deepEqual(endpoints, [`${HOST}:${server.addr.port}`]);
  assert.ok(!(result instanceof NoServersError), String(result));
  assert.equal(typeof (result as Seen).metadata, "object");
});

Deno.test("a member id that moves to another address leaves its old one", async () => {
  const [a, b] = [innerServer(), innerServer()];
  const membership = new IdMembership();
  membership.setIds([["server0000000001", { host: HOST, port: a.addr.port }]]);
  await using channel = new DistributedChannel({ membership, timeout: 5000 });
  const moved = new Map([["server0000000001", {
    host: HOST,
    port: b.addr.port,
  }]]);
  membership.dispatchEvent(
    new CustomEvent("change", { detail: { added: moved, removed: [] } }),
  );
  const keys = channel.endpoints().map((e) => e.key);
  const answered = await within(channel.call("seen", []), 10_000, "a call");
  await channel.close();
  await Promise.all([a.close(), b.close()]);
  assert.deepEqual(keys, [`${HOST}:${b.addr.port}`]);
  assert.equal(typeof (answered as Seen).metadata, "object");
});

Deno.test("a hedged call keeps waiting for its first attempt when the hedge runs out of endpoints", async () => {
  const release = Promise.withResolvers<void>();
  let started = false;
  const slow = serve({
    async slow(): Promise<string> {
      started = true;
      await release.promise;
      return "slow answer";
    },
  }, { hostname: HOST, port: 0 });
  const dead = closedPort();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: slow.addr.port },
      { host: HOST, port: dead },
    ]),
    balancer: "round-robin",
    idempotent: ["slow"],
    maxAttempts: 1,
    hedging: { delay: 1 },
    timeout: 30_000,
  });
  const call = channel.call("slow", []).catch((error) => error);
  await waitFor(() => started, "the first attempt to run");
  // The hedge went to the dead endpoint and failed there.
  await waitFor(
    () =>
      channel.endpoints().some((e) =>
        e.key === `${HOST}:${dead}` && (e.failures > 0 || e.state === "ejected")
      ),
    "the hedge to fail",
  );
  release.resolve();
  const result = await within(call, 10_000, "the hedged call");
  await channel.close();
  await slow.close();
  assert.equal(result, "slow answer");
});

Deno.test("a call held by an interceptor ends at the caller's abort or deadline, and a late next() sends nothing", async () => {
  const requests: string[] = [];
  const server = serve({ ping: () => "pong" }, {
    hostname: HOST,
    port: 0,
    interceptors: [(call, next) => {
      requests.push(call.method);
      return next();
    }],
  });
  const held: (() => Promise<unknown>)[] = [];
  // Holds every call (as a hung token fetch would) until the test lets go.
  const holding: ClientInterceptor = (_call, next) => {
    const { promise, resolve } = Promise.withResolvers<unknown>();
    held.push(() => {
      const sent = next();
      resolve(sent);
      return sent;
    });
    return promise;
  };
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: server.addr.port }]),
    interceptors: [holding],
    timeout: 60_000,
  });
  const controller = new AbortController();
  const cancelled = channel.call("ping", [], { signal: controller.signal })
    .catch((error) => error);
  await waitFor(() => held.length === 1, "the interceptor to hold the call");
  controller.abort(new Error("user gave up"));
  const first = await within(cancelled, 10_000, "the cancelled call");
  const late = channel.call("ping", [], { timeout: 50 }).catch((e) => e);
  const second = await within(late, 10_000, "the call past its deadline");
  // The interceptor lets go only now: nothing may be sent.
  const sends = await Promise.all(held.map((next) => next().catch((e) => e)));
  await channel.close();
  await server.close();
  assert.ok(first instanceof CancelledError, String(first));
  assert.ok(second instanceof DeadlineExceededError, String(second));
  assert.equal(sends.length, 2);
  assert.ok(sends.every((e) => e instanceof Error), String(sends));
  assert.deepEqual(requests, []);
});

Deno.test("one deadline from the channel to the server: timeout, parent: null, inherited, Infinity and beyond 2^31 ms, with and without interceptors and hedging", async () => {
  await using rig = await nestedRig();
  const inner = rig.inner;
  const OUTER = 3000; // the handler's own deadline, for inherited cases
  /**
   * `timeout` of the nested call, whether it opts out of the handler's
   * deadline, and what the server must see: a window after the call (ms)
   * or `"none"`.
   */
  const cases: [string, ChannelCallOptions, number | "outer" | "none"][] = [
    ["timeout 5 s", { timeout: 5000, parent: null }, 5000],
    // No option but parent: null (a first attempt's shared options).
    ["the channel's timeout, parent: null", { parent: null }, 10_000],
    [
      "timeout 2^31 + 1 s",
      { timeout: 2 ** 31 + 1000, parent: null },
      2 ** 31 + 1000,
    ],
    [
      "timeout 2^33 (beyond the wire's u32)",
      { timeout: 2 ** 33, parent: null },
      "none",
    ],
    [
      "timeout Infinity, parent: null",
      { timeout: Infinity, parent: null },
      "none",
    ],
    ["timeout Infinity, inherited", { timeout: Infinity }, "outer"],
    ["timeout 2^31 + 1 s, inherited", { timeout: 2 ** 31 + 1000 }, "outer"],
    ["timeout 5 s, explicit parent without a deadline", {
      timeout: 5000,
      parent: { deadline: Infinity },
    }, 5000],
  ];
  const failures: string[] = [];
  for (const hedged of [false, true]) {
    for (const intercepted of [false, true]) {
      const channel = new DistributedChannel({
        membership: new StaticMembership([
          { host: HOST, port: inner.addr.port },
        ]),
        ...(hedged ? { hedging: { delay: 0 } } : {}),
        ...(intercepted ? { interceptors: [scribbler([])] } : {}),
      });
      try {
        for (const [label, options, expected] of cases) {
          const name = `${label}, ${hedged ? "hedged" : "not hedged"}, ${
            intercepted ? "intercepted" : "plain"
          }`;
          let before = 0;
          let after = 0;
          rig.nested = async () => {
            before = Date.now();
            const seen = await channel.call("seen", [], {
              ...options,
              idempotent: hedged,
            }) as Seen;
            after = Date.now();
            return seen;
          };
          const { outer: outerDeadline, inner: seen } = await rig.call(
            OUTER,
            name,
          );
          const deadline = seen.deadline;
          if (expected === "none") {
            if (deadline !== null) {
              failures.push(`${name}: the server saw ${deadline}, not none`);
            }
          } else if (expected === "outer") {
            // The handler's deadline, rebuilt once more on the wire.
            if (
              deadline === null || deadline < outerDeadline - 1 ||
              deadline > outerDeadline + (after - before) + 1
            ) {
              failures.push(
                `${name}: the server saw ${deadline}, not the handler's ${outerDeadline}`,
              );
            }
          } else if (
            deadline === null || deadline < before + expected ||
            deadline > after + expected + 1
          ) {
            failures.push(
              `${name}: the server saw ${deadline}, outside [${
                before + expected
              }, ${after + expected + 1}]`,
            );
          }
        }
      } finally {
        await channel.close();
      }
    }
  }
  assert.deepEqual(failures, []);
});
