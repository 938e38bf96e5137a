/**
 * Any handler object is served: plain objects, classes with static methods,
 * class instances (methods along the prototype chain), subclasses, mixins,
 * bound methods, arrow-function fields, async methods, frozen objects and
 * `Object.create(null)`; the names that are never callable stay so, getters
 * are never run while scanning, and nothing callable is an error.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DESCRIBE_METHOD, serve } from "../src/server/server.ts";
import type { ServiceDescription } from "../src/server/_handler_table.ts";
import { withContext } from "../src/server/call_context.ts";
import { Connection } from "../src/client/connection.ts";
import { MethodNotFoundError } from "../src/errors.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";

class Base {
  #secret = 40;
  protected bonus = 2;
  answer(): number {
    return this.#secret + this.bonus;
  }
  _internal(): string {
    return "hidden";
  }
  then(): string {
    return "not a thenable";
  }
  get expensive(): number {
    throw new Error("a getter was run while scanning");
  }
}

class Middle extends Base {
  greet(name: string): string {
    return `hello ${name} (${this.answer()})`;
  }
  override answer(): number {
    return super.answer() + 1; // an override wins over the base method
  }
}

class Leaf extends Middle {
  readonly arrow = (a: number, b: number): number => a * b + this.bonus;
  async later(x: number): Promise<number> {
    await Promise.resolve();
    return x + this.answer();
  }
  *numbers(): Generator<number> {
    yield 1;
  }
  static create(): Leaf {
    return new Leaf();
  }
}

// deno-lint-ignore no-explicit-any
type Mixin = new (...args: any[]) => object;
function Timestamped<T extends Mixin>(B: T) {
  return class extends B {
    stamp(): string {
      return "stamped";
    }
  };
}
class Mixed extends Timestamped(Base) {}

class Counter {
  #count = 0;
  constructor() {
    this.increment = this.increment.bind(this);
  }
  increment(): number {
    return ++this.#count;
  }
}

class Static {
  static divide(a: number, b: number): number {
    return a / b;
  }
  static twice(a: number): number {
    return this.divide(a * 4, 2); // `this` is the class
  }
  static _hidden(): number {
    return 0;
  }
}
class StaticChild extends Static {
  static triple(a: number): number {
    return this.divide(a * 3, 1);
  }
}

class Events extends EventTarget {
  ping(): string {
    return "pong";
  }
}

const bare = Object.create(null) as Record<string, unknown>;
bare.hello = () => "bare";

interface Shape {
  name: string;
  handlers: object;
  /** Callable method → [params, expected result]. */
  calls: Record<string, [unknown[], unknown]>;
  /** Exactly what describe lists, in order. */
  listed: string[];
}

const shapes: Shape[] = [
  {
    name: "a plain object with sync, async and context methods",
    handlers: {
      add: (a: number, b: number) => a + b,
      async slow(a: number) {
        await Promise.resolve();
        return a;
      },
      ctx: withContext((c, a: number) => `${c.method}:${a}`),
      _private: () => "no",
      then: () => "no",
      toJSON: () => "no",
      value: 3,
    },
    calls: { add: [[1, 2], 3], slow: [[7], 7], ctx: [[1], "ctx:1"] },
    listed: ["add", "slow", "ctx"],
  },
  {
    name: "a class with static methods (the tutorial's shape)",
    handlers: Static,
    calls: { divide: [[10, 2], 5], twice: [[3], 6] },
    listed: ["divide", "twice"],
  },
  {
    name: "a subclass's static methods and the inherited ones",
    handlers: StaticChild,
    calls: { triple: [[2], 6], divide: [[9, 3], 3] },
    listed: ["triple", "divide", "twice"],
  },
  {
    name: "a class instance: prototype methods, private fields and this",
    handlers: new Base(),
    calls: { answer: [[], 42] },
    listed: ["answer"],
  },
  {
    name: "a subclass of a subclass: own fields, overrides, async methods",
    handlers: new Leaf(),
    calls: {
      arrow: [[3, 4], 14],
      later: [[1], 44],
      greet: [["ann"], "hello ann (43)"],
      answer: [[], 43],
    },
    listed: ["arrow", "later", "greet", "answer"],
  },
  {
    name: "a mixin",
    handlers: new Mixed(),
    calls: { stamp: [[], "stamped"], answer: [[], 42] },
    listed: ["stamp", "answer"],
  },
  {
    name: "a bound method in the constructor",
    handlers: new Counter(),
    calls: { increment: [[], 1] },
    listed: ["increment"],
  },
  {
    name: "a frozen object",
    handlers: Object.freeze({ hi: () => "frozen" }),
    calls: { hi: [[], "frozen"] },
    listed: ["hi"],
  },
  {
    name: "an object without a prototype",
    handlers: bare,
    calls: { hello: [[], "bare"] },
    listed: ["hello"],
  },
  {
    name: "a subclass of a built-in class (EventTarget's methods stay out)",
    handlers: new Events(),
    calls: { ping: [[], "pong"] },
    listed: ["ping"],
  },
  {
    name: "an object whose prototype is another handler object",
    handlers: Object.create({ inherited: () => "from proto" }, {
      own: { value: () => "own", enumerable: false },
    }),
    calls: { own: [[], "own"], inherited: [[], "from proto"] },
    listed: ["own", "inherited"],
  },
];

/** Names that are never callable on any shape. */
const NEVER = [
  "constructor",
  "__proto__",
  "toString",
  "toLocaleString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "__defineGetter__",
  "__lookupSetter__",
  "call",
  "apply",
  "bind",
  "prototype",
  "length",
  "name",
  "then",
  "toJSON",
  "_internal",
  "_private",
  "_hidden",
  "expensive",
  "numbers",
  "create",
  "addEventListener",
  "dispatchEvent",
];

for (const shape of shapes) {
  Deno.test(`serve() serves ${shape.name}`, async () => {
    await using server = serve(shape.handlers, { hostname: HOST });
    await using conn = await within(
      Connection.connect({ hostname: HOST, port: server.addr.port }),
      5000,
      "connect",
    );
    for (const [method, [params, expected]] of Object.entries(shape.calls)) {
      assert.deepEqual(
        await within(conn.call(method, params), 5000, method),
        expected,
        method,
      );
    }
    assert.deepEqual(server.methods, shape.listed);
    const description = await within(
      conn.call(DESCRIBE_METHOD, []),
      5000,
      "describe",
    ) as ServiceDescription;
    assert.deepEqual(description.methods.map((m) => m.name), shape.listed);
    for (const name of NEVER) {
      if (shape.listed.includes(name)) continue;
      await assert.rejects(
        within(conn.call(name, []), 5000, name),
        (error: unknown) => {
          assert.ok(error instanceof MethodNotFoundError, name);
          assert.equal(error.method, name);
          return true;
        },
      );
    }
  });
}

Deno.test("serve() with nothing callable throws an error that says why", () => {
  class OnlyInstanceMethods {
    run(): number {
      return 1;
    }
  }
  const cases: [object, RegExp][] = [
    [{}, /no callable method found/],
    [
      OnlyInstanceMethods,
      /a class whose methods are instance methods \(run\): serve an instance, serve\(new OnlyInstanceMethods\(\)\)/,
    ],
    [{ _a: () => 1, then: () => 2 }, /names starting with "_", "then"/],
    [
      {
        get value() {
          throw new Error("a getter was run");
        },
      },
      /not methods: value \(a getter\)/,
    ],
    [{ *gen() {} }, /not methods: gen \(a generator\)/],
    [{ [Symbol("s")]: () => 1 }, /no callable method found/],
    [Object.create(null), /no callable method found/],
  ];
  for (const [handlers, message] of cases) {
    assert.throws(
      () => serve(handlers, { hostname: HOST }),
      (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /^Cannot serve handlers: /);
        assert.match(error.message, message);
        return true;
      },
    );
  }
});

Deno.test("serve() refuses a method name longer than the protocol carries", () => {
  assert.throws(
    () => serve({ ["m".repeat(256)]: () => 1 }, { hostname: HOST }),
    /longer than 255 UTF-8 bytes/,
  );
});
