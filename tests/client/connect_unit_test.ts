/**
 * Opening a client connection (`src/client/_connect.ts` and
 * `Connection.connect()`) against a scripted listener on 127.0.0.1: the
 * preface and settings the client sends, the server's preface (in pieces,
 * another version, not zkrpc, a TLS record), its settings and the codec
 * picked, bytes after the settings kept, a `goaway` with the preface, EOF,
 * the connect timeout and the caller's signal, and the keepalive periods
 * checked before anything is opened. No server process, no TLS.
 */
import assert from "node:assert/strict";
import { openSocket } from "../../src/client/_connect.ts";
import { Connection } from "../../src/client/connection.ts";
import {
  ConnectionError,
  ProtocolError,
  ServerClosingError,
} from "../../src/errors.ts";
import {
  decodeSettings,
  encodeFrame,
  encodeSettings,
  FrameDecoder,
  FrameType,
  PREFACE,
  type Settings,
} from "../../src/protocol/frame.ts";
import { jsonCodec } from "../../src/protocol/codec.ts";
import { msgpackCodec } from "../../src/protocol/msgpack_codec.ts";
import { closedPort, concat, writeAll } from "../_core_helpers.ts";
// Text imports: the loopback-only mutation run may not read files.
import ca from "../fixtures/tls/ca.crt" with { type: "text" };
import cert from "../fixtures/tls/localhost.crt" with { type: "text" };
import key from "../fixtures/tls/localhost.key" with { type: "text" };
import { within } from "../_wait.ts";

const HOST = "127.0.0.1";

/** The server's preface and settings. */
function hello(settings: Partial<Settings> = {}): Uint8Array {
  return concat(
    PREFACE,
    encodeFrame(
      FrameType.Settings,
      0,
      encodeSettings({
        maxFrameSize: 1 << 20,
        codecs: ["json"],
        maxInFlight: 0,
        streamWindow: 8,
        ...settings,
      }),
    ),
  );
}

/**
 * A listener that accepts one connection, reads the client's preface and
 * settings, and answers with `answer` (chunks written one by one), then
 * keeps the socket open until the client closes it (`"stay"`) or closes it
 * (`"close"`); `"refuse"` closes it at once, reading nothing; `"greet"`
 * writes `answer` at once, then reads until the client closes.
 */
function peer(
  answer: Uint8Array[],
  mode: "stay" | "close" | "refuse" | "greet" = "stay",
  listener: Deno.Listener = Deno.listen({ hostname: HOST, port: 0 }),
) {
  const port = (listener.addr as Deno.NetAddr).port;
  const received = Promise.withResolvers<Settings>();
  const serving = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      if (mode === "refuse") return;
      if (mode === "greet") {
        for (const chunk of answer) await writeAll(conn, chunk);
        while ((await conn.read(new Uint8Array(4096))) !== null) {
          // discard
        }
        return;
      }
      const decoder = new FrameDecoder();
      const buf = new Uint8Array(4096);
      let bytes: Uint8Array = new Uint8Array(0);
      while (bytes.length < PREFACE.length) {
        const n = await conn.read(buf);
        if (n === null) return;
        bytes = concat(bytes, buf.subarray(0, n));
      }
      assert.deepEqual(bytes.subarray(0, PREFACE.length), PREFACE);
      decoder.push(bytes.subarray(PREFACE.length));
      let frame = decoder.next();
      while (frame === undefined) {
        const n = await conn.read(buf);
        if (n === null) return;
        decoder.push(buf.subarray(0, n));
        frame = decoder.next();
      }
      assert.equal(frame.type, FrameType.Settings);
      received.resolve(decodeSettings(frame.payload));
      for (const chunk of answer) await writeAll(conn, chunk);
      // Until the client closes.
      while (
        mode === "stay" && (await conn.read(buf).catch(() => null)) !== null
      ) {
        // discard
      }
    } catch {
      // a TLS handshake the client broke off
    } finally {
      received.reject(new Error("no settings"));
      try {
        conn.close();
      } catch {
        // closed
      }
    }
  })();
  received.promise.catch(() => {});
  return { port, received: received.promise, serving };
}

Deno.test("connect: the client sends its preface and settings (limits, codecs, stream window); the server's settings pick the codec", async () => {
  const p = peer([hello({ codecs: ["msgpack", "json"] })]);
  const opened = await openSocket({ hostname: HOST, port: p.port }, {
    maxFrameSize: 5000,
    codec: [jsonCodec, msgpackCodec],
    streamWindow: 7,
  });
  const sent = await within(p.received, 2000, "the client's settings");
  assert.deepEqual(sent, {
    maxFrameSize: 5000,
    codecs: ["json", "msgpack"],
    maxInFlight: 0,
    streamWindow: 7,
  });
  // The client's preference wins among the codecs both list.
  assert.equal(opened.codec, jsonCodec);
  assert.deepEqual(opened.settings.codecs, ["msgpack", "json"]);
  assert.equal(opened.settings.maxFrameSize, 1 << 20);
  opened.conn.close();
  await p.serving;
});

Deno.test("connect: defaults: the frame limit 4 MiB, both codecs (msgpack first), a stream window of 256", async () => {
  const p = peer([hello({ codecs: ["json"] })]);
  const opened = await openSocket({ hostname: HOST, port: p.port }, {});
  assert.deepEqual(await within(p.received, 2000, "the settings"), {
    maxFrameSize: 4 * 1024 * 1024,
    codecs: ["msgpack", "json"],
    maxInFlight: 0,
    streamWindow: 256,
  });
  assert.equal(opened.codec.name, "json");
  opened.conn.close();
  await p.serving;
});

Deno.test("connect: the server's preface may arrive byte by byte; bytes after its settings stay in the decoder", async () => {
  const bytes = concat(hello(), encodeFrame(FrameType.Ping, 9));
  const p = peer([...bytes].map((b) => new Uint8Array([b])));
  const opened = await openSocket({ hostname: HOST, port: p.port }, {});
  let frame = opened.decoder.next();
  while (frame === undefined) {
    const n = await within(
      opened.conn.read(opened.decoder.writable()),
      2000,
      "the ping",
    );
    assert.notEqual(n, null);
    opened.decoder.commit(n!);
    frame = opened.decoder.next();
  }
  assert.deepEqual([frame.type, frame.id], [FrameType.Ping, 9]);
  opened.conn.close();
  await p.serving;
});

Deno.test("connect: a server without a codec of ours, or whose first frame is not settings, is a ProtocolError", async () => {
  const p1 = peer([hello({ codecs: ["cbor", "x"] })]);
  await assert.rejects(
    openSocket({ hostname: HOST, port: p1.port }, {
      codec: [jsonCodec, msgpackCodec],
    }),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        `Cannot connect to ${HOST}:${p1.port}: the server uses codec [cbor, x], this client offers [json, msgpack]`,
  );
  await p1.serving;
  const p2 = peer([concat(PREFACE, encodeFrame(FrameType.Ping, 0))]);
  await assert.rejects(
    openSocket({ hostname: HOST, port: p2.port }, {}),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        `Cannot connect to ${HOST}:${p2.port}: expected the server's settings, got frame type 5`,
  );
  await p2.serving;
});

Deno.test("connect: another protocol version, a peer that is not zkrpc and a TLS record are told apart", async () => {
  const other = PREFACE.slice();
  other[other.length - 1] = 9;
  const cases: [Uint8Array, abstract new (...a: never[]) => Error, string][] = [
    [
      other,
      ProtocolError,
      "the server speaks zkrpc protocol version 9, this client speaks version 2",
    ],
    [
      new TextEncoder().encode("SSH-2.0-OpenSSH\r\n"),
      ProtocolError,
      "the peer is not a zkrpc server",
    ],
    // A TLS alert (content type 21, version 3.x): a TLS server.
    [
      new Uint8Array([0x15, 0x03, 0x03, 0, 2, 2, 40, 0, 0, 0]),
      ConnectionError,
      "the server answered with TLS: it serves TLS and this client connected in plain TCP (connect with tls: true)",
    ],
    // Content types 20 and 24 are TLS records too; 19 and 25 are not.
    [
      new Uint8Array([0x14, 0x03, 1, 0, 0, 0, 0, 0, 0, 0]),
      ConnectionError,
      "the server answered with TLS",
    ],
    [
      new Uint8Array([0x18, 0x03, 1, 0, 0, 0, 0, 0, 0, 0]),
      ConnectionError,
      "the server answered with TLS",
    ],
    [
      new Uint8Array([0x13, 0x03, 1, 0, 0, 0, 0, 0, 0, 0]),
      ProtocolError,
      "the peer is not a zkrpc server",
    ],
    [
      new Uint8Array([0x19, 0x03, 1, 0, 0, 0, 0, 0, 0, 0]),
      ProtocolError,
      "the peer is not a zkrpc server",
    ],
    [
      new Uint8Array([0x16, 0x02, 1, 0, 0, 0, 0, 0, 0, 0]),
      ProtocolError,
      "the peer is not a zkrpc server",
    ],
  ];
  for (const [bytes, type, message] of cases) {
    const p = peer([bytes]);
    await assert.rejects(
      openSocket({ hostname: HOST, port: p.port }, {}),
      (e: unknown) =>
        e instanceof type &&
        e.message.startsWith(`Cannot connect to ${HOST}:${p.port}: ${message}`),
      `${[...bytes.subarray(0, 2)]}`,
    );
    await p.serving;
  }
});

Deno.test("connect: a server that closes during the handshake, a closed port, a timeout and an abort are ConnectionErrors, written: false", async () => {
  const p = peer([PREFACE.subarray(0, 4)], "close");
  const eof = await openSocket({ hostname: HOST, port: p.port }, {}).catch(
    (e) => e,
  );
  assert.ok(eof instanceof ConnectionError);
  assert.equal(eof.written, false);
  assert.equal(
    eof.message,
    `Cannot connect to ${HOST}:${p.port}: the server closed the connection during the handshake`,
  );
  await p.serving;

  const port = closedPort();
  const refused = await openSocket({ hostname: HOST, port }, {}).catch((e) =>
    e
  );
  assert.ok(refused instanceof ConnectionError);
  assert.equal(refused.written, false);
  assert.ok(
    refused.message.startsWith(`Cannot connect to ${HOST}:${port}: `),
    refused.message,
  );
  assert.ok(refused.cause instanceof Deno.errors.ConnectionRefused);
  assert.equal(
    refused.message,
    `Cannot connect to ${HOST}:${port}: ${refused.cause.message}`,
  );

  const silent = peer([]);
  const timedOut = await openSocket({ hostname: HOST, port: silent.port }, {
    connectTimeout: 50,
  }).catch((e) => e);
  assert.ok(timedOut instanceof ConnectionError);
  assert.equal(timedOut.written, false);
  assert.equal(
    timedOut.message,
    `Cannot connect to ${HOST}:${silent.port}: no preface from the server within 50 ms`,
  );
  await silent.serving;

  const waiting = peer([]);
  const controller = new AbortController();
  const opening = openSocket({ hostname: HOST, port: waiting.port }, {
    signal: controller.signal,
  });
  await within(waiting.received, 2000, "the client's settings");
  const reason = new Error("stop");
  controller.abort(reason);
  const aborted = await opening.catch((e) => e);
  assert.ok(aborted instanceof ConnectionError);
  assert.equal(aborted.written, false);
  assert.equal(
    aborted.message,
    `Cannot connect to ${HOST}:${waiting.port}: aborted`,
  );
  assert.equal(aborted.cause, reason);
  await waiting.serving;

  // Aborted before: the signal's reason, nothing opened.
  const early = new Error("already");
  await assert.rejects(
    openSocket({ hostname: HOST, port }, { signal: AbortSignal.abort(early) }),
    (e: unknown) => e === early,
  );
});

Deno.test("Connection.connect: a goaway with the preface is a ServerClosingError (not run) with the reason", async () => {
  const p = peer([
    concat(
      hello(),
      encodeFrame(
        FrameType.Goaway,
        0,
        new TextEncoder().encode("Too many connections"),
      ),
    ),
  ]);
  await assert.rejects(
    Connection.connect({ hostname: HOST, port: p.port }),
    (e: unknown) =>
      e instanceof ServerClosingError && e.notRun &&
      e.message ===
        `Cannot connect to ${HOST}:${p.port}: the server is closing: Too many connections`,
  );
  await p.serving;
});

Deno.test("Connection.connect: the connection takes the server's limits and the negotiated codec", async () => {
  const p = peer([
    hello({ maxInFlight: 1, maxFrameSize: 100, codecs: ["json"] }),
  ]);
  await using conn = await Connection.connect(
    { hostname: HOST, port: p.port },
    {
      keepaliveInterval: 0,
    },
  );
  assert.deepEqual(conn.endpoint, { hostname: HOST, port: p.port });
  assert.equal(conn.draining, false);
  // Over the server's 100-byte frame limit: refused before sending.
  await assert.rejects(
    conn.call("echo", ["x".repeat(100)]),
    (e: unknown) =>
      e instanceof RangeError &&
      /the server's frame limit of 100/.test(e.message),
  );
});

Deno.test("Connection.connect: NaN, negative or non-number keepalive periods are a RangeError before anything is opened", async () => {
  const port = closedPort();
  for (
    const name of [
      "keepaliveInterval",
      "keepaliveTimeout",
      "idleKeepaliveInterval",
    ] as const
  ) {
    for (const value of [NaN, -1, "1000"]) {
      await assert.rejects(
        Connection.connect({ hostname: HOST, port }, {
          [name]: value as number,
        }),
        (error: unknown) =>
          error instanceof RangeError &&
          error.message.startsWith(
            `Cannot connect to ${HOST}:${port}: ${name} must be a number of ms >= 0 or Infinity`,
          ),
        `${name}: ${value}`,
      );
    }
  }
});

/** A TLS listener on 127.0.0.1 with the test certificate (CA: ca.crt). */
const tlsListener = () =>
  Deno.listenTls({ hostname: HOST, port: 0, cert, key });

Deno.test("connect: TLS with the CA in caCerts exchanges prefaces over TLS", async () => {
  const p = peer([hello()], "stay", tlsListener());
  const opened = await openSocket(
    { hostname: HOST, port: p.port, tls: true },
    { caCerts: [ca] },
  );
  assert.deepEqual(
    (await within(p.received, 2000, "the settings")).codecs,
    ["msgpack", "json"],
  );
  assert.equal(opened.codec.name, "json");
  opened.conn.close();
  await p.serving;
});

Deno.test("connect: a failed TLS handshake names TLS and the likely cause", async () => {
  const cases: [ReturnType<typeof peer>, string][] = [];
  // Not trusted: no caCerts for the private CA.
  cases.push([
    peer([], "stay", tlsListener()),
    "the server's certificate is not trusted: pass the CA that signed it in caCerts (zkrpc: --ca FILE) or set DENO_CERT=FILE",
  ]);
  // A plain server answers the TLS hello with its preface.
  cases.push([
    peer([hello()], "greet"),
    "the server does not speak TLS (it answered in plain TCP): connect without TLS, or start the server with serve({ tls })",
  ]);
  // A peer that closes at once.
  cases.push([
    peer([], "refuse"),
    "the server closed or refused the TLS handshake",
  ]);
  for (const [p, cause] of cases) {
    const error = await openSocket(
      { hostname: HOST, port: p.port, tls: true },
      {},
    ).catch((e) => e);
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.written, false);
    assert.ok(
      error.message.startsWith(
        `Cannot connect to ${HOST}:${p.port}: TLS handshake failed: ${cause} (`,
      ),
      error.message,
    );
    assert.ok(error.cause instanceof Error);
    await p.serving;
  }
});

Deno.test("connect: a TLS record of one byte is recognised; two bytes of another version are not zkrpc", async () => {
  for (
    const [bytes, tls] of [
      [[0x15], true],
      [[0x16, 0x02], false],
      [[0x16, 0x03], true],
    ] as const
  ) {
    const p = peer([new Uint8Array(bytes)]);
    const error = await openSocket({ hostname: HOST, port: p.port }, {})
      .catch((e) => e);
    assert.ok(
      tls ? error instanceof ConnectionError : error instanceof ProtocolError,
      `${bytes}: ${error}`,
    );
    assert.match(
      error.message,
      tls ? /the server answered with TLS/ : /the peer is not a zkrpc server/,
    );
    if (tls) assert.equal(error.written, false);
    await p.serving;
  }
});

Deno.test("connect: the returned decoder enforces the client's maxFrameSize on what follows the settings", async () => {
  const p = peer([
    concat(hello(), encodeFrame(FrameType.Ping, 1, new Uint8Array(64))),
  ]);
  const opened = await openSocket({ hostname: HOST, port: p.port }, {
    maxFrameSize: 60,
  });
  assert.throws(() => {
    let frame = opened.decoder.next();
    while (frame === undefined) frame = opened.decoder.next();
  }, ProtocolError);
  opened.conn.close();
  await p.serving;
});

Deno.test("connect: an empty codec list is a TypeError naming the endpoint", async () => {
  const port = closedPort();
  await assert.rejects(
    openSocket({ hostname: HOST, port }, { codec: [] }),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message ===
        `Cannot connect to ${HOST}:${port}: the codec list is empty`,
  );
});
