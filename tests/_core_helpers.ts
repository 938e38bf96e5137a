/**
 * Helpers shared by the RPC core tests (protocol, server, connection,
 * hostile peers).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  encodeFrame,
  encodeSettings,
  FrameDecoder,
  FrameType,
  PREFACE,
} from "../src/protocol/frame.ts";
import { jsonCodec, TAG_KEY } from "../src/protocol/codec.ts";
import { denoCommand, lines, stopChild } from "../src/testing/child_process.ts";
import { within } from "./_wait.ts";

export { within };

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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

/** What a default client sends first: its preface and its settings frame. */
export const HELLO: Uint8Array = concat(
  PREFACE,
  encodeFrame(
    FrameType.Settings,
    0,
    encodeSettings({
      maxFrameSize: 4 * 1024 * 1024,
      codecs: ["json"],
      maxInFlight: 0,
    }),
  ),
);

/**
 * A request payload (protocol version 2) without a deadline: header flags 0,
 * the method name, then `params` (already encoded).
 */
export function requestPayload(method: string, params: Uint8Array): Uint8Array {
  const name = new TextEncoder().encode(method);
  return concat(new Uint8Array([0, name.length]), name, params);
}

/** A request frame as a client writes it. */
export function requestFrame(
  id: number,
  method: string,
  params: unknown[],
): Uint8Array {
  return encodeFrame(
    FrameType.Request,
    id,
    requestPayload(method, jsonCodec.encode(params)),
  );
}

/**
 * A raw client's reader: skips the server's preface, then returns frames of
 * a given type (or of any of the given types) one at a time (others are
 * skipped), each read with a deadline.
 */
export function rawFrames(conn: Deno.Conn): {
  next(
    type: FrameType | readonly FrameType[],
  ): Promise<{ id: number; payload: Uint8Array; type: FrameType }>;
  preface(): Promise<void>;
} {
  const decoder = new FrameDecoder();
  const buf = new Uint8Array(65536);
  let prefaceLeft = PREFACE.length;
  const read = async (): Promise<void> => {
    const n = await within(conn.read(buf), 5000, "a frame from the server");
    if (n === null) throw new Error("The server closed the connection");
    const skip = Math.min(prefaceLeft, n);
    prefaceLeft -= skip;
    decoder.push(buf.subarray(skip, n));
  };
  return {
    async preface() {
      while (prefaceLeft > 0) await read();
    },
    async next(type) {
      while (true) {
        const frame = decoder.next();
        if (frame === undefined) {
          await read();
          continue;
        }
        if (
          Array.isArray(type) ? type.includes(frame.type) : frame.type === type
        ) {
          return {
            id: frame.id,
            payload: frame.payload.slice(),
            type: frame.type,
          };
        }
      }
    },
  };
}

/** A child process running tests/fixtures/echo_server.ts. */
export interface ChildServer extends AsyncDisposable {
  port: number;
  child: Deno.ChildProcess;
  /** Resolves when the fixture reports that a `sleep` call started running. */
  sleepStarted(): Promise<void>;
  kill(): Promise<void>;
}

/**
 * Starts a fixture server (tests/fixtures/echo_server.ts by default) as a
 * separate `deno run` process.
 */
export async function startChildServer(
  fixture = "echo_server.ts",
  args: string[] = [],
  allowNet = "127.0.0.1",
): Promise<ChildServer> {
  const child = denoCommand([
    "run",
    `--allow-net=${allowNet}`,
    new URL(`./fixtures/${fixture}`, import.meta.url).pathname,
    ...args,
  ], { stderr: "inherit", timeout: Infinity }).spawn();
  const output = lines(child.stdout);
  const next = async (what: string, ms: number): Promise<string> => {
    const line = await within(output.next(), ms, what);
    if (line.done) throw new Error(`Fixture server exited before ${what}`);
    return line.value;
  };
  let port: number;
  try {
    port = (JSON.parse(
      await next("the fixture server to print its port", 30_000),
    ) as { port: number }).port;
  } catch (error) {
    await stopChild(child, "SIGKILL");
    await output.return(undefined).catch(() => {});
    throw error;
  }
  const sleepStarted = async (): Promise<void> => {
    const line = await next("the fixture server to start a sleep call", 10_000);
    assert.equal(line, '{"started":"sleep"}');
  };
  const kill = async (): Promise<void> => {
    await stopChild(child, "SIGKILL");
    await output.return(undefined).catch(() => {});
  };
  return { port, child, sleepStarted, kill, [Symbol.asyncDispose]: kill };
}

/** A running tests/fixtures/flood.ts. */
export interface Flood extends AsyncDisposable {
  /** How many of its connections the server accepted and refused. */
  result: { accepted: number; refused: number };
  child: Deno.ChildProcess;
}

/**
 * Opens `count` hostile connections from 127.0.0.2 in a child process
 * (modes: `silent`, `ping`, `partial`, comma-separated, used in turn) and
 * resolves once the server answered each; disposing kills them all.
 */
export async function startFlood(
  port: number,
  count: number,
  modes = "silent,ping,partial",
): Promise<Flood> {
  // A default soft limit of 1024 descriptors would stop a 1,100-socket
  // flood short: raise it (up to the hard limit) for the child.
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"',
      "sh",
      Deno.execPath(),
      "run",
      "--allow-net=127.0.0.1,127.0.0.2",
      new URL("./fixtures/flood.ts", import.meta.url).pathname,
      String(port),
      String(count),
      modes,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = lines(child.stdout);
  const kill = async (): Promise<void> => {
    await stopChild(child, "SIGKILL");
    await output.return(undefined).catch(() => {});
  };
  const first = await output.next();
  if (first.done) {
    await kill();
    throw new Error("Flood exited before reporting");
  }
  const result = JSON.parse(first.value);
  return { result, child, [Symbol.asyncDispose]: kill };
}

/**
 * A process's resident memory from /proc/PID/status, in MiB: `rss` now and
 * `peak` (VmHWM, the high-water mark since it started).
 */
export async function memoryOf(
  pid: number,
): Promise<{ rss: number; peak: number }> {
  // Deno asks for --allow-all to read /proc; `cat` needs only --allow-run.
  const { stdout } = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const status = new TextDecoder().decode(stdout);
  const kib = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
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

/**
 * A handler's `ctx.deadline` as an answer can carry it: the instant, or
 * `null` for none (`Infinity`).
 *
 * @param ctx The handler's context.
 * @returns Epoch ms, or `null`.
 */
export function deadlineSeen(ctx: { deadline: number }): number | null {
  return Number.isFinite(ctx.deadline) ? ctx.deadline : null;
}

/**
 * An abort controller whose signal counts its `"abort"` listeners (added
 * minus removed), to check that a wait lets go of a caller's signal.
 */
export function countedSignal(): {
  controller: AbortController;
  listeners: () => number;
} {
  const controller = new AbortController();
  let count = 0;
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    if (args[0] === "abort") count++;
    add(...args);
  }) as typeof add;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    if (args[0] === "abort") count--;
    remove(...args);
  }) as typeof remove;
  return { controller, listeners: () => count };
}
