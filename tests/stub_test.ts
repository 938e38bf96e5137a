/**
 * Stubs against a real server: every way JavaScript, Deno and Node coerce,
 * print, serialise or await a value stays local (no request reaches the
 * server, no unhandled rejection), and the remote methods still work.
 */
import assert from "node:assert/strict";
import util from "node:util";
import { DistributedChannel, StaticMembership } from "../mod.ts";
import { Connection } from "../src/client/connection.ts";
import { type RpcServer, serve } from "../src/server/server.ts";
import { INERT_STUB_NAMES, stub } from "../src/channel/stub.ts";
import { ConnectionError } from "../src/errors.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";

class Calculator {
  static divide(a: number, b: number): number {
    return a / b;
  }
}

/** A server counting every request it receives, whatever the method. */
function countingServer(): { server: RpcServer; requests: string[] } {
  const requests: string[] = [];
  const server = serve({ divide: Calculator.divide }, {
    hostname: HOST,
    port: 0,
    interceptors: [(call, next) => {
      requests.push(call.method);
      return next();
    }],
  });
  return { server, requests };
}

/**
 * Collects unhandled rejections while `fn` runs (and a few turns after, so
 * that a rejected remote call has had its chance to surface), and prevents
 * them from failing the test run before the test can report them.
 */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onUnhandled = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    seen.push(event.reason);
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    await fn();
    // A remote call started by a coercion would be answered by now: the
    // calc.divide() below is a full round trip on the same connection.
    // sleep-ok: one event-loop turn for a stray call to start; the round trip below is the barrier
    await new Promise((resolve) => setTimeout(resolve, 0));
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
  }
  return seen;
}

type Calc = ReturnType<typeof stub<typeof Calculator>>;

/** Every coercion, with what it must produce. */
const COERCIONS: [string, (s: Calc) => unknown, unknown][] = [
  ["template literal", (s) => `${s}`, "Stub<calculator>"],
  ["String()", (s) => String(s), "Stub<calculator>"],
  ['+ ""', (s) => (s as unknown as string) + "", "Stub<calculator>"],
  [
    "toString()",
    (s) => (s as unknown as object).toString(),
    "Stub<calculator>",
  ],
  [
    "toLocaleString()",
    (s) => (s as unknown as object).toLocaleString(),
    "Stub<calculator>",
  ],
  ["JSON.stringify()", (s) => JSON.stringify(s), '"Stub<calculator>"'],
  [
    "JSON.stringify() nested",
    (s) => JSON.stringify({ calc: s }),
    '{"calc":"Stub<calculator>"}',
  ],
  ["Deno.inspect()", (s) => Deno.inspect(s), "Stub<calculator>"],
  [
    "Deno.inspect() nested",
    (s) => Deno.inspect({ s }),
    "{ s: Stub<calculator> }",
  ],
  ["util.inspect()", (s) => util.inspect(s), "Stub<calculator>"],
  ["util.format(%s %o %j)", (s) => util.format("%s %o %j", s, s, s), undefined],
  [
    "Object.prototype.toString.call()",
    (s) => Object.prototype.toString.call(s),
    "[object Stub<calculator>]",
  ],
  ["Number()", (s) => Number.isNaN(Number(s)), true],
  ["Object.keys()", (s) => Object.keys(s).length, 0],
  ["spread", (s) => Object.keys({ ...s }).length, 0],
  ["in", (s) => "then" in (s as object), false],
  ["in (a method)", (s) => "divide" in (s as object), true],
  [
    "Array.from()",
    (s) => Array.from(s as unknown as ArrayLike<unknown>).length,
    0,
  ],
  ["structuredClone()", (s) => {
    try {
      structuredClone(s);
      return "cloned";
    } catch (error) {
      return (error as Error).name; // a local error, not a remote call
    }
  }, "DataCloneError"],
  ["assert.notDeepEqual()", (s) => {
    assert.notDeepEqual(s, { divide: 1 });
    return true;
  }, true],
  ["console.log()", (s) => {
    console.log(s); // prints through Deno.inspect: Stub<calculator>
    return true;
  }, true],
];

/** Properties that probes read and that must not be there (no call). */
const ABSENT: PropertyKey[] = [
  "valueOf",
  "then",
  "catch",
  "finally",
  "constructor",
  "__proto__",
  "hasOwnProperty",
  "asymmetricMatch",
  "$$typeof",
  "nodeType",
  Symbol.iterator,
  Symbol.asyncIterator,
  Symbol("probe"),
];

Deno.test("a stub is inert to every coercion: no remote call, no unhandled rejection", async () => {
  const { server, requests } = countingServer();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: server.addr.port }]),
    service: "calculator",
    timeout: 5000,
  });
  const calc = channel.stub<typeof Calculator>();
  const results = new Map<string, unknown>();
  const unhandled = await unhandledDuring(async () => {
    for (const [name, coerce] of COERCIONS) results.set(name, coerce(calc));
    for (const key of ABSENT) {
      results.set(String(key), (calc as Record<PropertyKey, unknown>)[key]);
    }
    results.set("await", await within(Promise.resolve(calc), 1000, "await"));
    results.set(
      "Promise.resolve().then()",
      await within(Promise.resolve(1).then(() => calc), 1000, "a then"),
    );
    // A real call on the same connection: a coercion's request, sent
    // before it, would have been counted by now.
    assert.equal(await calc.divide(10, 2), 5);
  });
  await channel.close();
  await server.close();
  for (const [name, , expected] of COERCIONS) {
    if (expected !== undefined) {
      assert.deepEqual(results.get(name), expected, name);
    }
  }
  for (const key of ABSENT) {
    assert.equal(results.get(String(key)), undefined, String(key));
  }
  assert.ok(
    !String(results.get("util.format(%s %o %j)")).includes("divide"),
    "util.format prints the stub, not a method",
  );
  assert.equal(results.get("await"), calc);
  assert.equal(results.get("Promise.resolve().then()"), calc);
  assert.deepEqual(unhandled, []);
  assert.deepEqual(requests, ["divide"]);
});

Deno.test("every inert name and every symbol is local on a stub; other names are remote methods", async () => {
  const called: string[] = [];
  const calc = stub<Record<string, () => void>>({
    call: (method) => {
      called.push(method);
      return Promise.resolve(method);
    },
  });
  for (const name of INERT_STUB_NAMES) {
    const value = (calc as Record<string, unknown>)[name];
    assert.ok(
      value === undefined ||
        (typeof value === "function" && value() === "Stub"),
      name,
    );
  }
  for (const symbol of Object.getOwnPropertyNames(Symbol)) {
    const wellKnown = (Symbol as unknown as Record<string, unknown>)[symbol];
    if (typeof wellKnown !== "symbol") continue;
    const value = (calc as Record<symbol, unknown>)[wellKnown];
    if (typeof value === "function") value.call(calc);
  }
  assert.deepEqual(called, []);
  assert.equal(await within(calc.anything!(), 1000, "a call"), "anything");
  assert.equal(await within(calc._private!(), 1000, "a call"), "_private");
  assert.deepEqual(called, ["anything", "_private"]);
});

Deno.test("a connection's stub prints its address and still calls", async () => {
  const { server, requests } = countingServer();
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const calc = stub<typeof Calculator>(conn, { timeout: 5000 });
  assert.equal(String(calc), `Stub<${HOST}:${server.addr.port}>`);
  assert.equal(Deno.inspect(calc), `Stub<${HOST}:${server.addr.port}>`);
  assert.equal(await calc.divide(9, 3), 3);
  conn.close();
  await server.close();
  assert.deepEqual(requests, ["divide"]);
});

Deno.test("a stub prints the caller's service, else its endpoint, else Stub, and never throws while printing", () => {
  const call = () => Promise.resolve();
  const cases: [object, string][] = [
    [{ service: "calc", endpoint: { hostname: "h", port: 1 } }, "Stub<calc>"],
    [{ service: "", endpoint: { hostname: "h", port: 1 } }, "Stub<h:1>"],
    [{ service: 7, endpoint: { hostname: "h", port: 2 } }, "Stub<h:2>"],
    [{ endpoint: { hostname: 5, port: 2 } }, "Stub"],
    [{ endpoint: undefined }, "Stub"],
    [{}, "Stub"],
    [{
      get service(): string {
        throw new Error("no");
      },
    }, "Stub"],
  ];
  for (const [i, [caller, label]] of cases.entries()) {
    Object.defineProperty(caller, "call", { value: call });
    const s = stub(caller as never) as unknown as object;
    const what = `case ${i}`;
    assert.equal(String(s), label, what);
    assert.equal(`${s}`, label, what);
    assert.equal(s.toString(), label, what);
    assert.equal(s.toLocaleString(), label, what);
    assert.equal(JSON.stringify(s), JSON.stringify(label), what);
    assert.equal(Deno.inspect(s), label, what);
    assert.equal(util.inspect(s), label, what);
    assert.equal(Object.prototype.toString.call(s), `[object ${label}]`);
  }
});

Deno.test("a stub's method calls the caller with its name, the arguments and the stub's options, and is the same function each time", async () => {
  const calls: [string, unknown[], unknown][] = [];
  const options = { timeout: 1234 };
  const s = stub<{ add(a: number, b: number): number }>({
    call: (method, params, o) => {
      calls.push([method, params, o]);
      return Promise.resolve(42);
    },
  }, options);
  assert.equal(s.add, s.add, "one function per name");
  assert.equal(await within(s.add(1, 2), 1000, "a call"), 42);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]!.slice(0, 2), ["add", [1, 2]]);
  assert.equal(calls[0]![2], options);
  const plain = stub<{ x(): void }>({
    call: (_m, _p, o) => {
      calls.push(["x", [], o]);
      return Promise.resolve();
    },
  });
  await within(plain.x(), 1000, "a call");
  assert.deepEqual(calls[1]![2], {});
});

Deno.test("a stub's failed call carries the stack of the code that awaited it", async () => {
  const s = stub<{ fail(): void }>({
    call: () =>
      Promise.reject(new ConnectionError("broken", { written: true })),
  });
  async function awaitingCaller() {
    await s.fail();
  }
  const error = await within(
    awaitingCaller().catch((e) => e),
    1000,
    "the failed call",
  ) as Error;
  assert.ok(error instanceof ConnectionError);
  assert.match(error.stack ?? "", /awaitingCaller/);
});

Deno.test("`in` on a stub: any string but an inert name is a method; symbols only when the stub prints with them", () => {
  const s = stub({ call: () => Promise.resolve() }) as unknown as object;
  assert.equal("anything" in s, true);
  assert.equal("then" in s, false);
  assert.equal("hasOwnProperty" in s, false);
  assert.equal("toString" in s, true, "printing is local but present");
  assert.equal("toJSON" in s, true);
  assert.equal(Symbol.toPrimitive in s, true);
  assert.equal(Symbol.toStringTag in s, true);
  assert.equal(Symbol.for("Deno.customInspect") in s, true);
  assert.equal(Symbol.for("nodejs.util.inspect.custom") in s, true);
  assert.equal(Symbol.iterator in s, false);
  assert.equal(Object.getPrototypeOf(s), null);
});

Deno.test("the inert names: every Object.prototype name, the thenable's and the probes' names", () => {
  for (const name of Object.getOwnPropertyNames(Object.prototype)) {
    assert.ok(INERT_STUB_NAMES.has(name), name);
  }
  for (
    const name of [
      "then",
      "catch",
      "finally",
      "toJSON",
      "prototype",
      "asymmetricMatch",
      "$$typeof",
      "nodeType",
      "tagName",
      "@@__IMMUTABLE_ITERABLE__@@",
      "@@__IMMUTABLE_RECORD__@@",
      "_isMockFunction",
    ]
  ) assert.ok(INERT_STUB_NAMES.has(name), name);
  assert.equal(
    INERT_STUB_NAMES.size,
    new Set([...Object.getOwnPropertyNames(Object.prototype)]).size + 12,
  );
});
