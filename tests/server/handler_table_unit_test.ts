/**
 * The server's handler table (`src/server/_handler_table.ts`) as a unit, no
 * socket: which properties are callable and in which order, the refusals
 * with their exact messages (the 255-byte name limit at and one past), the
 * declared parameter counts, and lookup by raw name bytes.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type AnyFunction,
  collectMethods,
  decodeMethod,
  DESCRIBE_METHOD,
  describeMethods,
  findMethod,
  HEALTH_METHOD,
  methodTable,
} from "../../src/server/_handler_table.ts";
import { withContext } from "../../src/server/call_context.ts";
import { ProtocolError } from "../../src/errors.ts";

const utf8 = new TextEncoder();
const NONE_PREFIX =
  'Cannot serve handlers: no callable method found (methods are function properties of the object, its class and superclasses, or a class\'s static methods; names starting with "_", "then", "toJSON", "constructor" and Object\'s and Function\'s own names are never callable)';

const names = (handlers: object) => [...collectMethods(handlers).keys()];

/** The hint after the fixed text of the "nothing callable" TypeError. */
function none(handlers: object): string {
  try {
    collectMethods(handlers);
  } catch (error) {
    assert.ok(error instanceof TypeError);
    assert.ok(error.message.startsWith(NONE_PREFIX), error.message);
    return error.message.slice(NONE_PREFIX.length);
  }
  assert.fail("no error");
}

Deno.test("handler table: anything but an object or a function is refused with the reason", () => {
  for (const value of [null, undefined, 1, "x", true, 1n]) {
    assert.throws(
      () => collectMethods(value as unknown as object),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message ===
          "Cannot serve handlers: expected an object, a class instance or a class with static methods",
      String(value),
    );
  }
});

Deno.test("handler table: own function properties are callable, hidden and non-function names are not", () => {
  const handlers = {
    add: (a: number, b: number) => a + b,
    async later() {},
    async *items() {},
    value: 3,
    _private: () => 1,
    then: () => 1,
    toJSON: () => 1,
    toString: () => "x",
    hasOwnProperty: () => true,
    constructor: () => 1,
    name: () => 1,
    length: () => 1,
    prototype: () => 1,
    caller: () => 1,
    arguments: () => 1,
    call: () => 1,
    apply: () => 1,
    bind: () => 1,
    __defineGetter__: () => 1,
    get computed() {
      throw new Error("a getter is never run");
    },
    *gen() {},
  };
  assert.deepEqual(names(handlers), ["add", "later", "items"]);
});

Deno.test("handler table: the object's own methods come first, then its class's, then each superclass's; the nearest definition wins", () => {
  class Base {
    base() {
      return "base";
    }
    shared() {
      return "base";
    }
    hidden() {
      return "base";
    }
  }
  class Child extends Base {
    child() {}
    override shared() {
      return "child";
    }
  }
  const handlers = new Child() as unknown as Record<string, unknown>;
  handlers.own = () => 1;
  handlers.hidden = 42; // a non-function own property hides the method
  const methods = collectMethods(handlers);
  assert.deepEqual([...methods.keys()], ["own", "child", "shared", "base"]);
  assert.equal(methods.get("shared")!.call(handlers), "child");
});

Deno.test("handler table: a class serves its static methods and inherited static ones, never Function's", () => {
  class A {
    static a() {}
    static both() {
      return "A";
    }
  }
  class B extends A {
    static b() {}
    static override both() {
      return "B";
    }
  }
  const methods = collectMethods(B);
  assert.deepEqual([...methods.keys()], ["b", "both", "a"]);
  assert.equal(methods.get("both")!(), "B");
});

Deno.test("handler table: the scan stops at a built-in prototype: a platform class's, or one whose constructor is native code", () => {
  class Events extends EventTarget {
    fire() {}
  }
  assert.deepEqual(names(new Events()), ["fire"]);
  class Bag extends Map {
    size2() {}
  }
  assert.deepEqual(names(new Bag()), ["size2"]);
  // A prototype whose constructor is native code (a bound function).
  const proto = { constructor: function () {}.bind(null), inherited() {} };
  const handlers = Object.assign(Object.create(proto), { own() {} });
  assert.deepEqual(names(handlers), ["own"]);
  // A user prototype is scanned.
  const user = { constructor: function Ctor() {}, inherited() {} };
  const h2 = Object.assign(Object.create(user), { own() {} });
  assert.deepEqual(names(h2), ["own", "inherited"]);
});

Deno.test("handler table: names starting with zkrpc. are refused with the reason", () => {
  assert.throws(
    () => collectMethods({ "zkrpc.mine": () => 1 }),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message ===
        'Cannot serve handlers: method name "zkrpc.mine" is reserved (names starting with "zkrpc." are zkrpc\'s own)',
  );
  assert.deepEqual(names({ "zkrpcx": () => 1, "zkrpc": () => 1 }), [
    "zkrpcx",
    "zkrpc",
  ]);
});

Deno.test("handler table: a name of exactly 255 UTF-8 bytes is served, one of 256 is refused naming its start", () => {
  const at = "a".repeat(255);
  assert.deepEqual(names({ [at]: () => 1 }), [at]);
  for (const long of ["a".repeat(256), "é".repeat(128)]) {
    assert.throws(
      () => collectMethods({ [long]: () => 1 }),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message ===
          `Cannot serve handlers: method name "${
            long.slice(0, 32)
          }…" is longer than 255 UTF-8 bytes (the protocol's limit)`,
    );
  }
  // 127 two-byte characters and one ASCII: 255 bytes.
  const wide = "é".repeat(127) + "a";
  assert.deepEqual(names({ [wide]: () => 1 }), [wide]);
});

Deno.test("handler table: nothing callable is a TypeError that says why", () => {
  assert.equal(none({}), "");
  assert.equal(none({ x: 1, _y: () => 1 }), "");
  class Instance {
    a() {}
    b() {}
    c() {}
    d() {}
    e() {}
    f() {}
    _g() {}
  }
  assert.equal(
    none(Instance),
    "; it is a class whose methods are instance methods (a, b, c, d, e): serve an instance, serve(new Instance())",
  );
  const Anonymous = (() =>
    class {
      m() {}
    })();
  Object.defineProperty(Anonymous, "name", { value: "" });
  assert.equal(
    none(Anonymous),
    "; it is a class whose methods are instance methods (m): serve an instance, serve(new Handlers())",
  );
  class OnlyHidden {
    _x() {}
  }
  assert.equal(none(OnlyHidden), "");
  const skipped = {
    get a() {
      return 1;
    },
    set b(_v: number) {
      // a setter alone
    },
    *c() {},
    get d() {
      return 1;
    },
    get e() {
      return 1;
    },
    get f() {
      return 1;
    },
  };
  assert.equal(
    none(skipped),
    "; not methods: a (a getter), b (a getter), c (a generator), d (a getter), e (a getter)",
  );
  // A function with no prototype object and nothing else: no hint.
  assert.equal(none(() => {}), "");
});

Deno.test("handler table: describe reports each declared parameter count, without a context handler's context", () => {
  const methods = new Map<string, AnyFunction>([
    ["none", () => 1],
    ["two", (a: number, b: number) => a + b],
    ["defaulted", (a: number, b = 1) => a + b],
    ["ctx", withContext((_ctx, a: number, b: number) => a + b)],
    ["ctxOnly", withContext((_ctx) => 1)],
    ["bare", withContext(() => 1)],
  ]);
  assert.deepEqual(describeMethods(methods), [
    { name: "none", params: 0 },
    { name: "two", params: 2 },
    { name: "defaulted", params: 1 },
    { name: "ctx", params: 2 },
    { name: "ctxOnly", params: 0 },
    { name: "bare", params: 0 },
  ]);
});

Deno.test("handler table: lookup by raw name bytes among names of the same length; zkrpc's own are marked builtin", () => {
  const plain = () => 1;
  const ctx = withContext((_c, a: number) => a);
  const table = methodTable([
    ["abc", plain],
    ["abd", ctx],
    ["zkrpc.health", plain],
    ["x".repeat(256), plain],
  ]);
  assert.deepEqual([...table.keys()].sort((a, b) => a - b), [3, 12]);
  assert.equal(table.get(3)!.length, 2);
  const abd = findMethod(table, utf8.encode("abd"))!;
  assert.equal(abd.name, "abd");
  assert.deepEqual([...abd.bytes], [...utf8.encode("abd")]);
  assert.equal(abd.fn, ctx);
  assert.equal(typeof abd.withContext, "function");
  assert.equal(abd.builtin, false);
  const abc = findMethod(table, utf8.encode("abc"))!;
  assert.equal(abc.name, "abc");
  assert.equal(abc.withContext, undefined);
  assert.equal(findMethod(table, utf8.encode("abe")), undefined);
  assert.equal(findMethod(table, utf8.encode("bbc")), undefined);
  assert.equal(findMethod(table, utf8.encode("ab")), undefined);
  assert.equal(findMethod(table, utf8.encode("abcd")), undefined);
  assert.equal(findMethod(table, new Uint8Array(0)), undefined);
  assert.equal(findMethod(table, utf8.encode("zkrpc.health"))!.builtin, true);
});

Deno.test("handler table: a request's method name decodes as ASCII or UTF-8; invalid UTF-8 is a protocol error", () => {
  assert.equal(decodeMethod(utf8.encode("add")), "add");
  assert.equal(decodeMethod(new Uint8Array([0x7f, 0x41])), "\x7fA");
  assert.equal(decodeMethod(utf8.encode("añadir")), "añadir");
  assert.equal(decodeMethod(new Uint8Array(0)), "");
  for (const bytes of [[0x41, 0x80], [0xff], [0x41, 0xc3]]) {
    assert.throws(
      () => decodeMethod(new Uint8Array(bytes)),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.message === "Cannot read request: method name is not valid UTF-8",
      String(bytes),
    );
  }
});

Deno.test("handler table: the handler object itself is always scanned, even with a native constructor property; a native-code marker inside a user constructor's body does not stop the scan", () => {
  assert.deepEqual(names({ constructor: Map, ok() {} }), ["ok"]);
  const user = {
    constructor: function Ctor() {
      return "{ [native code] } is only text here";
    },
    inherited() {},
  };
  const handlers = Object.assign(Object.create(user), { own() {} });
  assert.deepEqual(names(handlers), ["own", "inherited"]);
});

Deno.test("handler table: the hints of nothing callable look only at a class's prototype methods, and the class hint wins over skipped names", () => {
  // An object with a `prototype` property is no class.
  assert.equal(none({ prototype: { a() {} } }), "");
  // A function whose prototype is null.
  function bare() {}
  bare.prototype = null;
  assert.equal(none(bare), "");
  // Prototype accessors are not instance methods.
  class Getters {
    get x() {
      return 1;
    }
  }
  assert.equal(none(Getters), "");
  class Both {
    static get s() {
      return 1;
    }
    m() {}
  }
  assert.equal(
    none(Both),
    "; it is a class whose methods are instance methods (m): serve an instance, serve(new Both())",
  );
});

Deno.test("handler table: a name of exactly 255 bytes is in the lookup table", () => {
  const name = "n".repeat(255);
  const table = methodTable([[name, () => 1]]);
  assert.equal(findMethod(table, utf8.encode(name))?.name, name);
});

Deno.test("handler table: zkrpc's own method names", () => {
  assert.equal(DESCRIBE_METHOD, "zkrpc.describe");
  assert.equal(HEALTH_METHOD, "zkrpc.health");
});
