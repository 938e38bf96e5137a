/**
 * Per-call failures stay per-call: request metadata that is too large
 * (> 8 KiB), malformed, not UTF-8, truncated or uses a reserved `zkrpc-` key
 * fails that call with a specific error; the connection and its other calls
 * go on. Sent by a raw client, since zkrpc's own client refuses such
 * metadata before sending.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serve } from "../src/server/server.ts";
import { withContext } from "../src/server/call_context.ts";
import { encodeFrame, FrameType, RequestFlag } from "../src/protocol/frame.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { MAX_METADATA_SIZE } from "../src/protocol/metadata.ts";
import {
  concat,
  HELLO,
  rawFrames,
  requestFrame,
  writeAll,
} from "./_core_helpers.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";
const utf8 = new TextEncoder();

/** One metadata entry: u8 key length, key, u16 value length, value. */
function entry(key: string, value: Uint8Array): Uint8Array {
  const k = utf8.encode(key);
  return concat(
    new Uint8Array([k.length]),
    k,
    new Uint8Array([value.length >>> 8, value.length & 0xff]),
    value,
  );
}

/**
 * A request frame with this metadata section (`declared` overrides the u16
 * length in front of it, for a truncated one).
 */
function requestWithMetadata(
  id: number,
  method: string,
  metadata: Uint8Array,
  declared = metadata.length,
): Uint8Array {
  const name = utf8.encode(method);
  return encodeFrame(
    FrameType.Request,
    id,
    concat(
      new Uint8Array([RequestFlag.Metadata, declared >>> 8, declared & 0xff]),
      metadata,
      new Uint8Array([name.length]),
      name,
      jsonCodec.encode([]),
    ),
  );
}

/** A value that fills an entry with key "k" to `size` bytes in all. */
function filler(size: number): Uint8Array {
  return new Uint8Array(size - 4).fill(0x61);
}

Deno.test("bad request metadata fails only its call: exactly 8 KiB is served, one byte more, non-UTF-8, malformed, truncated or reserved keys are refused", async () => {
  const release = Promise.withResolvers<void>();
  await using server = serve({
    size: withContext((ctx) =>
      Object.entries(ctx.metadata).reduce(
        (n, [k, v]) => n + k.length + utf8.encode(v).length,
        0,
      )
    ),
    async slow() {
      await release.promise;
      return "slow done";
    },
  }, { hostname: HOST, onError: () => {} });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  await writeAll(conn, HELLO);
  await frames.preface();

  // A call in flight all along: it must survive every refusal below.
  await writeAll(conn, requestFrame(1, "slow", []));
  const secret = new Uint8Array([0xc3, 0x28, 0x53, 0x45, 0x43, 0x52, 0x45]);
  const cases: [number, Uint8Array, RegExp][] = [
    [
      3,
      requestWithMetadata(3, "size", entry("k", filler(MAX_METADATA_SIZE + 1))),
      /^Cannot call method "size": metadata of 8193 bytes exceeds the limit of 8192 bytes \(request not run\)$/,
    ],
    [
      4,
      requestWithMetadata(4, "size", entry("k", secret)),
      /^Cannot call method "size": metadata value at byte \d+ is not UTF-8 \(request not run\)$/,
    ],
    [
      5,
      requestWithMetadata(5, "size", entry("BAD KEY", utf8.encode("v"))),
      /^Cannot call method "size": malformed metadata key at byte \d+ \(1-64 of a-z, 0-9, "-", "_", "\."\) \(request not run\)$/,
    ],
    [
      6,
      requestWithMetadata(6, "size", entry("zkrpc-deadline", utf8.encode("1"))),
      /^Cannot call method "size": metadata keys starting with "zkrpc-" are reserved/,
    ],
    [
      7,
      requestWithMetadata(7, "size", entry("k", utf8.encode("v")), 5000),
      /^Cannot read request 7: truncated metadata \(request not run\)$/,
    ],
    [
      8,
      requestWithMetadata(8, "size", entry("k", utf8.encode("v")).slice(0, 4)),
      /^Cannot call method "size": truncated metadata value at byte \d+ \(request not run\)$/,
    ],
  ];
  // Exactly the limit is served.
  await writeAll(
    conn,
    requestWithMetadata(2, "size", entry("k", filler(MAX_METADATA_SIZE))),
  );
  const ok = await frames.next([FrameType.Result, FrameType.Error]);
  assert.equal(ok.id, 2);
  assert.equal(ok.type, FrameType.Result, new TextDecoder().decode(ok.payload));
  assert.equal(jsonCodec.decode(ok.payload), MAX_METADATA_SIZE - 3);

  for (const [id, frame, message] of cases) {
    await writeAll(conn, frame);
    const answer = await frames.next([FrameType.Result, FrameType.Error]);
    assert.equal(answer.id, id, "the answer is for that call only");
    assert.equal(answer.type, FrameType.Error);
    const error = jsonCodec.decode(answer.payload) as {
      name: string;
      message: string;
    };
    assert.equal(error.name, "ProtocolError");
    assert.match(error.message, message);
    assert.ok(!error.message.includes("SECRE"), "no peer bytes echoed");
  }
  // The connection still serves new calls and finishes the one in flight.
  await writeAll(
    conn,
    requestWithMetadata(9, "size", entry("tenant", utf8.encode("acme"))),
  );
  const after = await frames.next([FrameType.Result, FrameType.Error]);
  assert.deepEqual([after.id, after.type], [9, FrameType.Result]);
  assert.equal(jsonCodec.decode(after.payload), 10);
  release.resolve();
  const slow = await within(
    frames.next([FrameType.Result, FrameType.Error]),
    5000,
    "the slow call",
  );
  assert.deepEqual([slow.id, slow.type], [1, FrameType.Result]);
  assert.equal(jsonCodec.decode(slow.payload), "slow done");
  assert.equal(server.connections, 1, "the connection is still open");
});
