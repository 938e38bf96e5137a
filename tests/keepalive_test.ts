/**
 * Client keepalive as the channel relies on it: a silent connection with
 * calls waiting is pinged, a healthy server answers even while its handler
 * runs, `ping()` proves a server alive (the channel's probe), and a busy
 * connection whose pong is queued behind megabytes of responses is not
 * closed as dead (issue 21 finding 11). The keepalive's decisions on a fake
 * clock, each at its boundary: tests/client/keepalive_unit_test.ts.
 */
import assert from "node:assert/strict";
import {
  Connection,
  type ConnectionCloseDetail,
} from "../src/client/connection.ts";
import { ConnectionError } from "../src/errors.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { serve } from "../src/server/server.ts";
import {
  delay,
  HELLO,
  rawFrames,
  startChildServer,
  writeAll,
} from "./_core_helpers.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";

/**
 * A fake server on one port: answers the preface; then, per accepted
 * connection in order, either answers pings (`"answer"`) or reads and
 * never writes (`"silent"`). Counts the pings it received per connection.
 */
function fakeServer(modes: ("answer" | "silent")[]): {
  port: number;
  pings: number[];
  /** Resolves once connection `i` received `n` pings. */
  pinged(i: number, n: number): Promise<void>;
  close(): Promise<void>;
} {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const pings = modes.map(() => 0);
  const waiters: { i: number; n: number; resolve: () => void }[] = [];
  const conns: Deno.Conn[] = [];
  const serveOne = async (conn: Deno.Conn, i: number) => {
    await writeAll(conn, HELLO);
    // A client's stream is a preface and frames, like a server's.
    const frames = rawFrames(conn);
    try {
      while (true) {
        const ping = await frames.next(FrameType.Ping);
        pings[i]!++;
        for (const w of waiters) if (w.i === i && pings[i]! >= w.n) w.resolve();
        if (modes[i] === "answer") {
          await writeAll(
            conn,
            encodeFrame(FrameType.Pong, ping.id, ping.payload),
          );
        }
      }
    } catch {
      // the client closed (or went quiet for seconds)
    }
    conn.close();
  };
  const serving = (async () => {
    const done: Promise<void>[] = [];
    for (let i = 0; i < modes.length; i++) {
      const conn = await listener.accept();
      conns.push(conn);
      done.push(serveOne(conn, i));
    }
    await Promise.all(done);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    pings,
    pinged: (i, n) =>
      pings[i]! >= n ? Promise.resolve() : new Promise((resolve) => {
        waiters.push({ i, n, resolve });
      }),
    async close() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

/** The `"close"` event's detail. */
function closeDetail(conn: Connection): Promise<ConnectionCloseDetail> {
  return new Promise((resolve) =>
    conn.addEventListener(
      "close",
      (e) => resolve((e as CustomEvent<ConnectionCloseDetail>).detail),
      { once: true },
    )
  );
}

Deno.test("a call longer than several keepalive rounds completes: the busy server answers the pings", async () => {
  await using server = serve({
    slow: async () => {
      // sleep-ok: handler work (a slow method), not a wait for an event, spanning several keepalive rounds
      await delay(600);
      return "done";
    },
  }, { hostname: HOST });
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { keepaliveInterval: 50, keepaliveTimeout: 2000 },
  );
  assert.equal(await conn.call("slow", [], { timeout: 5000 }), "done");
  assert.equal(conn.isClosed, false);
});

Deno.test("Connection.ping() resolves on the pong and rejects once the connection is closed", async () => {
  await using server = serve({ ok: () => true }, { hostname: HOST });
  const conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await conn.ping(2000);
  // Any length: no early rejection, and Infinity arms no timer.
  await conn.ping(2 ** 31);
  await conn.ping(Infinity);
  conn.close();
  await conn.finished;
  await assert.rejects(
    conn.ping(2000),
    (error: unknown) => error instanceof ConnectionError && !error.written,
  );
});

Deno.test("a quiet but healthy connection is pinged and stays open while its pongs come back", async () => {
  const server = fakeServer(["answer"]);
  const conn = await Connection.connect(
    { hostname: HOST, port: server.port },
    {
      keepaliveInterval: 10,
      keepaliveTimeout: 200,
      idleKeepaliveInterval: 20,
    },
  );
  // Idle (no call): pinged every idleKeepaliveInterval; five answered pings
  // are several keepalive rounds.
  await within(server.pinged(0, 5), 10_000, "five idle pings");
  assert.equal(conn.isClosed, false);
  conn.close();
  await conn.finished;
  await server.close();
});

Deno.test("busy connections are never closed as dead: 16 connections x 4 in flight x 2.8 MiB results with a short keepalive", async () => {
  // The server is a separate process: its responses queue up behind each
  // other on the loopback link; a connection may hear nothing for several
  // of these short keepalive periods while its siblings receive.
  await using server = await startChildServer("bulk_server.ts");
  const size = Math.floor(2.8 * 1024 * 1024);
  const conns = await Promise.all(
    Array.from(
      { length: 16 },
      () =>
        Connection.connect({ hostname: HOST, port: server.port }, {
          keepaliveInterval: 100,
          keepaliveTimeout: 200,
        }),
    ),
  );
  const closes = conns.map(closeDetail);
  const failures: string[] = [];
  let answered = 0;
  await within(
    Promise.all(conns.map(async (conn) => {
      let left = 12; // per connection, 4 at a time
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (left-- > 0) {
          try {
            const bytes = await conn.call("bulk", [size], { timeout: 60_000 });
            assert.equal((bytes as Uint8Array).length, size);
            answered++;
          } catch (error) {
            failures.push((error as Error).message);
          }
        }
      }));
    })),
    120_000,
    "192 bulk calls",
  );
  assert.deepEqual(failures, []);
  assert.equal(answered, 16 * 12);
  assert.deepEqual(conns.filter((conn) => conn.isClosed).length, 0);
  for (const conn of conns) conn.close();
  // Each closed by us, none with an error.
  for (const detail of await Promise.all(closes)) {
    assert.equal(detail.error, undefined);
  }
});

Deno.test("a silent connection is still declared dead while a sibling to the same endpoint hears from it, after a bounded wait", async () => {
  const server = fakeServer(["answer", "silent"]);
  const options = {
    keepaliveInterval: 10,
    keepaliveTimeout: 20,
    idleKeepaliveInterval: 10,
  };
  const healthy = await Connection.connect(
    { hostname: HOST, port: server.port },
    options,
  );
  const dead = await Connection.connect(
    { hostname: HOST, port: server.port },
    options,
  );
  const call = dead.call("anything", [], { timeout: 60_000 });
  await assert.rejects(
    within(call, 10_000, "the dead peer to be detected"),
    (e: unknown) =>
      e instanceof ConnectionError && e.written &&
      /no answer to a ping within 20 ms/.test(e.message),
  );
  // The sibling answered all along (it is what made the other one wait).
  assert.ok(server.pings[0]! > 0);
  assert.equal(healthy.isClosed, false);
  healthy.close();
  await Promise.all([healthy.finished, dead.finished]);
  await server.close();
});
