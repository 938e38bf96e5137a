/**
 * `deno run -A bench/codec_compare.ts [--json]`: the payload codecs side by
 * side: zkrpc's `jsonCodec`, `msgpackCodec` (msgpackr's encoder, zkrpc's
 * strict decoder) and, for the choice of library, `npm:@msgpack/msgpack`
 * (same value shapes, its defaults). Prints
 * µs per encode+decode round trip of a `["divide", [10, 2]]` call and of
 * `["echo", [Uint8Array]]` payloads from 64 B to 256 KiB.
 *
 * @module
 */
import { decode, encode } from "@msgpack/msgpack";
import { jsonCodec } from "../src/protocol/codec.ts";
import { msgpackCodec } from "../src/protocol/msgpack_codec.ts";

/** One measured case. */
export interface CodecRow {
  /** The value measured. */
  value: string;
  /** µs per round trip, by codec. */
  us: Record<string, number>;
}

const codecs: Record<string, (v: unknown) => unknown> = {
  json: (v) => jsonCodec.decode(plain(jsonCodec.encode(v))),
  "msgpack (zkrpc)": (v) => msgpackCodec.decode(plain(msgpackCodec.encode(v))),
  "@msgpack/msgpack": (v) => decode(encode(v)),
};

// The wire hands the decoder a plain Uint8Array view, never a Buffer.
function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function time(f: (v: unknown) => unknown, value: unknown, budgetMs: number) {
  for (let i = 0; i < 200; i++) f(value);
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < budgetMs) {
    for (let i = 0; i < 50; i++) f(value);
    n += 50;
    now = performance.now();
  }
  return ((now - start) * 1000) / n;
}

/**
 * Measures every codec on every case.
 *
 * @param budgetMs Time per codec and case.
 * @returns One row per case.
 *
 * @example Measure briefly
 * ```ts ignore
 * import { compareCodecs } from "./codec_compare.ts";
 * console.table(compareCodecs(50));
 * ```
 */
export function compareCodecs(budgetMs = 300): CodecRow[] {
  const cases: Array<[string, unknown]> = [
    ['["divide", [10, 2]]', ["divide", [10, 2]]],
  ];
  for (const size of [64, 1024, 4096, 65536, 262144]) {
    cases.push([`echo ${size} B`, ["echo", [new Uint8Array(size).fill(7)]]]);
  }
  return cases.map(([name, value]) => {
    const us: Record<string, number> = {};
    for (const [codec, f] of Object.entries(codecs)) {
      us[codec] = Math.round(time(f, value, budgetMs) * 100) / 100;
    }
    return { value: name, us };
  });
}

if (import.meta.main) {
  const rows = compareCodecs();
  if (Deno.args.includes("--json")) console.log(JSON.stringify(rows));
  else {
    console.table(
      Object.fromEntries(rows.map((r) => [r.value, r.us])),
    );
  }
}
