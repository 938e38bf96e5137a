import assert from "node:assert/strict";
import {
  type RpcServer,
  serve,
  type ServeOptions,
} from "../src/server/server.ts";
import { Connection } from "../src/client/connection.ts";
import { MethodNotFoundError, ProtocolError } from "../src/errors.ts";
import { encodeFrame, FrameDecoder, FrameType } from "../src/protocol/frame.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import {
  concat,
  HELLO,
  PREFACE,
  readToEnd,
  within,
  writeAll,
} from "./_core_helpers.ts";
import { waitFor } from "./_wait.ts";

const HOST = "127.0.0.1";

class Handlers {
  static divide(a: number, b: number): number {
    return a / b;
  }
}

interface Harness extends AsyncDisposable {
  server: RpcServer;
  errors: Error[];
  raw(): Promise<Deno.TcpConn>;
  assertStillServes(): Promise<void>;
}

function start(options: ServeOptions = {}): Harness {
  const errors: Error[] = [];
  const server = serve(Handlers, {
    hostname: HOST,
    onError: (e) => void errors.push(e),
    ...options,
  });
  return {
    server,
    errors,
    raw: () => Deno.connect({ hostname: HOST, port: server.addr.port }),
    async assertStillServes() {
      await using conn = await Connection.connect({
        hostname: HOST,
        port: server.addr.port,
      });
      assert.equal(await conn.call("divide", [10, 4], { timeout: 2000 }), 2.5);
    },
    [Symbol.asyncDispose]: () => server.close(),
  };
}

function errorFrames(
  bytes: Uint8Array,
): Array<{ id: number; message: string }> {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const out: Array<{ id: number; message: string }> = [];
  for (let f = decoder.next(); f; f = decoder.next()) {
    if (f.type === FrameType.Error) {
      out.push({
        id: f.id,
        message: (jsonCodec.decode(f.payload) as { message: string }).message,
      });
    }
  }
  return out;
}

Deno.test("an HTTP request instead of the preface gets a 400 and a closed connection", async () => {
  await using h = start();
  const conn = await h.raw();
  await writeAll(
    conn,
    new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
  );
  const reply = new TextDecoder().decode(
    await within(readToEnd(conn), 2000, "refusal"),
  );
  conn.close();
  assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(reply, /This port speaks zkrpc, not HTTP/);
  assert.match(
    h.errors[0]!.message,
    /HTTP request received instead of the zkrpc preface/,
  );
  await h.assertStillServes();
});

Deno.test("random bytes instead of the preface are refused with a protocol error frame", async () => {
  await using h = start();
  const conn = await h.raw();
  const junk = crypto.getRandomValues(new Uint8Array(4096));
  junk[0] = 0x00; // never the magic's first byte
  await writeAll(conn, junk).catch(() => {});
  const reply = await within(readToEnd(conn), 2000, "refusal");
  conn.close();
  assert.deepEqual([...reply.subarray(0, 9)], [...PREFACE]);
  const frames = errorFrames(reply.subarray(9));
  assert.equal(frames[0]?.id, 0);
  assert.match(frames[0]!.message, /bad preface: not a zkrpc client/);
  assert.ok(h.errors[0] instanceof ProtocolError);
  await h.assertStillServes();
});

Deno.test("a wrong protocol version is refused with a clear message", async () => {
  await using h = start();
  const conn = await h.raw();
  const v9 = PREFACE.slice();
  v9[8] = 9;
  await writeAll(conn, v9);
  const reply = await within(readToEnd(conn), 2000, "refusal");
  conn.close();
  assert.match(
    errorFrames(reply.subarray(9))[0]!.message,
    /unsupported protocol version 9: this server speaks version 2/,
  );
  await h.assertStillServes();
});

Deno.test("an oversize length prefix (0xFFFFFFFF) closes that connection without allocating", async () => {
  await using h = start({ maxFrameSize: 1024 * 1024 });
  const conn = await h.raw();
  await writeAll(
    conn,
    concat(HELLO, new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1])),
  );
  const reply = await within(readToEnd(conn), 2000, "close");
  conn.close();
  assert.match(
    errorFrames(reply.subarray(9))[0]!.message,
    /length 4294967295 exceeds the limit of 1048576 bytes/,
  );
  assert.ok(h.errors.some((e) => /exceeds the limit/.test(e.message)));
  await h.assertStillServes();
});

Deno.test("a truncated frame then silence is closed by the idle timeout", async () => {
  await using h = start({ idleTimeout: 100 });
  const conn = await h.raw();
  const frame = encodeFrame(FrameType.Request, 1, new Uint8Array(100));
  await writeAll(conn, concat(HELLO, frame.subarray(0, 40)));
  const t0 = performance.now();
  await within(readToEnd(conn), 3000, "idle close");
  conn.close();
  // clock-ok: a lower bound: timers never fire early, load only lengthens it
  assert.ok(performance.now() - t0 >= 50);
  assert.match(
    h.errors[0]!.message,
    /no call for 100 ms \(idle timeout; pings do not count\)/,
  );
  await h.assertStillServes();
});

Deno.test("a frame trickled a byte at a time is closed by the frame timeout, not kept alive by each byte", async () => {
  await using h = start({ idleTimeout: 10_000, frameTimeout: 200 });
  const conn = await h.raw();
  const frame = encodeFrame(FrameType.Request, 1, new Uint8Array(100));
  await writeAll(conn, concat(HELLO, frame.subarray(0, 10)));
  const closed = readToEnd(conn);
  // One byte every 30 ms keeps the connection from ever being idle.
  let sent = 10;
  let open = true;
  closed.then(() => open = false);
  const started = performance.now();
  while (open && sent < frame.length && performance.now() - started < 3000) {
    // sleep-ok: trickles a byte every 30 ms: the pace is the attack
    await new Promise((resolve) => setTimeout(resolve, 30));
    await conn.write(frame.subarray(sent, sent + 1)).catch(() => open = false);
    sent++;
  }
  const reply = await within(closed, 3000, "frame-timeout close");
  conn.close();
  assert.ok(sent < frame.length, `the whole frame arrived (${sent} bytes)`);
  assert.match(
    h.errors[0]!.message,
    /incomplete frame for \d+ ms \(frame timeout 200 ms\)/,
  );
  assert.match(
    errorFrames(reply.subarray(PREFACE.length))[0]!.message,
    /frame timeout/,
  );
  await h.assertStillServes();
});

Deno.test("a partial preface then silence is closed by the handshake timeout", async () => {
  await using h = start({ handshakeTimeout: 100 });
  const conn = await h.raw();
  await writeAll(conn, PREFACE.subarray(0, 4));
  await within(readToEnd(conn), 3000, "handshake close");
  conn.close();
  assert.match(
    h.errors[0]!.message,
    /no valid preface within 100 ms \(handshake timeout\)/,
  );
  await h.assertStillServes();
});

Deno.test("a frame with an unknown type closes that connection", async () => {
  await using h = start();
  await using good = await Connection.connect({
    hostname: HOST,
    port: h.server.addr.port,
  });
  const conn = await h.raw();
  const bad = encodeFrame(FrameType.Ping, 1);
  bad[4] = 0x42;
  await writeAll(conn, concat(HELLO, bad));
  const reply = await within(readToEnd(conn), 2000, "close");
  conn.close();
  assert.match(
    errorFrames(reply.subarray(9))[0]!.message,
    /unknown frame type 66/,
  );
  // The other connection was not affected.
  assert.equal(await good.call("divide", [1, 2]), 0.5);
  await h.assertStillServes();
});

Deno.test("a server-only frame type from a client closes that connection", async () => {
  await using h = start();
  const conn = await h.raw();
  await writeAll(
    conn,
    concat(HELLO, encodeFrame(FrameType.Result, 1, jsonCodec.encode(1))),
  );
  const reply = await within(readToEnd(conn), 2000, "close");
  conn.close();
  assert.match(
    errorFrames(reply.subarray(9))[0]!.message,
    /frame type 2 is not sent by clients/,
  );
  await h.assertStillServes();
});

Deno.test("a request with a malformed payload gets an error reply and the connection survives", async () => {
  await using h = start();
  const conn = await h.raw();
  const method = new TextEncoder().encode("\x00\x06divide");
  await writeAll(
    conn,
    concat(
      HELLO,
      encodeFrame(
        FrameType.Request,
        7,
        concat(method, new TextEncoder().encode("{not json")),
      ),
      encodeFrame(
        FrameType.Request,
        8,
        concat(method, jsonCodec.encode({ not: "array" })),
      ),
      encodeFrame(
        FrameType.Request,
        9,
        concat(method, jsonCodec.encode([6, 3])),
      ),
    ),
  );
  let all: Uint8Array = new Uint8Array(0);
  const got = new Map<number, { type: number; value: unknown }>();
  const buf = new Uint8Array(4096);
  while (got.size < 3) {
    const n = await within(conn.read(buf), 2000, "replies");
    if (n === null) break;
    all = concat(all, buf.subarray(0, n));
    if (all.length < 9) continue;
    const decoder = new FrameDecoder();
    decoder.push(all.subarray(9));
    for (let f = decoder.next(); f; f = decoder.next()) {
      if (f.type === FrameType.Settings) continue;
      got.set(f.id, { type: f.type, value: jsonCodec.decode(f.payload) });
    }
  }
  conn.close();
  assert.equal(got.get(7)?.type, FrameType.Error);
  assert.match(
    (got.get(7)!.value as { message: string }).message,
    /cannot decode params/,
  );
  assert.match(
    (got.get(8)!.value as { message: string }).message,
    /params must be an array/,
  );
  assert.deepEqual(got.get(9), { type: FrameType.Result, value: 2 });
  await h.assertStillServes();
});

Deno.test("calls to constructor, __proto__ and toString are method not found", async () => {
  await using h = start();
  await using conn = await Connection.connect({
    hostname: HOST,
    port: h.server.addr.port,
  });
  for (
    const name of [
      "constructor",
      "__proto__",
      "toString",
      "hasOwnProperty",
      "prototype",
    ]
  ) {
    await assert.rejects(
      conn.call(name, []),
      (e: unknown) => e instanceof MethodNotFoundError && e.method === name,
    );
  }
  assert.equal(await conn.call("divide", [3, 3]), 1);
  await h.assertStillServes();
});

Deno.test("a client that disconnects mid-call does not disturb the server", async () => {
  await using h = start();
  const conn = await h.raw();
  const method = new TextEncoder().encode("\x00\x06divide");
  const frame = encodeFrame(
    FrameType.Request,
    1,
    concat(method, jsonCodec.encode([1, 1])),
  );
  await writeAll(conn, concat(HELLO, frame.subarray(0, 12)));
  conn.close();
  await h.assertStillServes();
  assert.equal(h.errors.length, 0);
});

Deno.test("a preface and a request trickled one byte at a time are still served", async () => {
  await using h = start();
  const conn = await h.raw();
  const method = new TextEncoder().encode("\x00\x06divide");
  const bytes = concat(
    HELLO,
    encodeFrame(FrameType.Request, 5, concat(method, jsonCodec.encode([8, 2]))),
  );
  for (let i = 0; i < bytes.length; i++) {
    await writeAll(conn, bytes.subarray(i, i + 1));
    // sleep-ok: one byte per write, in separate segments: the pace is the input
    await new Promise((r) => setTimeout(r, 1));
  }
  let all: Uint8Array = new Uint8Array(0);
  const buf = new Uint8Array(1024);
  let result: unknown;
  while (result === undefined) {
    const n = await within(conn.read(buf), 2000, "reply");
    if (n === null) break;
    all = concat(all, buf.subarray(0, n));
    if (all.length <= 9) continue;
    const decoder = new FrameDecoder();
    decoder.push(all.subarray(9));
    let f = decoder.next();
    if (f?.type === FrameType.Settings) f = decoder.next();
    if (f) result = [f.type, f.id, jsonCodec.decode(f.payload)];
  }
  conn.close();
  assert.deepEqual(result, [FrameType.Result, 5, 4]);
  assert.equal(h.errors.length, 0);
});

Deno.test("silent connections filling maxConnections are reaped by the handshake timeout", async () => {
  await using h = start({ maxConnections: 10, handshakeTimeout: 150 });
  const silent = await Promise.all(Array.from({ length: 10 }, () => h.raw()));
  await waitFor(
    () => h.server.connections === 10,
    "the server to accept the silent connections",
  );
  // Full: a good client is turned away with goaway, not left hanging.
  const refused = await Connection.connect({
    hostname: HOST,
    port: h.server.addr.port,
  })
    .catch((e) => e);
  if (refused instanceof Connection) {
    await within(refused.finished, 2000, "refused connection closes");
  }
  // The silent ones are closed by the handshake timeout; then the server serves again.
  await Promise.all(silent.map((c) => within(readToEnd(c), 3000, "reaped")));
  silent.forEach((c) => c.close());
  await h.assertStillServes();
  assert.ok(
    h.errors.some((e) => /limit of 10 connections reached/.test(e.message)),
  );
  assert.ok(h.errors.some((e) => /handshake timeout/.test(e.message)));
});

Deno.test("a client that never reads its responses is throttled by TCP, not buffered without bound", async () => {
  await using h = start();
  const conn = await h.raw();
  const method = new TextEncoder().encode("\x00\x06divide");
  // 256 requests per write; each response is ~20 bytes.
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 256; i++) {
    frames.push(
      encodeFrame(
        FrameType.Request,
        i + 1,
        concat(method, jsonCodec.encode([i, 1])),
      ),
    );
  }
  const chunk = concat(...frames);
  await writeAll(conn, HELLO);
  let written = 0;
  let stalled = false;
  let pendingWrite: Promise<unknown> = Promise.resolve();
  while (written < 512 * 1024 * 1024) {
    pendingWrite = writeAll(conn, chunk).catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = await Promise.race([
      pendingWrite.then(() => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), 500)),
    ]);
    clearTimeout(timer);
    if (!done) {
      stalled = true;
      break;
    }
    written += chunk.length;
  }
  assert.ok(
    stalled,
    `server kept reading ${written} bytes without its responses being read`,
  );
  // Reading the responses releases it: the connection is still healthy.
  const reader = readToEnd(conn);
  await within(pendingWrite, 5000, "write completes once responses are read");
  conn.closeWrite();
  await within(reader, 10_000, "responses drained");
  conn.close();
  await h.assertStillServes();
});

Deno.test("a method name that is not valid UTF-8 closes that connection", async () => {
  await using h = start();
  const conn = await h.raw();
  const payload = concat(
    new Uint8Array([0, 2, 0xff, 0xfe]),
    jsonCodec.encode([]),
  );
  await writeAll(
    conn,
    concat(HELLO, encodeFrame(FrameType.Request, 1, payload)),
  );
  const reply = await within(readToEnd(conn), 2000, "close");
  conn.close();
  assert.match(
    errorFrames(reply.subarray(9))[0]!.message,
    /method name is not valid UTF-8/,
  );
  await h.assertStillServes();
});

Deno.test("fuzzed frames after a valid preface never disturb the server", async () => {
  await using h = start({ idleTimeout: 200 });
  const types = [0, 1, 1, 1, 3, 4, 5, 6, 7, 8, 255];
  for (let round = 0; round < 40; round++) {
    const conn = await h.raw();
    const parts: Uint8Array[] = [HELLO];
    for (let f = 0; f < 5; f++) {
      const body = crypto.getRandomValues(
        new Uint8Array(Math.floor(Math.random() * 40)),
      );
      const frame = encodeFrame(
        types[Math.floor(Math.random() * types.length)]! as FrameType,
        Math.floor(Math.random() * 4),
        body,
      );
      if (Math.random() < 0.2) frame[0] = Math.floor(Math.random() * 256); // corrupt length
      parts.push(frame);
    }
    await writeAll(conn, concat(...parts)).catch(() => {});
    await within(readToEnd(conn), 3000, `round ${round} ends`);
    conn.close();
  }
  await h.assertStillServes();
});

Deno.test("a request with a million-digit bigint is refused by the codec limit, not parsed", async () => {
  await using h = start();
  await using conn = await Connection.connect({
    hostname: HOST,
    port: h.server.addr.port,
  });
  const huge = 10n ** 1_000_000n;
  // The client's own codec encodes it; the server refuses to parse it.
  await assert.rejects(
    conn.call("divide", [huge, 1n]),
    (e: unknown) =>
      e instanceof ProtocolError &&
      /bigint of 1000001 digits exceeds the limit of 4096 digits/.test(
        e.message,
      ),
  );
  assert.equal(await conn.call("divide", [9, 3]), 3);
  await h.assertStillServes();
});
