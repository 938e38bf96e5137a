/**
 * The value model and the bigint caps on a real `serve()` over TCP (issue
 * 21, findings 3 and 8): what MessagePack could deliver beyond JSON never
 * reaches a handler, a 4 MiB bigint is refused by its length, and both
 * codecs carry objects of more than 65,535 keys.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Packr } from "msgpackr/pack";
import { serve } from "../src/server/server.ts";
import { Connection } from "../src/client/connection.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { msgpackCodec } from "../src/protocol/msgpack_codec.ts";
import { FrameType } from "../src/protocol/frame.ts";
import { concat } from "./_core_helpers.ts";
import { extHeader, RawPeer, u8 } from "./_hostile_payloads.ts";

const HOST = "127.0.0.1";

/** The `{ name, message }` of each reply, decoded with `codec`. */
function errorsOf(peer: RawPeer, codec = msgpackCodec) {
  return peer.replies.map((r) => {
    assert.equal(r.type, FrameType.Error);
    return codec.decode(r.payload) as { name: string; message: string };
  });
}

Deno.test("finding 8: msgpackr's extra types (Error, RegExp, Set, typed arrays, DataView, cycles, records) sent by a raw client never reach a handler", async () => {
  const received: unknown[] = [];
  await using server = serve({
    echo: (x: unknown) => {
      received.push(x);
      return null;
    },
  }, { hostname: HOST, onError: () => {} });
  await using peer = await RawPeer.open(server.addr.port, "msgpack");
  const more = new Packr({ moreTypes: true, useRecords: false });
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  const params = [
    more.pack([new Error("e")]),
    more.pack([/re/g]),
    more.pack([new Set([1])]),
    more.pack([new Float64Array(2)]),
    more.pack([new Int32Array(2)]),
    more.pack([new DataView(new ArrayBuffer(4))]),
    more.pack([new ArrayBuffer(4)]),
    new Packr({ structuredClone: true }).pack([cyclic]),
    new Packr({ useRecords: true }).pack([{ a: 1 }]),
    new Packr({ useBigIntExtension: true }).pack([2n ** 100n]),
  ];
  await peer.send(params.map((p) => new Uint8Array(p)));
  await peer.until(params.length, "a reply to each request");
  for (const error of errorsOf(peer)) {
    assert.equal(error.name, "ProtocolError");
    assert.match(
      error.message,
      /^Cannot call method "echo": cannot decode params: Cannot decode value: .* at byte \d+$/,
    );
  }
  assert.deepEqual(received, []);
  // The connection lives on and carries a value of the model.
  await peer.send([msgpackCodec.encode([{ ok: new Uint8Array([1]) }])]);
  await peer.until(params.length + 1, "the last reply");
  assert.equal(peer.replies.at(-1)!.type, FrameType.Result);
  assert.deepEqual(received, [{ ok: new Uint8Array([1]) }]);
});

Deno.test("finding 8: a client refuses to send what the value model does not carry, naming the path, before anything is sent", async () => {
  let calls = 0;
  await using server = serve({ echo: (x: unknown) => (calls++, x) }, {
    hostname: HOST,
  });
  const endpoint = { hostname: HOST, port: server.addr.port };
  for (const codec of [msgpackCodec, jsonCodec]) {
    await using conn = await Connection.connect(endpoint, { codec });
    for (
      const [value, what] of [
        [new Error("e"), "an instance of Error"],
        [/re/, "an instance of RegExp"],
        [new Set(), "a Set"],
        [new Map(), "a Map"],
        [new Float32Array(1), "an instance of Float32Array"],
        [new DataView(new ArrayBuffer(1)), "an instance of DataView"],
      ] as const
    ) {
      await assert.rejects(
        conn.call("echo", [{ v: value }], { timeout: 5000 }),
        (e: unknown) => {
          assert.ok(e instanceof TypeError, `${codec.name}: ${e}`);
          assert.equal(
            e.message,
            `Cannot call method "echo": cannot encode value at $[0].v: ${what} is not supported`,
          );
          return true;
        },
      );
    }
    assert.equal(await conn.call("echo", [1], { timeout: 5000 }), 1);
  }
  assert.equal(calls, 2);
});

Deno.test("finding 8: objects of more than 65,535 keys travel both ways with both codecs", async () => {
  await using server = serve({ echo: (x: unknown) => x }, { hostname: HOST });
  const wide: Record<string, number> = {};
  for (let i = 0; i < 70_000; i++) wide[`k${i}`] = i;
  for (const codec of [msgpackCodec, jsonCodec]) {
    await using conn = await Connection.connect(
      { hostname: HOST, port: server.addr.port },
      { codec },
    );
    assert.deepEqual(
      await conn.call("echo", [wide], { timeout: 10_000 }),
      wide,
    );
  }
});

Deno.test("finding 3: a 4 MiB bigint is refused by its length on every path (msgpackr's 0x42, ext 91, the JSON tag), and the connection serves on", async () => {
  await using server = serve({ echo: (x: unknown) => x }, {
    hostname: HOST,
    onError: () => {},
  });
  const port = server.addr.port;
  const size = 4 * 1024 * 1024 - 64; // within the default frame limit
  await using msgpack = await RawPeer.open(port, "msgpack");
  await msgpack.send([
    concat(u8(0x91), extHeader(0x42, size), new Uint8Array(size).fill(0x7f)),
    concat(u8(0x91), extHeader(91, size), new Uint8Array(size).fill(0x39)),
  ]);
  await msgpack.until(2, "two replies");
  const [ext42, ext91] = errorsOf(msgpack);
  assert.equal(
    ext42!.message,
    'Cannot call method "echo": cannot decode params: Cannot decode value: unsupported extension type 66 at byte 1',
  );
  assert.equal(
    ext91!.message,
    `Cannot call method "echo": cannot decode params: Cannot decode value: bigint of ${size} digits exceeds the limit of 4096 digits at byte 1`,
  );
  await using json = await RawPeer.open(port, "json");
  const text = `[{"$zk":"bigint","v":"${"9".repeat(size - 64)}"}]`;
  await json.send([new TextEncoder().encode(text)]);
  await json.until(1, "a reply");
  assert.equal(
    errorsOf(json, jsonCodec)[0]!.message,
    `Cannot call method "echo": cannot decode params: Cannot decode value: bigint of ${
      size - 64
    } digits exceeds the limit of 4096 digits`,
  );
  // Both connections serve on.
  await msgpack.send([msgpackCodec.encode([10n ** 4095n])]);
  await msgpack.until(3, "the bigint at the cap");
  assert.equal(
    msgpackCodec.decode(msgpack.replies[2]!.payload),
    10n ** 4095n,
  );
});
