/**
 * `deno bench bench/codec_bench.ts`: frame header encode/decode and the
 * payload codecs, on the sizes a typical call uses. The `msgpack …` groups
 * compare zkrpc's strict MessagePack decoder with msgpackr's `Unpackr` (the
 * decoder before it, configured as it was) and `@msgpack/msgpack` on a
 * round trip of `["divide", [10, 2]]` and of 4 KiB payloads (the figures are
 * in docs/protocol.md §7.1).
 *
 * @module
 */
import { decode as msgpackDecode } from "@msgpack/msgpack";
import { Unpackr } from "msgpackr/unpack";
import { jsonCodec } from "../src/protocol/codec.ts";
import { msgpackCodec } from "../src/protocol/msgpack_codec.ts";
import {
  encodeFrame,
  FrameDecoder,
  FrameType,
  writeHeader,
} from "../src/protocol/frame.ts";
import { FrameWriter } from "../src/protocol/frame_writer.ts";

const divideParams = [10, 2];
const richParams = [{
  id: 123456789012345678901234567890n,
  at: new Date(0),
  bytes: new Uint8Array(64).fill(7),
  tags: ["a", "b", "c"],
  missing: undefined,
  ratio: NaN,
}];
const bigParams = [{
  rows: Array.from({ length: 1000 }, (_, i) => ({ i, name: `row ${i}` })),
}];
const divideBytes = jsonCodec.encode(divideParams);
const richBytes = jsonCodec.encode(richParams);
const bigBytes = jsonCodec.encode(bigParams);

Deno.bench(
  "jsonCodec.encode [10, 2]",
  { group: "encode", baseline: true },
  () => {
    jsonCodec.encode(divideParams);
  },
);
Deno.bench("jsonCodec.encode tagged object (bigint, Date, bytes)", {
  group: "encode",
}, () => {
  jsonCodec.encode(richParams);
});
Deno.bench("jsonCodec.encode 1,000 rows", { group: "encode" }, () => {
  jsonCodec.encode(bigParams);
});
Deno.bench("JSON.stringify + TextEncoder [10, 2] (reference)", {
  group: "encode",
}, () => {
  new TextEncoder().encode(JSON.stringify(divideParams));
});

Deno.bench(
  "jsonCodec.decode [10, 2]",
  { group: "decode", baseline: true },
  () => {
    jsonCodec.decode(divideBytes);
  },
);
Deno.bench("jsonCodec.decode tagged object", { group: "decode" }, () => {
  jsonCodec.decode(richBytes);
});
Deno.bench("jsonCodec.decode 1,000 rows", { group: "decode" }, () => {
  jsonCodec.decode(bigBytes);
});

// MessagePack: encode (msgpackr, as msgpackCodec does) + decode, by decoder.
const previousUnpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  copyBuffers: false,
  int64AsType: "bigint",
});
const msgpackDecoders: Record<string, (bytes: Uint8Array) => unknown> = {
  "zkrpc strict decoder": (b) => msgpackCodec.decode(b),
  "msgpackr Unpackr (before)": (b) => previousUnpackr.unpack(b),
  "@msgpack/msgpack": (b) => msgpackDecode(b),
};
// The wire hands the decoder a plain Uint8Array view, never a Buffer.
const plain = (b: Uint8Array) =>
  new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const msgpackCases: Record<string, unknown> = {
  '["divide", [10, 2]]': ["divide", [10, 2]],
  "4 KiB bytes": ["echo", [new Uint8Array(4096).fill(7)]],
  "4 KiB of objects": [
    Array.from(
      { length: 64 },
      (_, i) => ({ id: i, name: `user ${i}`, ok: true }),
    ),
  ],
};
for (const [name, value] of Object.entries(msgpackCases)) {
  let first = true;
  for (const [decoder, decode] of Object.entries(msgpackDecoders)) {
    Deno.bench(`msgpack round trip ${name}: ${decoder}`, {
      group: `msgpack ${name}`,
      baseline: first,
    }, () => {
      decode(plain(msgpackCodec.encode(value)));
    });
    first = false;
  }
}

const header = new Uint8Array(9);
Deno.bench("writeHeader", { group: "frame", baseline: true }, () => {
  writeHeader(header, 0, FrameType.Request, 42, 20);
});
Deno.bench("encodeFrame 22 B", { group: "frame" }, () => {
  encodeFrame(FrameType.Request, 42, divideBytes);
});

const batch = (() => {
  const frames: Uint8Array[] = [];
  for (let i = 1; i <= 64; i++) {
    frames.push(encodeFrame(FrameType.Result, i, divideBytes));
  }
  const out = new Uint8Array(frames.reduce((s, f) => s + f.length, 0));
  let o = 0;
  for (const f of frames) {
    out.set(f, o);
    o += f.length;
  }
  return out;
})();
const decoder = new FrameDecoder();
Deno.bench("FrameDecoder: 64 frames from one read (zero-copy path)", {
  group: "frame",
}, () => {
  const space = decoder.writable();
  space.set(batch);
  decoder.commit(batch.length);
  let n = 0;
  while (decoder.next() !== undefined) n++;
  if (n !== 64) throw new Error("bad decode");
});
Deno.bench(
  "FrameDecoder: one 1 MiB frame in 64 KiB chunks",
  { group: "frame" },
  () => {
    const frame = encodeFrame(FrameType.Result, 1, new Uint8Array(1 << 20));
    const d = new FrameDecoder();
    for (let o = 0; o < frame.length; o += 65536) {
      d.push(
        frame.subarray(o, o + 65536),
      );
    }
    if (d.next() === undefined) throw new Error("bad decode");
  },
);

const sink = { write: (p: Uint8Array) => Promise.resolve(p.length) };
Deno.bench(
  "FrameWriter: 64 requests in one batch",
  { group: "frame" },
  async () => {
    const writer = new FrameWriter(sink);
    const prefix = new Uint8Array([6, 100, 105, 118, 105, 100, 101]);
    for (let i = 1; i <= 64; i++) {
      writer.push(
        FrameType.Request,
        i,
        divideBytes,
        prefix,
      );
    }
    await writer.drained();
  },
);

// Why the hot path never allocates a buffer per call: a fresh ArrayBuffer
// costs about as much as a small call, a view of an existing one very little.
const slab = new Uint8Array(64 * 1024);
let kept = 0;
Deno.bench("view of an existing buffer (subarray, 64 B)", {
  group: "allocation",
  baseline: true,
}, () => {
  kept += slab.subarray(128, 192).length;
});
Deno.bench("new Uint8Array(64)", { group: "allocation" }, () => {
  kept += new Uint8Array(64).length;
});
Deno.bench("slice() of 64 B", { group: "allocation" }, () => {
  kept += slab.slice(128, 192).length;
});
Deno.bench("slice() of 4 KiB", { group: "allocation" }, () => {
  kept += slab.slice(128, 128 + 4096).length;
});
