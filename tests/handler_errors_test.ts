import assert from "node:assert/strict";
import fc from "fast-check";
import { serve } from "../src/server.ts";
import { Connection } from "../src/connection.ts";
import { ErrorRegistry, RemoteError, RpcError } from "../src/errors.ts";
import { startChildServer } from "./_core_helpers.ts";

const HOST = "127.0.0.1";

class InvalidOperation extends Error {}

/** Values a careless (or hostile) handler author may throw, one of each kind. */
function hostileZoo(): Record<string, unknown> {
  const revocable = Proxy.revocable({}, {});
  revocable.revoke();
  const trapAll = new Proxy({}, {
    get() {
      throw new Error("get trap");
    },
    has() {
      throw new Error("has trap");
    },
    getPrototypeOf() {
      throw new Error("getPrototypeOf trap");
    },
  });
  const badName = new Error("bad name");
  Object.defineProperty(badName, "name", {
    get() {
      throw new Error("name getter");
    },
  });
  const badMessage = new Error("x");
  Object.defineProperty(badMessage, "message", {
    get() {
      throw new Error("message getter");
    },
  });
  const cyclic = new Error("cyclic");
  (cyclic as { cause?: unknown }).cause = cyclic;
  const cyclicData = Object.assign(new Error("cyclic data"), {
    data: {} as Record<string, unknown>,
  });
  cyclicData.data.self = cyclicData.data;
  const throwingData = new Error("throwing data");
  Object.defineProperty(throwingData, "data", {
    get() {
      throw new Error("data getter");
    },
  });
  return {
    "null-prototype object": Object.create(null),
    "object whose toString throws": {
      toString() {
        throw new Error("toString");
      },
    },
    "Error whose name getter throws": badName,
    "Error whose message getter throws": badMessage,
    "symbol": Symbol("boom"),
    "revoked proxy": revocable.proxy,
    "proxy whose every trap throws": trapAll,
    "Error with a cyclic cause": cyclic,
    "Error with cyclic data": cyclicData,
    "Error whose data getter throws": throwingData,
    "Error whose data is a revoked proxy": Object.assign(new Error("d"), {
      data: revocable.proxy,
    }),
    "undefined": undefined,
    "null": null,
    "function": () => {},
    "bigint": 1n,
    "registered class": new InvalidOperation("registered"),
    "error named like a zkrpc error": Object.assign(new Error("x"), {
      name: "ProtocolError",
    }),
  };
}

let current: unknown;
const handlers = {
  throwSync(): never {
    throw current;
  },
  rejectAsync(): Promise<never> {
    return Promise.reject(current);
  },
  async throwAfterAwait(): Promise<never> {
    await null;
    throw current;
  },
  resolveWithRevokedProxy(): unknown {
    const p = Proxy.revocable({}, {});
    p.revoke();
    return p.proxy;
  },
  promiseWithThrowingThen(): unknown {
    const p = Promise.resolve(1);
    Object.defineProperty(p, "then", {
      value: () => {
        throw new Error("own then");
      },
    });
    return p;
  },
  promiseWithThrowingConstructor(): unknown {
    const p = Promise.resolve(1);
    Object.defineProperty(p, "constructor", {
      get() {
        throw new Error("constructor getter");
      },
    });
    return p;
  },
  thenableThatThrows(): unknown {
    return {
      then() {
        throw new Error("thenable");
      },
    };
  },
  ok(): string {
    return "ok";
  },
};
const METHODS = ["throwSync", "rejectAsync", "throwAfterAwait"] as const;

function isRegistered(value: unknown): boolean {
  try {
    return value instanceof InvalidOperation;
  } catch {
    return false; // a revoked proxy
  }
}

function assertRevived(e: unknown, value: unknown, what: string): void {
  if (isRegistered(value)) {
    assert.ok(e instanceof InvalidOperation, `${what}: got ${e}`);
    return;
  }
  assert.ok(e instanceof RemoteError, `${what}: got ${e}`);
  assert.ok(e instanceof RpcError);
  assert.equal(typeof e.remoteName, "string");
  assert.equal(typeof e.message, "string");
}

Deno.test("whatever a handler throws, the caller gets a RemoteError and the server keeps serving", async () => {
  const errors: Error[] = [];
  await using server = serve(handlers, {
    hostname: HOST,
    onError: (e) => void errors.push(e),
  });
  const endpoint = { hostname: HOST, port: server.addr.port };
  await using conn = await Connection.connect(endpoint, {
    errors: new ErrorRegistry().register(InvalidOperation),
  });
  await using bystander = await Connection.connect(endpoint);
  const zoo = hostileZoo();
  for (const [what, value] of Object.entries(zoo)) {
    for (const method of METHODS) {
      current = value;
      const e = await conn.call(method, [], { timeout: 5000 }).then(
        () => assert.fail(`${what} via ${method}: resolved`),
        (e) => e,
      );
      assertRevived(e, value, `${what} via ${method}`);
      assert.equal(await bystander.call("ok", []), "ok");
    }
  }
  // The values that could not be read were reported, with the original.
  for (
    const what of [
      "Error whose name getter throws",
      "revoked proxy",
      "proxy whose every trap throws",
      "Error whose data getter throws",
    ]
  ) {
    assert.ok(
      errors.some((e) => e.cause === zoo[what]),
      `onError did not get the original ${what}`,
    );
  }
  for (
    const method of [
      "resolveWithRevokedProxy",
      "promiseWithThrowingConstructor",
      "thenableThatThrows",
    ]
  ) {
    const e = await conn.call(method, []).catch((e) => e);
    assert.ok(e instanceof RemoteError, `${method}: ${e}`);
  }
  // A promise with an own hostile `then` is awaited through the intrinsic one.
  assert.equal(await conn.call("promiseWithThrowingThen", []), 1);
  assert.equal(await conn.call("ok", []), "ok");
});

Deno.test("property: generated thrown values never crash the server nor drop a connection", async () => {
  await using server = serve(handlers, { hostname: HOST, onError: () => {} });
  const endpoint = { hostname: HOST, port: server.addr.port };
  await using conn = await Connection.connect(endpoint, {
    errors: new ErrorRegistry().register(InvalidOperation),
  });
  await using bystander = await Connection.connect(endpoint);
  // Generated as names: fast-check itself cannot hold a revoked proxy.
  const zooNames = Object.keys(hostileZoo());
  const thrown = fc.oneof(
    fc.anything({
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withTypedArray: true,
      withSparseArray: true,
      withBoxedValues: true,
    }),
    fc.constantFrom(...zooNames).map((name) => ({ zoo: name })),
    fc.record({
      message: fc.anything(),
      name: fc.anything(),
      data: fc.anything({ withNullPrototype: true, withMap: true }),
    }),
    fc.tuple(fc.string(), fc.anything({ withBigInt: true })).map((
      [message, data],
    ) => Object.assign(new Error(message), { data })),
  );
  await fc.assert(
    fc.asyncProperty(
      thrown,
      fc.constantFrom(...METHODS),
      async (generated, method) => {
        const value = typeof generated === "object" && generated !== null &&
            Object.getPrototypeOf(generated) === Object.prototype &&
            Object.keys(generated).length === 1 &&
            typeof (generated as { zoo?: unknown }).zoo === "string"
          ? hostileZoo()[(generated as { zoo: string }).zoo]
          : generated;
        current = value;
        const e = await conn.call(method, [], { timeout: 5000 }).then(
          () => undefined,
          (e) => e,
        );
        assertRevived(e, value, method);
        assert.equal(await bystander.call("ok", []), "ok");
      },
    ),
    { numRuns: 300 },
  );
  assert.ok(!conn.isClosed && !bystander.isClosed);
});

Deno.test("a server process survives handlers that reject with values that once ended it", async () => {
  await using server = await startChildServer("limits_server.ts", ["{}"]);
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.port,
  });
  let exited = false;
  server.child.status.then(() => exited = true);
  for (const kind of ["nullPrototype", "throwingToString", "throwingName"]) {
    for (const variant of [kind, `sync:${kind}`]) {
      await assert.rejects(
        conn.call("hostile", [variant]),
        (e: unknown) => e instanceof RemoteError,
        variant,
      );
    }
  }
  // Still the same process, still serving this connection and new ones.
  assert.equal(await conn.call("ok", []), "ok");
  await using again = await Connection.connect({
    hostname: HOST,
    port: server.port,
  });
  assert.equal(await again.call("ok", []), "ok");
  assert.equal(exited, false);
});
