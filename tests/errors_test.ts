/**
 * The error classes and the error registry on their own, without a socket:
 * what each class carries, and how a received payload is revived.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CancelledError,
  classify,
  ConnectionError,
  DeadlineExceededError,
  errorName,
  type ErrorPayload,
  ErrorRegistry,
  MethodNotFoundError,
  NoServersError,
  ProtocolError,
  RemoteError,
  ResourceExhaustedError,
  RpcError,
  ServerClosingError,
  withCallerStack,
} from "../src/errors.ts";

Deno.test("every zkrpc error is an RpcError named after its class", () => {
  const errors = [
    new RpcError("a"),
    new DeadlineExceededError("b"),
    new CancelledError("c"),
    new ProtocolError("d"),
    new ServerClosingError("e"),
    new ConnectionError("f", { written: true }),
    new RemoteError("g", { remoteName: "X" }),
    new MethodNotFoundError("h"),
    new NoServersError("i"),
  ];
  assert.deepEqual(errors.map((e) => e.name), [
    "RpcError",
    "DeadlineExceededError",
    "CancelledError",
    "ProtocolError",
    "ServerClosingError",
    "ConnectionError",
    "RemoteError",
    "MethodNotFoundError",
    "NoServersError",
  ]);
  for (const error of errors) {
    assert.ok(error instanceof RpcError && error instanceof Error);
  }
  assert.equal(new RpcError("msg").message, "msg");
  assert.equal(new RpcError("msg", { cause: 7 }).cause, 7);
});

Deno.test("error constructors keep a cause only when one is given", () => {
  const remote = new RemoteError("m", { remoteName: "X", cause: "why" });
  assert.equal(remote.cause, "why");
  assert.ok(!("cause" in new RemoteError("m", { remoteName: "X" })));
  const conn = new ConnectionError("m", { written: false, cause: "why" });
  assert.equal(conn.cause, "why");
  assert.ok(!("cause" in new ConnectionError("m", { written: false })));
  // An explicit undefined cause is still a cause.
  assert.ok(
    "cause" in new ConnectionError("m", { written: true, cause: undefined }),
  );
  assert.ok(
    "cause" in new RemoteError("m", { remoteName: "X", cause: undefined }),
  );
  assert.equal(new NoServersError("s", "m", { cause: 1 }).cause, 1);
});

Deno.test("error classes carry their fields and default messages", () => {
  const remote = new RemoteError("Boom", {
    remoteName: "RangeError",
    data: [1],
  });
  assert.equal(remote.message, "Boom");
  assert.equal(remote.remoteName, "RangeError");
  assert.deepEqual(remote.data, [1]);
  assert.equal(new RemoteError("m", { remoteName: "X" }).data, undefined);
  const notFound = new MethodNotFoundError("divide");
  assert.equal(notFound.method, "divide");
  assert.equal(
    notFound.message,
    'Cannot call method "divide": method not found',
  );
  assert.equal(new MethodNotFoundError("x", "custom").message, "custom");
  assert.equal(new ConnectionError("m", { written: true }).written, true);
  assert.equal(new ConnectionError("m", { written: false }).written, false);
  const none = new NoServersError("calculator");
  assert.equal(none.service, "calculator");
  assert.equal(
    none.message,
    'No servers registered for service "calculator"',
  );
  assert.equal(new NoServersError("s", "custom").message, "custom");
});

Deno.test("classify() tells answers, unrun, may-have-run, deadline, cancelled and local errors apart", () => {
  const registry = new ErrorRegistry().register(TypeError);
  const cases: [unknown, string][] = [
    [new ConnectionError("m", { written: false }), "not-run"],
    [new ConnectionError("m", { written: true }), "may-have-run"],
    [new ServerClosingError("m", { notRun: true }), "not-run"],
    [new ServerClosingError("m"), "may-have-run"],
    [
      registry.revive({ name: "ServerClosingError", message: "m" }),
      "may-have-run",
    ],
    [new DeadlineExceededError("m"), "deadline"],
    [new CancelledError("m"), "cancelled"],
    [registry.revive({ name: "X", message: "m" }), "answered"],
    [registry.revive({ name: "TypeError", message: "m" }), "answered"],
    [
      registry.revive({ name: "MethodNotFoundError", message: "m" }),
      "answered",
    ],
    [registry.revive({ name: "ProtocolError", message: "m" }), "answered"],
    [new RemoteError("m", { remoteName: "X" }), "local"],
    [new TypeError("m"), "local"],
    [new RangeError("m"), "local"],
    [new Error("m"), "local"],
    [{ written: false }, "local"],
    [undefined, "local"],
  ];
  for (const [error, kind] of cases) {
    assert.equal(classify(error), kind, String(error));
  }
});

Deno.test("ErrorRegistry.register() takes named classes only and chains", () => {
  class InvalidOperation extends Error {}
  class Other extends Error {}
  const registry = new ErrorRegistry();
  assert.equal(registry.register(InvalidOperation, Other), registry);
  assert.ok(registry.has("InvalidOperation"));
  assert.ok(registry.has("Other"));
  assert.ok(!registry.has("Error"));
  assert.throws(
    () => registry.register((() => class {})() as never),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message === "Cannot register error class: expected a named class",
  );
  assert.throws(() => registry.register({} as never), TypeError);
  assert.throws(() => registry.register({ name: "X" } as never), TypeError);
  assert.ok(!registry.has("X"));
  assert.equal(registry.registerAs("wire", Other), registry);
  assert.ok(
    registry.registerAs("wire", Other).revive({
      name: "wire",
      message: "m",
    }) instanceof Other,
  );
});

Deno.test("ErrorRegistry.revive() builds the registered class with the message, name and data", () => {
  class InvalidOperation extends Error {}
  class Named extends Error {
    override name = "CustomName";
  }
  const registry = new ErrorRegistry().register(InvalidOperation, Named);
  const revived = registry.revive({
    name: "InvalidOperation",
    message: "Cannot divide by zero",
    data: { a: 1 },
  });
  assert.ok(revived instanceof InvalidOperation);
  assert.equal(revived.message, "Cannot divide by zero");
  assert.equal(revived.name, "InvalidOperation");
  assert.deepEqual((revived as { data?: unknown }).data, { a: 1 });
  // The revived message and name are own, non-enumerable, writable properties.
  const message = Object.getOwnPropertyDescriptor(revived, "message")!;
  assert.deepEqual(
    [message.enumerable, message.writable, message.configurable],
    [false, true, true],
  );
  const name = Object.getOwnPropertyDescriptor(revived, "name")!;
  assert.deepEqual(
    [name.enumerable, name.writable, name.configurable],
    [false, true, true],
  );
  // Without data, no data property at all.
  const bare = registry.revive({ name: "InvalidOperation", message: "m" });
  assert.ok(!("data" in bare));
  // A class that names itself keeps its own name.
  const named = registry.revive({ name: "Named", message: "m" });
  assert.ok(named instanceof Named);
  assert.equal(named.name, "Named"); // the wire name
});

Deno.test("ErrorRegistry.revive() registered as Error keeps the name Error", () => {
  const registry = new ErrorRegistry().registerAs("Error", Error);
  const revived = registry.revive({ name: "Error", message: "m" });
  assert.equal(revived.name, "Error");
  assert.ok(!Object.hasOwn(revived, "name"));
});

Deno.test("ErrorRegistry.revive() copes with a class whose constructor throws", () => {
  class Picky extends Error {
    constructor(message: string, required: { code: number }) {
      super(message);
      if (required === undefined) throw new TypeError("needs a code");
    }
  }
  const registry = new ErrorRegistry().register(Picky);
  const revived = registry.revive({
    name: "Picky",
    message: "picky failure",
    data: 5,
    stack: "remote frames",
  });
  assert.ok(revived instanceof Picky);
  assert.equal(revived.message, "picky failure");
  assert.equal((revived as { data?: unknown }).data, 5);
  // No local stack: the remote one follows the name and message.
  assert.ok(String(revived.stack).startsWith("Picky: picky failure\n"));
  assert.ok(
    String(revived.stack).endsWith("\n    --- remote stack ---\nremote frames"),
  );
});

Deno.test("ErrorRegistry.revive() turns zkrpc's own names into their classes", () => {
  const registry = new ErrorRegistry();
  const notFound = registry.revive({
    name: "MethodNotFoundError",
    message: "no such method",
    data: { method: "divide" },
  });
  assert.ok(notFound instanceof MethodNotFoundError);
  assert.equal(notFound.method, "divide");
  assert.equal(notFound.message, "no such method");
  for (const data of [undefined, null, { method: 5 }, "divide"]) {
    const e = registry.revive({
      name: "MethodNotFoundError",
      message: "m",
      data,
    });
    assert.ok(e instanceof MethodNotFoundError);
    assert.equal(e.method, "");
  }
  const closing = registry.revive({ name: "ServerClosingError", message: "c" });
  assert.ok(closing instanceof ServerClosingError);
  assert.equal(closing.message, "c");
  const protocol = registry.revive({ name: "ProtocolError", message: "p" });
  assert.ok(protocol instanceof ProtocolError);
  assert.equal(protocol.message, "p");
  const remote = registry.revive({ name: "QuotaError", message: "q", data: 3 });
  assert.ok(remote instanceof RemoteError);
  assert.equal(remote.remoteName, "QuotaError");
  assert.equal(remote.message, "q");
  assert.equal(remote.data, 3);
  assert.ok(!(remote instanceof ProtocolError));
});

Deno.test("ErrorRegistry.revive() keeps a remote stack below the local one, non-enumerable", () => {
  const registry = new ErrorRegistry();
  const plain = registry.revive({ name: "X", message: "m" });
  assert.ok(!String(plain.stack).includes("--- remote stack ---"));
  const withStack = registry.revive({
    name: "X",
    message: "m",
    stack: "at remote (server.ts:1:1)",
  });
  const stack = String(withStack.stack);
  assert.ok(stack.startsWith("RemoteError: m\n"), stack);
  assert.ok(
    stack.endsWith("\n    --- remote stack ---\nat remote (server.ts:1:1)"),
    stack,
  );
  const descriptor = Object.getOwnPropertyDescriptor(withStack, "stack")!;
  assert.deepEqual(
    [descriptor.enumerable, descriptor.writable, descriptor.configurable],
    [false, true, true],
  );
  assert.ok(!("stack" in { ...withStack }));
});

Deno.test("errorName() finds the most specific name of anything thrown", () => {
  class InvalidOperation extends Error {}
  assert.equal(errorName(new InvalidOperation("x")), "InvalidOperation");
  assert.equal(errorName(new RangeError("x")), "RangeError");
  assert.equal(errorName(new Error("x")), "Error");
  assert.equal(errorName({ name: "Custom" }), "Custom");
  assert.equal(errorName({ name: "" }), "Object");
  assert.equal(errorName({ name: 5 }), "Object");
  assert.equal(errorName(Object.create(null)), "Error");
  assert.equal(
    errorName(Object.assign(Object.create(null), { constructor: "x" })),
    "Error",
  );
  assert.equal(
    errorName({
      constructor: Object.defineProperty(() => {}, "name", { value: "" }),
    }),
    "Error",
  );
  assert.equal(errorName("a string"), "Error");
  assert.equal(errorName(42), "Error");
  assert.equal(errorName(null), "Error");
  assert.equal(errorName(undefined), "Error");
});

Deno.test("ResourceExhaustedError says whether the handler ran, also when revived", () => {
  const refused = new ResourceExhaustedError("busy", { ran: false });
  assert.equal(refused.ran, false);
  assert.equal(refused.name, "ResourceExhaustedError");
  assert.ok(refused instanceof RpcError);
  assert.equal(new ResourceExhaustedError("lost", { ran: true }).ran, true);
  const registry = new ErrorRegistry();
  for (
    const [data, ran] of [
      [{ ran: true }, true],
      [{ ran: false }, false],
      [{ ran: "yes" }, false],
      [null, false],
      [undefined, false],
      ["ran", false],
    ] as const
  ) {
    const revived = registry.revive({
      name: "ResourceExhaustedError",
      message: "m",
      data,
    });
    assert.ok(revived instanceof ResourceExhaustedError, String(data));
    assert.equal(revived.ran, ran, JSON.stringify(data));
    assert.equal(revived.message, "m");
  }
});

Deno.test("ErrorRegistry.revive() gives the remote data even to a class with a data getter", () => {
  class Fixed extends Error {
    get data(): string {
      return "own";
    }
  }
  const revived = new ErrorRegistry().register(Fixed).revive({
    name: "Fixed",
    message: "m",
    data: "sent",
  });
  assert.ok(revived instanceof Fixed);
  assert.equal((revived as Fixed).data, "sent");
});

Deno.test("errorName() survives throwing getters and odd constructors", () => {
  const throwingName = {
    get name(): string {
      throw new Error("no");
    },
  };
  assert.equal(errorName(throwingName), "Object");
  const throwingBoth = Object.create(null, {
    name: {
      get() {
        throw new Error("no");
      },
    },
    constructor: {
      get() {
        throw new Error("no");
      },
    },
  });
  assert.equal(errorName(throwingBoth), "Error");
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  assert.equal(errorName(revoked.proxy), "Error");
  // A constructor that is not a function is no constructor.
  assert.equal(
    errorName(
      Object.assign(Object.create(null), { constructor: { name: "Fake" } }),
    ),
    "Error",
  );
  // A constructor whose name is not a string is no name.
  const odd = {
    constructor: Object.defineProperty(function () {}, "name", { value: 5 }),
  };
  assert.equal(errorName(odd), "Error");
});

Deno.test("ErrorRegistry.revive() falls back to the class name, warns once per pair and at most 64 times", () => {
  class OutOfStockError extends Error {}
  const warnings: string[] = [];
  const registry = new ErrorRegistry({ onWarning: (m) => warnings.push(m) })
    .register(OutOfStockError);
  const payload = {
    name: "OutOfStock",
    message: "gone",
    className: "OutOfStockError",
  };
  const first = registry.revive(payload);
  const second = registry.revive(payload);
  assert.ok(
    first instanceof OutOfStockError && second instanceof OutOfStockError,
  );
  assert.equal(first.name, "OutOfStock");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /registerAs\("OutOfStock", OutOfStockError\)/);
  // A class name that is not registered changes nothing.
  assert.ok(
    registry.revive({ name: "X", message: "m", className: "Nope" }) instanceof
      RemoteError,
  );
  // zkrpc's own classes are never revived through className.
  const reserved = registry.revive({
    name: "Y",
    message: "m",
    className: "ServerClosingError",
  });
  assert.ok(
    reserved instanceof RemoteError &&
      !(reserved instanceof ServerClosingError),
  );
  // A peer inventing names cannot flood the log; control bytes are escaped.
  for (let i = 0; i < 200; i++) {
    registry.revive({ ...payload, name: `N${i}\u001b[2J\u009b` });
  }
  assert.equal(warnings.length, 64);
  // deno-lint-ignore no-control-regex
  assert.ok(warnings.every((w) => !/[\u0000-\u001f\u007f-\u009f]/.test(w)));
});

Deno.test("ErrorRegistry.register() also registers a name the class sets on its prototype", () => {
  class SoldOutError extends Error {}
  SoldOutError.prototype.name = "SoldOut";
  const registry = new ErrorRegistry().register(SoldOutError);
  assert.ok(registry.has("SoldOut") && registry.has("SoldOutError"));
  assert.ok(
    registry.revive({ name: "SoldOut", message: "m" }) instanceof SoldOutError,
  );
});

Deno.test("ErrorRegistry.revive() names the method and the service or server in an unregistered error's message", () => {
  const payload = { name: "QuotaError", message: "Too many" };
  const plain = new ErrorRegistry().revive(payload) as RemoteError;
  assert.equal(plain.message, "Too many");
  const onServer = new ErrorRegistry().revive(payload, {
    method: "spend",
    target: "127.0.0.1:9001",
  }) as RemoteError;
  assert.equal(
    onServer.message,
    'Cannot call method "spend" on 127.0.0.1:9001: the server threw QuotaError: Too many',
  );
  const ofService = new ErrorRegistry({ service: "wallet" }).revive(payload, {
    method: "spend",
    target: "127.0.0.1:9001",
  }) as RemoteError;
  assert.equal(
    ofService.message,
    'Cannot call method "spend" of service "wallet": the server threw QuotaError: Too many',
  );
  assert.equal(ofService.remoteMessage, "Too many");
  assert.equal(ofService.remoteName, "QuotaError");
});

Deno.test("withCallerStack() leaves a frozen error from a fromRemote hook as it is", async () => {
  class Frozen extends Error {
    static fromRemote(payload: ErrorPayload): Frozen {
      return Object.freeze(new Frozen(payload.message));
    }
  }
  const registry = new ErrorRegistry().register(Frozen);
  const revived = registry.revive({ name: "Frozen", message: "m", stack: "s" });
  const call = async () => {
    try {
      return await Promise.reject(revived);
    } catch (error) {
      throw withCallerStack(error);
    }
  };
  await assert.rejects(call(), (error: unknown) => error === revived);
});
