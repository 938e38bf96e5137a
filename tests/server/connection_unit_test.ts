/**
 * One server connection (`src/server/_server_connection.ts`) driven frame by
 * frame by a scripted client on 127.0.0.1 against an in-process server: the
 * drain's ping/pong barrier, the in-flight limit counting running handlers
 * (cancelled ones included) at its boundary and one past, cancel, pings at
 * `maxPingsPerMinute` and one past, the handshake refusals and the protocol
 * violations that close the connection, and the per-call refusals that do
 * not. Every read has a deadline (`rawFrames`).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { RpcServer } from "../../src/server/server.ts";
import { withContext } from "../../src/server/call_context.ts";
import type { CallContext } from "../../src/server/call_context.ts";
import {
  encodeFrame,
  encodeSettings,
  FrameType,
  PREFACE,
  PROTOCOL_VERSION,
} from "../../src/protocol/frame.ts";
import { jsonCodec } from "../../src/protocol/codec.ts";
import {
  concat,
  HELLO,
  rawFrames,
  requestFrame,
  requestPayload,
  writeAll,
} from "../_core_helpers.ts";
import { waitFor, within } from "../_wait.ts";
import { requestWith, serveBounded, untilAborted } from "./_helpers.ts";

const HOST = "127.0.0.1";
const utf8 = new TextEncoder();
const text = new TextDecoder();
const ANY = [
  FrameType.Result,
  FrameType.Error,
  FrameType.Ping,
  FrameType.Pong,
  FrameType.Goaway,
  FrameType.Settings,
] as const;

/** A scripted client: connected, preface and settings sent and read. */
async function client(server: RpcServer, hello = HELLO) {
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  await writeAll(conn, hello);
  await frames.preface();
  await frames.next(FrameType.Settings);
  return {
    conn,
    frames,
    send: (...parts: Uint8Array[]) => writeAll(conn, concat(...parts)),
    /** The next answer (result or error) with its payload decoded. */
    async answer() {
      const f = await frames.next([FrameType.Result, FrameType.Error]);
      return {
        id: f.id,
        type: f.type,
        body: jsonCodec.decode(f.payload) as Record<string, unknown>,
      };
    },
    /** Resolves when the server closed the connection. */
    async closed() {
      while (true) {
        try {
          await frames.next([...ANY]);
        } catch (error) {
          assert.match(String(error), /closed the connection/);
          return;
        }
      }
    },
    [Symbol.dispose]() {
      try {
        conn.close();
      } catch {
        // closed already
      }
    },
  };
}

function quiet(errors: Error[] = []): (error: Error) => void {
  return (error) => void errors.push(error);
}

/**
 * Resolves `gate` when disposed: declared after the server, it lets a held
 * handler settle before the server closes, also when an assertion failed.
 */
function releasing(gate: PromiseWithResolvers<void>): Disposable {
  return { [Symbol.dispose]: () => gate.resolve() };
}

const cancel = (id: number) => encodeFrame(FrameType.Cancel, id);
const pong = (id: number) => encodeFrame(FrameType.Pong, id);

Deno.test("connection: a drain does not finish before the pong of the ping sent after goaway, whatever else completes", async () => {
  const release = Promise.withResolvers<void>();
  const started = Promise.withResolvers<void>();
  await using server = serveBounded({
    slow() {
      started.resolve();
      return release.promise.then(() => "done");
    },
  }, { hostname: HOST, onError: quiet() });
  using c = await client(server);
  await c.send(requestFrame(1, "slow", []));
  await within(started.promise, 5000, "the call to start");
  const closing = server.close({ timeout: 60_000 });
  const goaway = await c.frames.next(FrameType.Goaway);
  assert.equal(text.decode(goaway.payload), "Server is closing");
  const ping = await c.frames.next(FrameType.Ping);
  assert.ok(ping.id > 0, "the drain ping has a non-zero id");
  // The call in flight completes: the drain still waits for the pong.
  release.resolve();
  const done = await c.answer();
  assert.deepEqual([done.id, done.type, done.body], [
    1,
    FrameType.Result,
    "done",
  ]);
  // A pong of another id is not the barrier's.
  await c.send(pong(ping.id ^ 1), requestFrame(2, "zkrpc.health", []));
  const health = await c.answer();
  assert.deepEqual([health.id, health.body], [2, { status: "not-serving" }]);
  assert.equal(server.connections, 1, "still open before the pong");
  // The pong ends the drain: the server closes the connection.
  await c.send(pong(ping.id));
  await c.closed();
  await within(closing, 5000, "close() once the drain is over");
});

Deno.test("connection: a drain with nothing in flight ends on the pong alone", async () => {
  await using server = serveBounded({ ok: () => "ok" }, {
    hostname: HOST,
    onError: quiet(),
  });
  using c = await client(server);
  await c.send(requestFrame(1, "ok", []));
  assert.equal((await c.answer()).body, "ok");
  const closing = server.close({ timeout: 60_000 });
  await c.frames.next(FrameType.Goaway);
  const ping = await c.frames.next(FrameType.Ping);
  // Still answering zkrpc's own methods until the pong.
  await c.send(requestFrame(2, "zkrpc.health", []));
  assert.deepEqual((await c.answer()).body, { status: "not-serving" });
  await c.send(pong(ping.id));
  await c.closed();
  await within(closing, 5000, "close()");
});

Deno.test("connection: the in-flight limit counts running handlers, cancelled ones included: exactly the limit runs, one more is refused, not run", async () => {
  let started = 0;
  const gate = Promise.withResolvers<void>();
  await using server = serveBounded({
    async stubborn(): Promise<string> {
      started++;
      await gate.promise; // ignores cancellation
      return "late";
    },
    ok: () => "ok",
  }, { hostname: HOST, maxInFlightPerConnection: 2, onError: quiet() });
  using _gate = releasing(gate);
  using c = await client(server);
  // Two run (the limit), both cancelled: their handlers still run.
  await c.send(
    requestFrame(1, "stubborn", []),
    requestFrame(2, "stubborn", []),
    cancel(1),
    cancel(2),
    requestFrame(3, "stubborn", []),
    requestFrame(4, "ok", []),
  );
  // The first answer is the refusal of 3 (a server that ran 3 would answer
  // 4 first): the test fails at once, it never waits on the handler.
  const refused = await c.answer();
  assert.deepEqual([refused.id, refused.type], [3, FrameType.Error]);
  assert.equal(refused.body.name, "ResourceExhaustedError");
  assert.equal(
    refused.body.message,
    'Cannot call method "stubborn": 2 calls are already running on this connection (request not run)',
  );
  assert.deepEqual(refused.body.data, { ran: false });
  const four = await c.answer();
  assert.deepEqual([four.id, four.body.name], [4, "ResourceExhaustedError"]);
  assert.equal(started, 2);
  // Once the handlers settle, their slots are free (cancelled: no answer).
  gate.resolve();
  const answered: number[] = [];
  await waitFor(async () => {
    await c.send(requestFrame(5, "ok", []));
    const a = await c.answer();
    answered.push(a.id);
    return a.type === FrameType.Result;
  }, "a slot to be free again");
  assert.equal(started, 2);
  assert.ok(answered.every((id) => id === 5), `answers: ${answered}`);
});

Deno.test("connection: one below the in-flight limit still runs a call", async () => {
  const gate = Promise.withResolvers<void>();
  await using server = serveBounded({
    wait: () => gate.promise.then(() => "w"),
    ok: () => "ok",
  }, { hostname: HOST, maxInFlightPerConnection: 3, onError: quiet() });
  using _gate = releasing(gate);
  using c = await client(server);
  await c.send(
    requestFrame(1, "wait", []),
    requestFrame(2, "wait", []),
    requestFrame(3, "ok", []),
  );
  const ok = await c.answer();
  assert.deepEqual([ok.id, ok.type, ok.body], [3, FrameType.Result, "ok"]);
  gate.resolve();
  const ids = [(await c.answer()).id, (await c.answer()).id].sort();
  assert.deepEqual(ids, [1, 2]);
});

Deno.test("connection: cancel aborts the handler's signal with CancelledError and sends no answer; an unknown id is ignored", async () => {
  const listen = untilAborted();
  await using server = serveBounded(
    { listen: listen.handler, ok: () => "ok" },
    {
      hostname: HOST,
      onError: quiet(),
    },
  );
  using c = await client(server);
  await c.send(requestFrame(1, "listen", []), cancel(99), cancel(1));
  const reason = await within(listen.aborted, 5000, "the abort") as Error;
  assert.equal(reason.name, "CancelledError");
  assert.equal(
    reason.message,
    'Cannot call method "listen": cancelled by the client',
  );
  await c.send(requestFrame(2, "ok", []));
  const next = await c.answer();
  assert.deepEqual([next.id, next.body], [2, "ok"], "no answer for call 1");
});

Deno.test("connection: pings are answered with the same id and payload, exactly maxPingsPerMinute of them; one more gets goaway and a close", async () => {
  const errors: Error[] = [];
  await using server = serveBounded({ ok: () => "ok" }, {
    hostname: HOST,
    maxPingsPerMinute: 3,
    onError: quiet(errors),
  });
  using c = await client(server);
  for (let i = 1; i <= 3; i++) {
    await c.send(encodeFrame(FrameType.Ping, 40 + i, new Uint8Array([i, 7])));
    const p = await c.frames.next([FrameType.Pong, FrameType.Goaway]);
    assert.deepEqual([p.type, p.id, [...p.payload]], [FrameType.Pong, 40 + i, [
      i,
      7,
    ]]);
  }
  await c.send(encodeFrame(FrameType.Ping, 44));
  const goaway = await c.frames.next([FrameType.Pong, FrameType.Goaway]);
  assert.equal(goaway.type, FrameType.Goaway);
  assert.equal(text.decode(goaway.payload), "Too many pings");
  await c.closed();
  assert.ok(
    errors.some((e) =>
      /closed: more than 3 pings in a minute \(too many pings\)$/.test(
        e.message,
      )
    ),
    errors.map((e) => e.message).join("; "),
  );
});

Deno.test("connection: an HTTP request gets a 400 answer and a close", async () => {
  const errors: Error[] = [];
  await using server = serveBounded({ ok: () => "ok" }, {
    hostname: HOST,
    onError: quiet(errors),
  });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await writeAll(conn, utf8.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  while (true) {
    const n = await within(conn.read(buf), 5000, "the HTTP answer").catch(
      () => null,
    );
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  const answer = text.decode(concat(...chunks));
  assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(answer, /This port speaks zkrpc, not HTTP\/1\.1\.\r\n$/);
  assert.ok(
    errors.some((e) =>
      /HTTP request received instead of the zkrpc preface$/.test(e.message)
    ),
  );
});

Deno.test("connection: a preface of another protocol version is answered with this server's preface and an error naming both versions", async () => {
  const errors: Error[] = [];
  await using server = serveBounded({ ok: () => "ok" }, {
    hostname: HOST,
    onError: quiet(errors),
  });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  const other = PREFACE.slice();
  other[other.length - 1] = PROTOCOL_VERSION + 1;
  await writeAll(conn, other);
  await frames.preface();
  const error = await frames.next(FrameType.Error);
  assert.equal(error.id, 0);
  const body = jsonCodec.decode(error.payload) as { message: string };
  assert.match(
    body.message,
    new RegExp(
      `closed: unsupported protocol version ${
        PROTOCOL_VERSION + 1
      }: this server speaks version ${PROTOCOL_VERSION}$`,
    ),
  );
  await assert.rejects(frames.next(FrameType.Error), /closed the connection/);
});

/** Sends `bytes` after the handshake; expects a protocol error and a close. */
async function violation(
  bytes: Uint8Array,
  message: RegExp,
  hello = HELLO,
): Promise<void> {
  const errors: Error[] = [];
  await using server = serveBounded({ ok: () => "ok" }, {
    hostname: HOST,
    onError: quiet(errors),
  });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  await writeAll(conn, concat(hello, bytes));
  await frames.preface();
  const error = await frames.next(FrameType.Error);
  assert.equal(error.id, 0);
  const body = jsonCodec.decode(error.payload) as {
    name: string;
    message: string;
  };
  assert.equal(body.name, "ProtocolError");
  assert.match(body.message, message);
  await assert.rejects(frames.next(FrameType.Error), /closed the connection/);
  assert.ok(errors.some((e) => message.test(e.message)));
}

Deno.test("connection: protocol violations close the connection with an error frame naming them", async (t) => {
  const settings = encodeFrame(
    FrameType.Settings,
    0,
    encodeSettings({ maxFrameSize: 1 << 20, codecs: ["json"], maxInFlight: 0 }),
  );
  await t.step("request id 0", () =>
    violation(
      requestFrame(0, "ok", []),
      /Cannot read request: request id 0 is reserved$/,
    ));
  await t.step("an id already in flight", async () => {
    const gate = Promise.withResolvers<void>();
    const errors: Error[] = [];
    await using server = serveBounded({ wait: () => gate.promise }, {
      hostname: HOST,
      onError: quiet(errors),
    });
    using _gate = releasing(gate);
    using c = await client(server);
    await c.send(requestFrame(5, "wait", []), requestFrame(5, "wait", []));
    const error = await c.frames.next(FrameType.Error);
    assert.equal(error.id, 0);
    assert.match(
      (jsonCodec.decode(error.payload) as { message: string }).message,
      /Cannot read request: id 5 is already in flight$/,
    );
    gate.resolve();
  });
  await t.step("settings twice", () =>
    violation(
      settings,
      /settings may be sent only once \(protocol version 2\)$/,
    ));
  await t.step("a frame only servers send", () =>
    violation(
      encodeFrame(FrameType.Result, 1, jsonCodec.encode(1)),
      /Cannot read frame: frame type 2 is not sent by clients$/,
    ));
  await t.step("a first frame that is not settings", () =>
    violation(
      requestFrame(1, "ok", []),
      /expected the client's settings frame first, got frame type 1$/,
      PREFACE,
    ));
  await t.step("settings with a non-zero id", () =>
    violation(
      encodeFrame(
        FrameType.Settings,
        3,
        encodeSettings({
          maxFrameSize: 1 << 20,
          codecs: ["json"],
          maxInFlight: 0,
        }),
      ),
      /expected the client's settings frame first, got frame type 8$/,
      PREFACE,
    ));
  await t.step("no codec in common", () =>
    violation(
      encodeFrame(
        FrameType.Settings,
        0,
        encodeSettings({
          maxFrameSize: 1 << 20,
          codecs: ["cbor"],
          maxInFlight: 0,
        }),
      ),
      /Cannot use a codec: the client offers \[cbor\], this server uses \[msgpack, json\]$/,
      PREFACE,
    ));
});

Deno.test("connection: per-call refusals keep the connection: unknown method, params not an array, undecodable params, a throwing handler", async () => {
  await using server = serveBounded({
    ok: () => "ok",
    boom(): never {
      throw new RangeError("bad");
    },
  }, { hostname: HOST, onError: quiet() });
  using c = await client(server);
  await c.send(requestFrame(1, "nope", []));
  const missing = await c.answer();
  assert.deepEqual([missing.id, missing.body.name, missing.body.message], [
    1,
    "MethodNotFoundError",
    'Cannot call method "nope": method not found',
  ]);
  assert.deepEqual(missing.body.data, { method: "nope" });
  await c.send(
    encodeFrame(
      FrameType.Request,
      2,
      requestPayload("ok", jsonCodec.encode({ a: 1 })),
    ),
  );
  const notArray = await c.answer();
  assert.deepEqual([notArray.id, notArray.body.message], [
    2,
    'Cannot call method "ok": params must be an array',
  ]);
  await c.send(
    encodeFrame(FrameType.Request, 3, requestPayload("ok", utf8.encode("[1,"))),
  );
  const bad = await c.answer();
  assert.equal(bad.id, 3);
  assert.equal(bad.body.name, "ProtocolError");
  assert.match(
    String(bad.body.message),
    /^Cannot call method "ok": cannot decode params: /,
  );
  await c.send(requestFrame(4, "boom", []));
  const boom = await c.answer();
  assert.deepEqual([boom.id, boom.body.name, boom.body.message], [
    4,
    "RangeError",
    "bad",
  ]);
  await c.send(requestFrame(5, "ok", []));
  assert.deepEqual(await c.answer(), {
    id: 5,
    type: FrameType.Result,
    body: "ok" as unknown as Record<string, unknown>,
  });
});

Deno.test("connection: a server set not serving answers health on a new connection, then refuses its first other request after a goaway", async () => {
  let runs = 0;
  await using server = serveBounded({ ok: () => ++runs }, {
    hostname: HOST,
    onError: quiet(),
  });
  server.setServing(false);
  using c = await client(server);
  await c.send(requestFrame(1, "zkrpc.health", []));
  assert.deepEqual((await c.answer()).body, { status: "not-serving" });
  await c.send(requestFrame(2, "ok", []));
  const goaway = await c.frames.next(FrameType.Goaway);
  assert.equal(text.decode(goaway.payload), "Server is not serving");
  const refused = await c.answer();
  assert.deepEqual([refused.id, refused.body.name, refused.body.message], [
    2,
    "ServerClosingError",
    'Cannot call method "ok": server is not serving (request not run)',
  ]);
  assert.equal(runs, 0);
});

Deno.test("connection: the idle timeout closes a callless connection, never one with a call in flight; pings do not count", async () => {
  const errors: Error[] = [];
  const release = Promise.withResolvers<void>();
  const started = Promise.withResolvers<void>();
  await using server = serveBounded({
    slow() {
      started.resolve();
      return release.promise.then(() => "done");
    },
  }, { hostname: HOST, idleTimeout: 50, onError: quiet(errors) });
  using _release = releasing(release);
  using busy = await client(server);
  await busy.send(requestFrame(1, "slow", []));
  await within(started.promise, 5000, "the call to start");
  // Opened after the busy one's last request and left idle (but pinging):
  // once it is closed, the busy one has been without a request longer.
  using idle = await client(server);
  await idle.send(encodeFrame(FrameType.Ping, 1));
  await idle.closed();
  await busy.send(encodeFrame(FrameType.Ping, 2));
  const pong = await busy.frames.next(FrameType.Pong);
  assert.equal(pong.id, 2, "the busy connection is open");
  release.resolve();
  const done = await busy.answer();
  assert.deepEqual([done.id, done.body], [1, "done"]);
  assert.equal(
    errors.filter((e) => /idle timeout/.test(e.message)).length,
    1,
    errors.map((e) => e.message).join("; "),
  );
});

Deno.test("connection: a preface sent byte by byte is a handshake", async () => {
  await using server = serveBounded({ ok: () => "ok" }, {
    hostname: HOST,
    onError: quiet(),
  });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  for (const byte of HELLO.subarray(0, PREFACE.length)) {
    await writeAll(conn, new Uint8Array([byte]));
  }
  await writeAll(
    conn,
    concat(HELLO.subarray(PREFACE.length), requestFrame(1, "ok", [])),
  );
  await frames.preface();
  await frames.next(FrameType.Settings);
  const result = await frames.next(FrameType.Result);
  assert.deepEqual([result.id, jsonCodec.decode(result.payload)], [1, "ok"]);
});

Deno.test("connection: a ping or pong payload of 64 bytes is fine, 65 is a protocol error", async (t) => {
  await t.step("64 bytes answered", async () => {
    await using server = serveBounded({ ok: () => "ok" }, {
      hostname: HOST,
      onError: quiet(),
    });
    using c = await client(server);
    await c.send(
      encodeFrame(FrameType.Ping, 3, new Uint8Array(64).fill(9)),
      encodeFrame(FrameType.Pong, 4, new Uint8Array(64)),
      encodeFrame(FrameType.Ping, 5),
    );
    const a = await c.frames.next(FrameType.Pong);
    assert.deepEqual([a.id, a.payload.length], [3, 64]);
    const b = await c.frames.next(FrameType.Pong);
    assert.equal(b.id, 5, "an unsolicited pong is ignored");
  });
  await t.step("65-byte ping", () =>
    violation(
      encodeFrame(FrameType.Ping, 3, new Uint8Array(65)),
      /ping payload of 65 bytes exceeds the limit of 64 bytes$/,
    ));
  await t.step("65-byte pong", () =>
    violation(
      encodeFrame(FrameType.Pong, 3, new Uint8Array(65)),
      /pong payload of 65 bytes exceeds the limit of 64 bytes$/,
    ));
});

Deno.test("connection: a call whose deadline passed on the server is not answered; its handler sees the deadline", async () => {
  const listen = untilAborted();
  await using server = serveBounded(
    { listen: listen.handler, ok: () => "ok" },
    {
      hostname: HOST,
      onError: quiet(),
    },
  );
  using c = await client(server);
  await c.send(requestWith(1, "listen", { timeout: 1 }));
  const reason = await within(listen.aborted, 5000, "the deadline") as Error;
  assert.equal(reason.name, "CancelledError");
  assert.equal(Number.isFinite(listen.deadlines[0]), true);
  await c.send(requestFrame(2, "ok", []));
  const next = await c.answer();
  assert.deepEqual([next.id, next.body], [2, "ok"], "nothing for call 1");
});

Deno.test("connection: without inheritDeadline a context handler still gets its context; a result whose then getter throws is an error answer", async () => {
  await using server = serveBounded({
    who: withContext((ctx: CallContext, x: number) =>
      `${ctx.method}:${ctx.remoteAddr?.hostname}:${x}`
    ),
    hostile() {
      return {
        get then() {
          throw new RangeError("no then");
        },
      };
    },
  }, { hostname: HOST, inheritDeadline: false, onError: quiet() });
  using c = await client(server);
  await c.send(requestFrame(1, "who", [7]), requestFrame(2, "hostile", []));
  assert.deepEqual((await c.answer()).body, `who:${HOST}:7`);
  const hostile = await c.answer();
  assert.deepEqual([hostile.id, hostile.body.name, hostile.body.message], [
    2,
    "RangeError",
    "no then",
  ]);
});

Deno.test("connection: when the client goes, running handlers are aborted with a ConnectionError naming it", async () => {
  const listen = untilAborted();
  await using server = serveBounded({ listen: listen.handler }, {
    hostname: HOST,
    onError: quiet(),
  });
  const c = await client(server);
  await c.send(requestFrame(1, "listen", []));
  await within(listen.started, 5000, "the call to start");
  const port = (c.conn.localAddr as Deno.NetAddr).port;
  c.conn.close();
  const reason = await within(listen.aborted, 5000, "the abort") as Error & {
    written?: boolean;
  };
  assert.equal(reason.name, "ConnectionError");
  assert.equal(reason.written, true);
  assert.equal(reason.message, `Connection from ${HOST}:${port} closed`);
});

Deno.test("connection: a connection still in its handshake is left alone when the server stops serving, and closed when it closes", async () => {
  await using server = serveBounded({ ok: () => "ok" }, {
    hostname: HOST,
    onError: quiet(),
  });
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await waitFor(() => server.connections === 1, "the connection");
  server.setServing(false);
  server.setServing(true);
  const frames = rawFrames(conn);
  await writeAll(conn, concat(HELLO, requestFrame(1, "ok", [])));
  await frames.preface();
  const first = await frames.next([FrameType.Goaway, FrameType.Result]);
  assert.deepEqual([first.type, first.id], [FrameType.Result, 1]);
  conn.close();
  using late = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await waitFor(() => server.connections === 1, "only the late connection");
  await within(server.close(), 5000, "close(): nothing to drain");
  await assert.rejects(rawFrames(late).preface(), /closed the connection/);
});

Deno.test("connection: during a drain, a cancel of the last call in flight ends it once the pong came; unknown methods are refused as closing", async () => {
  const hold = untilAborted();
  await using server = serveBounded({ hold: hold.handler }, {
    hostname: HOST,
    onError: quiet(),
    closeTimeout: 60_000,
  });
  using c = await client(server);
  await c.send(requestFrame(1, "hold", []));
  await within(hold.started, 5000, "the call to start");
  const closing = server.close();
  await c.frames.next(FrameType.Goaway);
  const ping = await c.frames.next(FrameType.Ping);
  await c.send(pong(ping.id), requestFrame(2, "nope", []));
  const refused = await c.answer();
  assert.deepEqual([refused.id, refused.body.name, refused.body.message], [
    2,
    "ServerClosingError",
    'Cannot call method "nope": server is closing (request not run)',
  ]);
  // The pong came, but call 1 is in flight: still open.
  await c.send(requestFrame(3, "zkrpc.health", []));
  assert.equal((await c.answer()).id, 3);
  await c.send(cancel(1));
  await c.closed();
  await within(closing, 5000, "close()");
});

Deno.test("connection: a frame that stops halfway is closed after frameTimeout; whole frames never are", async () => {
  const errors: Error[] = [];
  await using server = serveBounded({ ok: () => "ok" }, {
    hostname: HOST,
    frameTimeout: 30,
    onError: quiet(errors),
  });
  // One connection sends whole frames only; the other stops halfway.
  using whole = await client(server);
  await whole.send(requestFrame(1, "ok", []));
  assert.equal((await whole.answer()).body, "ok");
  using c = await client(server);
  await c.send(requestFrame(1, "ok", []).subarray(0, 7));
  await c.closed();
  await whole.send(encodeFrame(FrameType.Ping, 9));
  assert.equal((await whole.frames.next(FrameType.Pong)).id, 9);
  assert.ok(
    errors.some((e) => /frame/.test(e.message)),
    errors.map((e) => e.message).join("; "),
  );
});

Deno.test("connection: a refused metadata or an unreadable header still may not reuse an id in flight, nor id 0", async (t) => {
  const bad = new Uint8Array([3, 0x41, 0x42, 0x43, 0, 1, 0x76]); // key "ABC"
  const cases: [string, (id: number) => Uint8Array, RegExp][] = [
    [
      "bad metadata",
      (id) => requestWith(id, "ok", { metadata: bad }),
      /Cannot read request: id 5 is already in flight$/,
    ],
    [
      "truncated metadata",
      (id) => requestWith(id, "ok", { metadata: bad, declared: 5000 }),
      /Cannot read request: id 5 is already in flight$/,
    ],
  ];
  for (const [name, frame, message] of cases) {
    await t.step(name, async () => {
      const gate = Promise.withResolvers<void>();
      const errors: Error[] = [];
      await using server = serveBounded({
        wait: () => gate.promise,
        ok: () => 1,
      }, {
        hostname: HOST,
        onError: quiet(errors),
      });
      using _gate = releasing(gate);
      using c = await client(server);
      // Alone it fails only its call.
      await c.send(frame(4));
      const alone = await c.answer();
      assert.deepEqual([alone.id, alone.body.name], [4, "ProtocolError"]);
      await c.send(requestFrame(5, "wait", []), frame(5));
      const error = await c.frames.next(FrameType.Error);
      assert.equal(error.id, 0);
      assert.match(
        (jsonCodec.decode(error.payload) as { message: string }).message,
        message,
      );
    });
  }
  await t.step("truncated metadata on id 0", () =>
    violation(
      requestWith(0, "ok", { metadata: bad, declared: 5000 }),
      /Cannot read request: request id 0 is reserved$/,
    ));
  await t.step("bad metadata on id 0", () =>
    violation(
      requestWith(0, "ok", { metadata: bad }),
      /Cannot read request: request id 0 is reserved$/,
    ));
});

Deno.test("connection: a result over the client's frame limit fails that call and is reported with the client's address", async () => {
  const reports: [Error, Deno.NetAddr | undefined][] = [];
  await using server = serveBounded({ big: () => "x".repeat(2000) }, {
    hostname: HOST,
    onError: (e, addr) => void reports.push([e, addr]),
  });
  const small = concat(
    PREFACE,
    encodeFrame(
      FrameType.Settings,
      0,
      encodeSettings({ maxFrameSize: 1024, codecs: ["json"], maxInFlight: 0 }),
    ),
  );
  using c = await client(server, small);
  await c.send(requestFrame(1, "big", []));
  const answer = await c.answer();
  assert.deepEqual([answer.id, answer.body.name], [
    1,
    "ResourceExhaustedError",
  ]);
  assert.equal(reports.length, 1);
  assert.match(reports[0]![0].message, /exceeds the client's frame limit/);
  assert.equal(reports[0]![1]?.hostname, HOST);
  assert.equal(
    reports[0]![1]?.port,
    (c.conn.localAddr as Deno.NetAddr).port,
  );
});

Deno.test("connection: no preface within handshakeTimeout closes the connection, reported", async () => {
  const errors: Error[] = [];
  await using server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    handshakeTimeout: 20,
    onError: quiet(errors),
  });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await assert.rejects(rawFrames(conn).preface(), /closed the connection/);
  assert.match(
    errors.map((e) => e.message).join("\n"),
    /closed: no valid preface within 20 ms \(handshake timeout\)$/m,
  );
});

Deno.test("connection: at maxConnectionAge a connection is drained (goaway, ping), then closed after closeTimeout if a call holds it", async () => {
  const errors: Error[] = [];
  const hold = untilAborted();
  await using server = serveBounded({ hold: hold.handler, ok: () => 1 }, {
    hostname: HOST,
    maxConnectionAge: 40,
    closeTimeout: 40,
    onError: quiet(errors),
  });
  using c = await client(server);
  await c.send(requestFrame(1, "hold", []));
  await within(hold.started, 5000, "the call to start");
  const goaway = await c.frames.next(FrameType.Goaway);
  assert.equal(text.decode(goaway.payload), "Maximum connection age reached");
  const ping = await c.frames.next(FrameType.Ping);
  await c.send(pong(ping.id));
  const reason = await within(hold.aborted, 5000, "the forced close") as Error;
  assert.equal(reason.name, "ServerClosingError");
  assert.equal(
    reason.message,
    "Connection closed: maximum connection age reached",
  );
  await c.closed();
  assert.match(
    errors.map((e) => e.message).join("\n"),
    /^Connection from 127\.0\.0\.1:\d+ draining: maximum connection age of 40 ms reached$/m,
  );
});

Deno.test("connection: a preface of another protocol is answered with this server's preface and an error, then closed", async () => {
  const errors: Error[] = [];
  await using server = serveBounded({ ok: () => 1 }, {
    hostname: HOST,
    onError: quiet(errors),
  });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  await writeAll(conn, utf8.encode("SSH-2.0-x\r\n"));
  await frames.preface();
  const error = await frames.next(FrameType.Error);
  assert.equal(
    (jsonCodec.decode(error.payload) as { message: string }).message.replace(
      /:\d+ /,
      ": ",
    ),
    `Connection from ${HOST}: closed: bad preface: not a zkrpc client`,
  );
  await assert.rejects(frames.next(FrameType.Error), /closed the connection/);
  assert.equal(errors.length, 1);
});

Deno.test("connection: a result whose then is not a function is a plain value", async () => {
  await using server = serveBounded({ odd: () => ({ then: 1, x: 2 }) }, {
    hostname: HOST,
    onError: quiet(),
  });
  using c = await client(server);
  await c.send(requestFrame(1, "odd", []));
  assert.deepEqual((await c.answer()).body, { then: 1, x: 2 });
});
