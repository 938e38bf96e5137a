/**
 * Every limit and count at its boundary: exactly at the limit works, one
 * past it is refused, on each side of the wire that enforces it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../src/channel/channel.ts";
import { backoff } from "../src/_async.ts";
import { Connection } from "../src/client/connection.ts";
import {
  ConnectionError,
  MethodNotFoundError,
  ResourceExhaustedError,
  ServerClosingError,
} from "../src/errors.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import {
  encodeFrame,
  encodeSettings,
  FrameDecoder,
  FrameType,
} from "../src/protocol/frame.ts";
import { StaticMembership } from "../src/discovery/static.ts";
import { type RpcServer, serve } from "../src/server/server.ts";
import {
  concat,
  HELLO,
  PREFACE,
  rawFrames,
  readToEnd,
  requestFrame,
  writeAll,
} from "./_core_helpers.ts";
import { waitFor, within } from "./_wait.ts";

const HOST = "127.0.0.1";
const LIMIT = 1024;

/** `echo` request whose length field is exactly `length` (see docs/protocol.md). */
function echoOfLength(id: number, length: number): Uint8Array {
  // length = 5 (type, id) + flags + 1 + "echo" + '["' + n × "x" + '"]'
  const frame = requestFrame(id, "echo", ["x".repeat(length - 15)]);
  assert.equal(frame.length - 4, length);
  return frame;
}

function errorsOf(server: { errors: Error[] }): string[] {
  return server.errors.map((e) => e.message);
}

function start(
  options: Parameters<typeof serve>[1] = {},
): RpcServer & { errors: Error[] } {
  const errors: Error[] = [];
  const release = Promise.withResolvers<void>();
  const server = serve({
    echo: (x: unknown) => x,
    make: (n: number) => "x".repeat(n),
    wait: () => release.promise,
  }, { hostname: HOST, onError: (e) => void errors.push(e), ...options });
  return Object.assign(server, { errors, release: release.resolve });
}

Deno.test("the server accepts a frame exactly at maxFrameSize and closes the connection one byte past it", async () => {
  await using server = start({ maxFrameSize: LIMIT });
  const at = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(at);
  await writeAll(at, concat(HELLO, echoOfLength(1, LIMIT)));
  const result = await frames.next(FrameType.Result);
  assert.equal(result.id, 1);
  at.close();
  assert.deepEqual(errorsOf(server), []);

  const past = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await writeAll(past, concat(HELLO, echoOfLength(1, LIMIT + 1)));
  await within(readToEnd(past), 5000, "the server to close the connection");
  past.close();
  assert.match(
    errorsOf(server).join("\n"),
    new RegExp(`length ${LIMIT + 1} exceeds the limit of ${LIMIT} bytes`),
  );
});

Deno.test("the client sends a request exactly at its maxFrameSize and refuses one byte more before sending", async () => {
  await using server = start();
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxFrameSize: LIMIT },
  );
  const text = "x".repeat(LIMIT - 15);
  assert.equal(await conn.call("echo", [text]), text);
  await assert.rejects(
    conn.call("echo", [text + "x"]),
    (e: unknown) =>
      e instanceof RangeError &&
      new RegExp(
        `request of ${
          LIMIT + 1
        } bytes exceeds the frame limit of ${LIMIT} bytes`,
      ).test(e.message),
  );
  assert.equal(conn.isClosed, false);
  assert.equal(await conn.call("echo", ["still open"]), "still open");
});

Deno.test("a result exactly at the client's announced maxFrameSize is sent, one byte more is refused by the server", async () => {
  await using server = start();
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    // JSON, whose sizes the arithmetic below counts.
    { maxFrameSize: LIMIT, codec: jsonCodec },
  );
  // A result's length field: 5 + '"' + n × "x" + '"'.
  assert.equal(await conn.call("make", [LIMIT - 7]), "x".repeat(LIMIT - 7));
  await assert.rejects(
    conn.call("make", [LIMIT - 6]),
    (e: unknown) =>
      e instanceof ResourceExhaustedError &&
      new RegExp(`exceeds the client's frame limit of ${LIMIT} bytes`).test(
        e.message,
      ),
  );
  assert.equal(conn.isClosed, false);
  assert.equal(await conn.call("make", [3]), "xxx");
});

/** A raw client's preface and settings announcing `maxFrameSize`. */
function helloWith(maxFrameSize: number): Uint8Array {
  return concat(
    PREFACE,
    encodeFrame(
      FrameType.Settings,
      0,
      encodeSettings({ maxFrameSize, codecs: ["json"], maxInFlight: 0 }),
    ),
  );
}

Deno.test("a client that announces 4 GiB frames still gets at most the server's own maxFrameSize: exactly it is sent, one byte more fails that call", async () => {
  await using server = start({ maxFrameSize: LIMIT });
  using conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  await writeAll(
    conn,
    concat(
      helloWith(0xffffffff),
      requestFrame(1, "make", [LIMIT - 7]), // a length field of exactly LIMIT
      requestFrame(2, "make", [LIMIT - 6]),
      requestFrame(3, "make", [3]),
    ),
  );
  await frames.preface();
  const answers = [];
  for (let i = 0; i < 3; i++) {
    answers.push(await frames.next([FrameType.Result, FrameType.Error]));
  }
  assert.deepEqual(answers.map((a) => [a.id, a.type]), [
    [1, FrameType.Result],
    [2, FrameType.Error],
    [3, FrameType.Result],
  ]);
  assert.equal(answers[0]!.payload.length + 5, LIMIT);
  const error = jsonCodec.decode(answers[1]!.payload) as {
    name: string;
    message: string;
    data: { ran: boolean };
  };
  assert.equal(error.name, "ResourceExhaustedError");
  assert.match(
    error.message,
    new RegExp(
      `^Cannot call method "make": result of ${
        LIMIT - 4
      } bytes exceeds the server's frame limit of ${LIMIT} bytes$`,
    ),
  );
  assert.deepEqual(error.data, { ran: true });
});

Deno.test("under a server maxFrameSize too small for an error message every call is still answered", async () => {
  await using server = start({ maxFrameSize: 64 });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  // The error (about 100 bytes) is over 64, but errors may use 64 KiB.
  await assert.rejects(
    within(conn.call("nope", []), 5000, "nope"),
    MethodNotFoundError,
  );
  // A result over 64 bytes is refused with its own error, also answered.
  await assert.rejects(
    within(conn.call("make", [100]), 5000, "make"),
    /result of 102 bytes exceeds the server's frame limit of 64 bytes/,
  );
  assert.equal(await within(conn.call("make", [3]), 5000, "make"), "xxx");
});

Deno.test("a client that never reads gets at most the output budget queued; later answers fail with ResourceExhaustedError", async () => {
  await using server = serve({
    async later(n: number) {
      await Promise.resolve();
      return "x".repeat(n);
    },
  }, { hostname: HOST, onError: () => {} });
  using greedy = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const count = 48;
  const requests = Array.from(
    { length: count },
    (_, i) => requestFrame(i + 1, "later", [1024 * 1024]),
  );
  await writeAll(greedy, concat(helloWith(0xffffffff), ...requests));
  // Another connection's round trip: the greedy requests were read and
  // their handlers settled (one read, one microtask) before it is answered.
  await using good = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await within(good.call("later", [1]), 5000, "a good call");
  // Now read everything: each call got its result or, beyond the budget,
  // its own error; none was lost.
  const frames = rawFrames(greedy);
  await frames.preface();
  let results = 0;
  const refused: string[] = [];
  for (let i = 0; i < count; i++) {
    const answer = await frames.next([FrameType.Result, FrameType.Error]);
    if (answer.type === FrameType.Result) results++;
    else {
      const error = jsonCodec.decode(answer.payload) as {
        name: string;
        message: string;
      };
      assert.equal(error.name, "ResourceExhaustedError");
      refused.push(error.message);
    }
  }
  assert.equal(results + refused.length, count);
  assert.ok(refused.length > 0, "some answers were over the budget");
  assert.match(
    refused[0]!,
    /^Cannot call method "later": its answer of \d+ bytes was not sent: \d+ bytes already wait for this client, which is not reading its responses \(output budget 16777216 bytes\)$/,
  );
  // At most the budget waited; the rest went into socket buffers.
  assert.ok(results < count, `${results} results`);
});

Deno.test("a method name of exactly 255 bytes is sent and one of 256 is refused before sending", async () => {
  await using server = start();
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await assert.rejects(
    conn.call("m".repeat(255), []),
    (e: unknown) => e instanceof Error && /method not found/.test(e.message),
  );
  await assert.rejects(
    conn.call("m".repeat(256), []),
    (e: unknown) =>
      e instanceof RangeError && /longer than 255 bytes/.test(e.message),
  );
  assert.equal(await conn.call("echo", [1]), 1);
});

Deno.test("the server runs exactly maxInFlightPerConnection calls and refuses one more without running it", async () => {
  const server = start({ maxInFlightPerConnection: 3 });
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  await writeAll(
    conn,
    concat(HELLO, ...[1, 2, 3].map((id) => requestFrame(id, "wait", []))),
  );
  await frames.preface();
  // A ping's round trip after the three: they are all running, none refused.
  await writeAll(conn, encodeFrame(FrameType.Ping, 9));
  assert.equal((await frames.next(FrameType.Pong)).id, 9);
  await writeAll(conn, requestFrame(4, "wait", []));
  const refused = await frames.next(FrameType.Error);
  assert.equal(refused.id, 4);
  const payload = jsonCodec.decode(refused.payload) as {
    name: string;
    message: string;
  };
  assert.equal(payload.name, "ResourceExhaustedError");
  assert.match(
    payload.message,
    /3 calls are already running on this connection \(request not run\)/,
  );
  // Once they finish there is room again, on the same connection.
  (server as unknown as { release: () => void }).release();
  for (let i = 0; i < 3; i++) await frames.next(FrameType.Result);
  await writeAll(conn, requestFrame(5, "echo", ["again"]));
  assert.equal((await frames.next(FrameType.Result)).id, 5);
  conn.close();
  await within(server.close(), 5000, "close()");
});

Deno.test("the client keeps exactly maxInFlight calls on the wire and queues the rest", async () => {
  let running = 0;
  let peak = 0;
  const gate = Promise.withResolvers<void>();
  await using server = serve({
    async work(i: number): Promise<number> {
      peak = Math.max(peak, ++running);
      await gate.promise;
      running--;
      return i;
    },
  }, { hostname: HOST, maxInFlightPerConnection: 4 });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxInFlight: 4 },
  );
  const calls = Array.from({ length: 8 }, (_, i) => conn.call("work", [i]));
  await waitFor(() => running === 4, "four calls to run");
  assert.equal(conn.inFlight, 8);
  gate.resolve();
  assert.deepEqual(await Promise.all(calls), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(peak, 4);
});

Deno.test("the server serves exactly maxConnections connections and turns one more away", async () => {
  await using server = start({ maxConnections: 2 });
  const endpoint = { hostname: HOST, port: server.addr.port };
  await using a = await Connection.connect(endpoint);
  await using b = await Connection.connect(endpoint);
  assert.deepEqual(
    await Promise.all([a.call("echo", ["a"]), b.call("echo", ["b"])]),
    ["a", "b"],
  );
  const third = await Connection.connect(endpoint).then(
    async (c) => {
      await within(c.finished, 5000, "the refused connection to close");
      return c.goawayReason;
    },
    (e: unknown) => e,
  );
  assert.ok(
    third === "Too many connections" || third instanceof ServerClosingError ||
      (third instanceof ConnectionError && !third.written),
    String(third),
  );
  assert.match(errorsOf(server).join("\n"), /limit of 2 connections reached/);
  // One leaves: there is room again.
  a.close();
  await waitFor(() => server.connections === 1, "the server to see it leave");
  await using c = await Connection.connect(endpoint);
  assert.equal(await c.call("echo", ["c"]), "c");
});

/** A balancer that always takes the first candidate (list order). */
const firstCandidate = {
  pick<T>(candidates: readonly T[]): T | undefined {
    return candidates[0];
  },
};

function closedPort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * A server that completes the handshake, then drops each connection as soon
 * as a request arrives: a written attempt that fails, so it counts towards
 * `maxAttempts` (an unsent one, such as a refused connect, does not).
 */
function dropper(): { port: number; requests: () => number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  let requests = 0;
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(65536);
        const decoder = new FrameDecoder();
        let preface = PREFACE.length;
        let answered = false;
        try {
          while (true) {
            const n = await conn.read(buf);
            if (n === null) return;
            const skip = Math.min(preface, n);
            preface -= skip;
            decoder.push(buf.subarray(skip, n));
            if (preface === 0 && !answered) {
              answered = true;
              await writeAll(conn, HELLO); // as a server: preface, settings
            }
            let frame;
            while ((frame = decoder.next()) !== undefined) {
              if (frame.type === FrameType.Request) {
                requests++;
                return; // drop the connection with the request unanswered
              }
            }
          }
        } catch {
          // the client went away
        } finally {
          conns.delete(conn);
          conn.close();
        }
      })();
    }
  })();
  return {
    port: listener.addr.port,
    requests: () => requests,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving;
      for (const conn of conns) conn.close();
    },
  };
}

Deno.test("an idempotent call is sent to exactly maxAttempts endpoints", async () => {
  await using live = start();
  await using first = dropper();
  await using second = dropper();
  const members = [
    { host: HOST, port: first.port },
    { host: HOST, port: second.port },
    { host: HOST, port: live.addr.port },
  ];
  // Two endpoints that drop the call, then the live one: the third attempt
  // reaches it.
  {
    await using channel = new DistributedChannel({
      membership: new StaticMembership(members),
      balancer: firstCandidate,
      idempotent: ["echo"],
      maxAttempts: 3,
    });
    assert.equal(await channel.call("echo", ["third"]), "third");
    assert.equal(first.requests() + second.requests(), 2);
  }
  // One attempt fewer: the call fails with the second drop, never sent on.
  {
    await using channel = new DistributedChannel({
      membership: new StaticMembership(members),
      balancer: firstCandidate,
      idempotent: ["echo"],
      maxAttempts: 2,
    });
    await assert.rejects(
      channel.call("echo", ["never"]),
      (e: unknown) => e instanceof ConnectionError && e.written,
    );
    assert.equal(first.requests() + second.requests(), 4);
  }
  {
    await using channel = new DistributedChannel({
      membership: new StaticMembership(members),
      balancer: firstCandidate,
      idempotent: ["echo"],
      maxAttempts: 1,
    });
    await assert.rejects(
      channel.call("echo", ["never"]),
      (e: unknown) => e instanceof ConnectionError && e.written,
    );
    assert.equal(first.requests() + second.requests(), 5);
  }
});

Deno.test("refused connects do not count towards maxAttempts while other endpoints remain", async () => {
  await using live = start();
  await using channel = new DistributedChannel({
    membership: new StaticMembership([
      { host: HOST, port: closedPort() },
      { host: HOST, port: closedPort() },
      { host: HOST, port: live.addr.port },
    ]),
    balancer: firstCandidate,
    maxAttempts: 1,
  });
  assert.equal(await channel.call("echo", ["reached"]), "reached");
});

Deno.test("the ejection back-off starts at exactly its base, doubles per ejection and stops at its maximum", () => {
  const mid = () => 0.5; // jitter neutral
  const range = (random: () => number) => ({
    minTimeout: 100,
    maxTimeout: 800,
    random,
  });
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((n) => backoff(n, range(mid))),
    [100, 100, 200, 400, 800, 800],
  );
  // Jitter: within 20% either way, never past the maximum.
  assert.equal(backoff(2, range(() => 0)), 160);
  assert.equal(Math.round(backoff(2, range(() => 1))), 240);
  assert.equal(backoff(4, range(() => 1)), 800);
  assert.equal(backoff(4, range(() => 0)), 640);
});
