/**
 * Every limit and count at its boundary: exactly at the limit works, one
 * past it is refused, on each side of the wire that enforces it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../src/channel.ts";
import { backoff } from "../src/channel/_backoff.ts";
import { Connection } from "../src/connection.ts";
import {
  ConnectionError,
  ProtocolError,
  ServerClosingError,
} from "../src/errors.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { StaticMembership } from "../src/registry/static.ts";
import { type RpcServer, serve } from "../src/server.ts";
import {
  concat,
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
  // length = 5 (type, id) + 1 + "echo" + '["' + n × "x" + '"]'
  const frame = requestFrame(id, "echo", ["x".repeat(length - 14)]);
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
  await writeAll(at, concat(PREFACE, echoOfLength(1, LIMIT)));
  const result = await frames.next(FrameType.Result);
  assert.equal(result.id, 1);
  at.close();
  assert.deepEqual(errorsOf(server), []);

  const past = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await writeAll(past, concat(PREFACE, echoOfLength(1, LIMIT + 1)));
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
  const text = "x".repeat(LIMIT - 14);
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

Deno.test("the client accepts a response exactly at its maxFrameSize and drops the connection on one byte more", async () => {
  await using server = start();
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { maxFrameSize: LIMIT },
  );
  // A result's length field: 5 + '"' + n × "x" + '"'.
  assert.equal(await conn.call("make", [LIMIT - 7]), "x".repeat(LIMIT - 7));
  await assert.rejects(
    within(conn.call("make", [LIMIT - 6]), 5000, "the oversized reply"),
    (e: unknown) =>
      (e instanceof ProtocolError || e instanceof ConnectionError) &&
      new RegExp(`length ${LIMIT + 1} exceeds the limit of ${LIMIT}`).test(
        String(e.message) + String((e as Error).cause),
      ),
  );
  await within(conn.closed, 5000, "the client to close the connection");
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

Deno.test("the server runs exactly maxInFlightPerConnection calls and closes the connection on one more", async () => {
  const server = start({ maxInFlightPerConnection: 3 });
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const frames = rawFrames(conn);
  await writeAll(
    conn,
    concat(PREFACE, ...[1, 2, 3].map((id) => requestFrame(id, "wait", []))),
  );
  await frames.preface();
  // A ping's round trip after the three: they are all in flight, none
  // refused.
  await writeAll(conn, encodeFrame(FrameType.Ping, 9));
  assert.equal((await frames.next(FrameType.Pong)).id, 9);
  assert.deepEqual(errorsOf(server), []);
  await writeAll(conn, requestFrame(4, "wait", []));
  await within(readToEnd(conn), 5000, "the server to close the connection");
  conn.close();
  assert.match(errorsOf(server).join("\n"), /more than 3 calls in flight/);
  (server as unknown as { release: () => void }).release();
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
      await within(c.closed, 5000, "the refused connection to close");
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
        let seen = 0;
        try {
          while (seen < PREFACE.length) {
            const n = await conn.read(buf);
            if (n === null) return;
            seen += n;
          }
          await writeAll(conn, PREFACE);
          if (seen === PREFACE.length && (await conn.read(buf)) === null) {
            return;
          }
          requests++;
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
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((n) => backoff(n, 100, 800, mid)),
    [100, 100, 200, 400, 800, 800],
  );
  // Jitter: within 20% either way, never past the maximum.
  assert.equal(backoff(2, 100, 800, () => 0), 160);
  assert.equal(Math.round(backoff(2, 100, 800, () => 1)), 240);
  assert.equal(backoff(4, 100, 800, () => 1), 800);
  assert.equal(backoff(4, 100, 800, () => 0), 640);
});
