/**
 * Remote errors keep their fields: a handler's error with own properties
 * (`new OutOfStock(sku, message)`) comes back with them, rebuilt by the
 * class's `fromRemote` hook or without calling its constructor.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serve } from "../src/server/server.ts";
import { Connection } from "../src/client/connection.ts";
import {
  type ErrorPayload,
  ErrorRegistry,
  RemoteError,
} from "../src/errors.ts";
import { InvalidOperation } from "../examples/calculator.ts";

const HOST = "127.0.0.1";

/** A constructor whose first parameter is not the message. */
class OutOfStock extends Error {
  static constructed = 0;
  readonly sku: string;
  readonly left: number;
  constructor(sku: string, message: string, left = 0) {
    super(message);
    OutOfStock.constructed++;
    this.name = "OutOfStock";
    this.sku = sku;
    this.left = left;
  }
}

/** The same, rebuilding itself through its constructor. */
class Backordered extends Error {
  static received: ErrorPayload[] = [];
  constructor(readonly sku: string, message: string) {
    super(message);
    this.name = "Backordered";
  }
  static fromRemote(payload: ErrorPayload): Backordered {
    Backordered.received.push(payload);
    return new Backordered(String(payload.fields?.sku), payload.message);
  }
}

class Faulty extends Error {
  static fromRemote(): Error {
    throw new Error("bug in the hook");
  }
}

const handlers = {
  buy(sku: string): never {
    throw new OutOfStock(sku, `Cannot buy ${sku}: out of stock`, 3);
  },
  order(sku: string): never {
    throw new Backordered(sku, `Cannot ship ${sku} yet`);
  },
  faulty(): never {
    throw Object.assign(new Faulty("hook fails"), { code: 7 });
  },
  divide(a: number, b: number): number {
    if (b === 0) throw new InvalidOperation(`Cannot divide ${a} by zero`);
    return a / b;
  },
  secret(): never {
    const error = Object.assign(new Error("Denied"), { user: "ada" });
    Object.defineProperty(error, "token", { value: "s3cr3t" }); // stays home
    Object.defineProperty(error, "broken", {
      enumerable: true,
      get() {
        throw new Error("getter throws");
      },
    });
    throw error;
  },
  unencodable(): never {
    throw Object.assign(new Error("Has a Map"), { index: new Map() });
  },
  proto(): never {
    const error = new OutOfStock("X", "Proto");
    Object.defineProperty(error, "__proto__", {
      value: { polluted: true },
      enumerable: true,
    });
    throw error;
  },
};

async function connect(
  port: number,
): Promise<Connection> {
  return await Connection.connect({ hostname: HOST, port }, {
    errors: new ErrorRegistry().register(
      OutOfStock,
      Backordered,
      Faulty,
      InvalidOperation,
    ),
  });
}

Deno.test("an error class whose constructor takes (sku, message) comes back with its fields, without its constructor being called", async () => {
  await using server = serve(handlers, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  const before = OutOfStock.constructed;
  await assert.rejects(conn.call("buy", ["A-1"]), (error: unknown) => {
    assert.ok(error instanceof OutOfStock, String(error));
    assert.equal(error.sku, "A-1");
    assert.equal(error.left, 3);
    assert.equal(error.message, "Cannot buy A-1: out of stock");
    assert.equal(error.name, "OutOfStock");
    assert.match(String(error.stack), /^OutOfStock: Cannot buy A-1/);
    return true;
  });
  // Once on the server; the client did not call it (with the message as sku).
  assert.equal(OutOfStock.constructed - before, 1);
});

Deno.test("an error class with a static fromRemote is rebuilt by it from the message and fields", async () => {
  await using server = serve(handlers, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  await assert.rejects(conn.call("order", ["B-2"]), (error: unknown) => {
    assert.ok(error instanceof Backordered);
    assert.equal(error.sku, "B-2");
    assert.equal(error.message, "Cannot ship B-2 yet");
    return true;
  });
  assert.deepEqual(Backordered.received.at(-1), {
    name: "Backordered",
    message: "Cannot ship B-2 yet",
    fields: { sku: "B-2" },
  });
});

Deno.test("a fromRemote that throws falls back to the default revival", async () => {
  await using server = serve(handlers, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  await assert.rejects(conn.call("faulty", []), (error: unknown) => {
    assert.ok(error instanceof Faulty);
    assert.equal(error.message, "hook fails");
    assert.equal((error as Faulty & { code: number }).code, 7);
    return true;
  });
});

Deno.test("the seed's InvalidOperation comes back unchanged", async () => {
  await using server = serve(handlers, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  await assert.rejects(conn.call("divide", [1, 0]), (error: unknown) => {
    assert.ok(error instanceof InvalidOperation);
    assert.equal(error.name, "InvalidOperation");
    assert.equal(error.message, "Cannot divide 1 by zero");
    assert.deepEqual(Object.keys(error), [], "no stray fields");
    return true;
  });
});

Deno.test("only own enumerable readable properties travel; an unregistered error keeps them in RemoteError.fields", async () => {
  await using server = serve(handlers, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  await assert.rejects(conn.call("secret", []), (error: unknown) => {
    assert.ok(error instanceof RemoteError);
    assert.equal(error.remoteName, "Error");
    assert.equal(error.remoteMessage, "Denied");
    assert.deepEqual(error.fields, { user: "ada" });
    return true;
  });
});

Deno.test("fields the codec cannot encode are dropped; the name and message still arrive", async () => {
  await using server = serve(handlers, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  await assert.rejects(conn.call("unencodable", []), (error: unknown) => {
    assert.ok(error instanceof RemoteError);
    assert.equal(error.remoteMessage, "Has a Map");
    assert.equal(error.fields, undefined);
    return true;
  });
});

Deno.test("a __proto__ field is an own property of the revived error, never its prototype", async () => {
  await using server = serve(handlers, { hostname: HOST });
  await using conn = await connect(server.addr.port);
  await assert.rejects(conn.call("proto", []), (error: unknown) => {
    assert.ok(error instanceof OutOfStock);
    assert.equal(Object.getPrototypeOf(error), OutOfStock.prototype);
    assert.deepEqual(
      Object.getOwnPropertyDescriptor(error, "__proto__")?.value,
      { polluted: true },
    );
    assert.equal(error.sku, "X");
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
    return true;
  });
});
