import assert from "node:assert/strict";
import { serve } from "../src/server/server.ts";
import { Connection } from "../src/client/connection.ts";
import { type CallContext, withContext } from "../src/server/call_context.ts";
import { DistributedChannel } from "../mod.ts";
import { StaticMembership } from "../src/discovery/static.ts";
import { ProtocolError, ResourceExhaustedError } from "../src/errors.ts";
import { type Codec, jsonCodec } from "../src/protocol/codec.ts";
import { msgpackCodec } from "../src/protocol/msgpack_codec.ts";
import { deadlineSeen, delay } from "./_core_helpers.ts";

const HOST = "127.0.0.1";
const MIB = 1024 * 1024;

function handlers(): Record<string, (...args: never[]) => unknown> {
  return {
    big: (n: number) => "x".repeat(n),
    async bigLater(n: number): Promise<string> {
      // sleep-ok: handler work (a slow method), not a wait for an event
      await delay(5);
      return "x".repeat(n);
    },
    bigError(n: number): never {
      throw new RangeError("y".repeat(n));
    },
    async slow(i: number): Promise<number> {
      // sleep-ok: handler work (a slow method), not a wait for an event
      await delay(30);
      return i;
    },
    deadline: withContext((ctx: CallContext) => deadlineSeen(ctx)),
  };
}

Deno.test("a result larger than the client's announced maxFrameSize fails that call only", async () => {
  const errors: Error[] = [];
  await using server = serve(handlers(), {
    hostname: HOST,
    onError: (e) => void errors.push(e),
  });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxFrameSize: MIB },
  );
  const others = Array.from({ length: 10 }, (_, i) => conn.call("slow", [i]));
  for (const method of ["big", "bigLater"]) {
    await assert.rejects(conn.call(method, [5 * MIB]), (e: unknown) => {
      assert.ok(e instanceof ResourceExhaustedError, String(e));
      assert.equal(e.ran, true);
      assert.match(
        e.message,
        /result of \d+ bytes exceeds the client's frame limit of 1048576 bytes/,
      );
      return true;
    });
  }
  await assert.rejects(
    conn.call("bigError", [2 * MIB]),
    (e: unknown) =>
      e instanceof ResourceExhaustedError &&
      /error of \d+ bytes exceeds the client's frame limit/.test(e.message),
  );
  assert.deepEqual(await Promise.all(others), [...Array(10).keys()]);
  assert.equal(conn.isClosed, false);
  assert.equal(await conn.call("big", [10]), "x".repeat(10));
  // The server side says so too.
  assert.equal(
    errors.filter((e) => e instanceof ResourceExhaustedError).length,
    3,
  );
});

Deno.test("an oversize result does not get a healthy server ejected from a channel", async () => {
  await using server = serve(handlers(), { hostname: HOST, onError: () => {} });
  await using channel = new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: server.addr.port }]),
    connection: { maxFrameSize: MIB },
  });
  await assert.rejects(channel.call("big", [2 * MIB]), ResourceExhaustedError);
  assert.equal(await channel.call("big", [3]), "xxx");
  assert.deepEqual(channel.endpoints().map((e) => e.state), ["ready"]);
});

Deno.test("a request larger than the server's announced maxFrameSize fails before sending", async () => {
  await using server = serve(handlers(), {
    hostname: HOST,
    maxFrameSize: 64 * 1024,
    onError: () => {},
  });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await assert.rejects(
    conn.call("big", ["z".repeat(100_000)]),
    (e: unknown) =>
      e instanceof RangeError &&
      /exceeds the server's frame limit of 65536 bytes/.test(e.message),
  );
  assert.equal(await conn.call("big", [2]), "xx");
  assert.equal(conn.isClosed, false);
});

Deno.test("the request header carries the caller's deadline to ctx.deadline", async () => {
  await using server = serve(handlers(), { hostname: HOST });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const before = Date.now();
  const deadline = await conn.call("deadline", [], { timeout: 5000 });
  assert.equal(typeof deadline, "number");
  // clock-ok: an absolute deadline (a timestamp), not a duration
  assert.ok(
    (deadline as number) >= before + 4000 &&
      (deadline as number) <= Date.now() + 5001,
    `deadline ${deadline} not about 5 s after ${before}`,
  );
  assert.equal(await conn.call("deadline", []), null);
});

Deno.test("a client and a server with different codecs fail to connect with a clear error", async () => {
  const other = { ...jsonCodec, name: "other" };
  const errors: Error[] = [];
  await using server = serve(handlers(), {
    hostname: HOST,
    codec: other,
    onError: (e) => void errors.push(e),
  });
  await assert.rejects(
    Connection.connect({ hostname: HOST, port: server.addr.port }),
    (e: unknown) =>
      e instanceof ProtocolError &&
      /the server uses codec \[other\], this client offers \[msgpack, json\]/
        .test(
          e.message,
        ),
  );
});

Deno.test("the codec is negotiated per connection: msgpack by default, json when the client offers only json", async () => {
  const seen: string[] = [];
  const spy = (codec: Codec): Codec => ({
    name: codec.name,
    encode: codec.encode,
    decode(bytes) {
      seen.push(codec.name);
      return codec.decode(bytes);
    },
  });
  await using server = serve(handlers(), {
    hostname: HOST,
    codec: [spy(msgpackCodec), spy(jsonCodec)],
  });
  const port = server.addr.port;
  {
    await using conn = await Connection.connect({ hostname: HOST, port });
    assert.equal(await conn.call("slow", [5]), 5);
    assert.deepEqual(seen, ["msgpack"]);
  }
  seen.length = 0;
  {
    await using conn = await Connection.connect({ hostname: HOST, port }, {
      codec: jsonCodec,
    });
    assert.equal(await conn.call("slow", [5]), 5);
    assert.deepEqual(seen, ["json"]);
  }
  seen.length = 0;
  {
    // The client's order wins over the server's.
    await using conn = await Connection.connect({ hostname: HOST, port }, {
      codec: [jsonCodec, msgpackCodec],
    });
    assert.equal(await conn.call("slow", [5]), 5);
    assert.deepEqual(seen, ["json"]);
  }
});

Deno.test("a server that accepts only json serves a default client in json", async () => {
  await using server = serve(handlers(), { hostname: HOST, codec: jsonCodec });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.equal(await conn.call("slow", [5]), 5);
});

Deno.test("an empty or duplicate codec list is refused with a TypeError", () => {
  assert.throws(
    () => serve(handlers(), { hostname: HOST, codec: [] }),
    /Cannot serve: the codec list is empty/,
  );
  assert.throws(
    () => serve(handlers(), { hostname: HOST, codec: [jsonCodec, jsonCodec] }),
    /codec names must be unique/,
  );
});
