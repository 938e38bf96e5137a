/**
 * The built-in `zkrpc.describe` method: what a server reports about its
 * methods, protocol, codec and registration, and the reserved names.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  DESCRIBE_METHOD,
  type Registrar,
  serve,
  type ServiceDescription,
} from "../src/server/server.ts";
import { withContext } from "../src/server/call_context.ts";
import { Connection } from "../src/client/connection.ts";
import { PROTOCOL_VERSION } from "../src/protocol/frame.ts";

const HOST = "127.0.0.1";

async function describe(port: number): Promise<ServiceDescription> {
  await using conn = await Connection.connect({ hostname: HOST, port });
  return await conn.call(DESCRIBE_METHOD, []) as ServiceDescription;
}

Deno.test("zkrpc.describe reports each method's declared parameter count, the protocol and the codec", async () => {
  const handlers = {
    divide: (a: number, b: number) => a / b,
    greet: (name: string, greeting = "Hello") => `${greeting} ${name}`,
    sum: (...xs: number[]) => xs.reduce((a, b) => a + b, 0),
    scaled: (factor: number, ...xs: number[]) => xs.map((x) => x * factor),
    none: () => 1,
    count: withContext((_ctx, from: number, to: number) => to - from),
    cancellable: withContext((ctx) => ctx.signal.aborted),
  };
  await using server = serve(handlers, { hostname: HOST });
  const description = await describe(server.addr.port);
  assert.deepEqual(description, {
    protocol: PROTOCOL_VERSION,
    codec: "msgpack, json",
    methods: [
      { name: "divide", params: 2 },
      { name: "greet", params: 1 }, // a default value is optional
      { name: "sum", params: 0 }, // a rest parameter is optional
      { name: "scaled", params: 1 },
      { name: "none", params: 0 },
      { name: "count", params: 2 }, // withContext: the context is not counted
      { name: "cancellable", params: 0 },
    ],
  });
  // It is not one of the handler's methods.
  assert.deepEqual(server.methods, Object.keys(handlers));
});

Deno.test("zkrpc.describe tells nothing about the process, even what the registrar published", async () => {
  const startedAt = new Date().toISOString();
  const member = { host: HOST, port: 0, zone: "a", pid: Deno.pid, startedAt };
  const registrar: Registrar = {
    register(addr) {
      member.port = addr.port;
      return Promise.resolve({ member, deregister: () => Promise.resolve() });
    },
  };
  await using server = serve({
    ok: () => true,
    _secret: () => "no",
    then: () => "no",
  }, { hostname: HOST, registrar });
  await server.ready;
  const description = await describe(server.addr.port);
  assert.deepEqual(Object.keys(description).sort(), [
    "codec",
    "methods",
    "protocol",
  ]);
  assert.deepEqual(description.methods, [{ name: "ok", params: 0 }]);
  const text = JSON.stringify(description);
  for (const leak of [String(Deno.pid), startedAt, "zone", "_secret", "then"]) {
    assert.ok(!text.includes(leak), `describe must not contain ${leak}`);
  }
});

Deno.test("serve() refuses a handler method named in zkrpc's reserved namespace, synchronously", () => {
  for (const name of [DESCRIBE_METHOD, "zkrpc.anything"]) {
    assert.throws(
      () => serve({ [name]: () => 1 }, { hostname: HOST }),
      (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.equal(
          error.message,
          `Cannot serve handlers: method name "${name}" is reserved (names starting with "zkrpc." are zkrpc's own)`,
        );
        return true;
      },
    );
  }
});
