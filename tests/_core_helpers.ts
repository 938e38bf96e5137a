/**
 * Helpers shared by the RPC core tests (protocol, server, connection,
 * hostile peers).
 *
 * @module
 */
import { PREFACE } from "../src/protocol/frame.ts";
import { TAG_KEY } from "../src/protocol/codec.ts";

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects if `promise` does not settle within `ms` (the timer is cleared). */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what = "operation",
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Timed out after ${ms} ms: ${what}`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads from `conn` until the peer closes; returns everything read. */
export async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch {
      break; // reset by peer
    }
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  const total = chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Writes all of `bytes`. */
export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
): Promise<void> {
  let o = 0;
  while (o < bytes.length) o += await conn.write(bytes.subarray(o));
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export { PREFACE };

/** A child process running tests/fixtures/echo_server.ts. */
export interface ChildServer extends AsyncDisposable {
  port: number;
  child: Deno.ChildProcess;
  kill(): Promise<void>;
}

/** Starts tests/fixtures/echo_server.ts as a separate `deno run` process. */
export async function startChildServer(): Promise<ChildServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      new URL("./fixtures/echo_server.ts", import.meta.url).pathname,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("Fixture server exited before printing its port");
    text += value;
  }
  const port =
    (JSON.parse(text.slice(0, text.indexOf("\n"))) as { port: number })
      .port;
  let killed = false;
  const kill = async (): Promise<void> => {
    if (!killed) {
      killed = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    await child.status;
    await reader.cancel().catch(() => {});
  };
  return { port, child, kill, [Symbol.asyncDispose]: kill };
}

/** Values the JSON codec promises to round-trip. */
export const SUPPORTED_VALUES: Record<string, unknown> = {
  null: null,
  true: true,
  false: false,
  zero: 0,
  "negative zero": -0,
  integer: 42,
  float: -3.25,
  "max safe integer": Number.MAX_SAFE_INTEGER,
  NaN: NaN,
  Infinity: Infinity,
  "-Infinity": -Infinity,
  "empty string": "",
  "unicode string": "héllo 🌍 \u0000 \u2028",
  undefined: undefined,
  bigint: 123456789012345678901234567890n,
  "negative bigint": -5n,
  Uint8Array: new Uint8Array([0, 1, 254, 255]),
  "empty Uint8Array": new Uint8Array(0),
  Date: new Date("2026-11-26T07:00:00.123Z"),
  "invalid Date": new Date(NaN),
  array: [1, "two", [3], { four: 4 }],
  "sparse-ish array with undefined": [undefined, 1, undefined],
  "nested object": {
    a: { b: { c: [1n, new Date(0), new Uint8Array([9]), undefined, NaN] } },
  },
  "object with undefined property": { present: 1, missing: undefined },
  "object using the reserved tag key": { [TAG_KEY]: "bytes", v: "AAAA" },
  "null-prototype object": Object.assign(Object.create(null), { x: 1 }),
  "object with __proto__ key": JSON.parse('{"__proto__": {"polluted": true}}'),
};

/** A loopback port with nothing listening on it (connects are refused). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
