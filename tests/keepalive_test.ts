/**
 * Client keepalive as the channel relies on it: a silent connection with
 * calls waiting is pinged, a healthy server answers even while its handler
 * runs, `ping()` proves a server alive (the channel's probe), and a busy
 * connection whose pong is queued behind megabytes of responses is not
 * closed as dead (issue 21 finding 11).
 */
import assert from "node:assert/strict";
import {
  Connection,
  type ConnectionCloseDetail,
} from "../src/client/connection.ts";
import {
  Keepalive,
  type KeepaliveLink,
  MAX_KEEPALIVE_EXTENSIONS,
} from "../src/client/_keepalive.ts";
import { ConnectionError } from "../src/errors.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { serve } from "../src/server/server.ts";
import {
  closedPort,
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

/**
 * A connection for a {@linkcode Keepalive} unit test: counts pings and the
 * checks of an unanswered ping (each consults `started()`), and reports
 * death; `sent` says whether pings reach the socket.
 */
function fakeLink(sent: () => boolean): KeepaliveLink & {
  pings: number;
  checks: number;
  /** Resolves on the `n`th check of an unanswered ping. */
  checked(n: number): Promise<void>;
  /** Resolves on the `n`th ping. */
  pinged(n: number): Promise<void>;
  died: Promise<void>;
  isDead: boolean;
} {
  const died = Promise.withResolvers<void>();
  let waiters: { ready: () => boolean; resolve: () => void }[] = [];
  const wake = () => {
    waiters = waiters.filter((w) => {
      if (w.ready()) w.resolve();
      return !w.ready();
    });
  };
  const until = (ready: () => boolean) =>
    ready() ? Promise.resolve() : new Promise<void>((resolve) => {
      waiters.push({ ready, resolve });
    });
  const link = {
    pings: 0,
    checks: 0,
    isDead: false,
    died: died.promise,
    inFlight: () => 1,
    started: () => {
      link.checks++;
      wake();
      return sent() ? Infinity : 0;
    },
    ping: () => {
      link.pings++;
      wake();
      return link.pings;
    },
    dead: () => {
      link.isDead = true;
      died.resolve();
    },
    checked: (n: number) => until(() => link.checks >= n),
    pinged: (n: number) => until(() => link.pings >= n),
  };
  return link;
}

/** Periods for the unit tests; a frozen clock: no tick is ever "late". */
const QUICK = { interval: 5, timeout: 5, idleInterval: 5, now: () => 0 };

Deno.test("Keepalive declares a peer dead at the first unanswered ping when nothing says it is alive", async () => {
  const link = fakeLink(() => true);
  const keepalive = new Keepalive("unit:1", link, QUICK);
  await within(link.died, 5000, "the peer to be declared dead");
  keepalive.stop();
  assert.equal(link.pings, 1);
  assert.equal(link.checks, 1);
});

Deno.test("Keepalive waits for a ping still queued behind our own output, a bounded number of timeouts", async () => {
  // Never reaches the socket: waited for, then declared dead all the same.
  const stuck = fakeLink(() => false);
  const keepalive = new Keepalive("unit:2", stuck, QUICK);
  await within(stuck.died, 5000, "the bound to run out");
  keepalive.stop();
  assert.equal(stuck.checks, MAX_KEEPALIVE_EXTENSIONS + 1);
  // Reaches the socket after three checks, and is answered: alive.
  let sent = false;
  const slow = fakeLink(() => sent);
  const watching = new Keepalive("unit:2", slow, QUICK);
  await within(slow.checked(3), 5000, "three checks of the queued ping");
  sent = true;
  watching.received();
  watching.pong();
  await within(slow.pinged(2), 5000, "the next keepalive round");
  watching.stop();
  assert.equal(slow.isDead, false);
});

Deno.test("Keepalive waits while another connection to the same endpoint hears from the peer, a bounded number of timeouts", async () => {
  const silent = fakeLink(() => true);
  const sibling = fakeLink(() => true);
  const keepalive = new Keepalive("unit:3", silent, QUICK);
  const other = new Keepalive("unit:3", sibling, {
    ...QUICK,
    interval: 0, // not ticking: only its reads matter here
  });
  // The sibling hears from the peer before each check of the silent one.
  const hearing = (async () => {
    await silent.pinged(1);
    for (let n = 1; n <= MAX_KEEPALIVE_EXTENSIONS; n++) {
      other.received();
      await silent.checked(n);
    }
  })();
  await within(silent.died, 5000, "the bound to run out");
  await hearing;
  keepalive.stop();
  other.stop();
  assert.equal(silent.checks, MAX_KEEPALIVE_EXTENSIONS + 1);
  // Another endpoint's reads are no evidence.
  const alone = fakeLink(() => true);
  const lonely = new Keepalive("unit:4", alone, QUICK);
  const stranger = new Keepalive("unit:5", fakeLink(() => true), {
    ...QUICK,
    interval: 0,
  });
  stranger.received();
  await within(alone.died, 5000, "the peer to be declared dead");
  lonely.stop();
  stranger.stop();
  assert.equal(alone.checks, 1);
});

Deno.test("Keepalive does not blame the peer for a timer that fired late because this process froze", async () => {
  let now = 0;
  const link = fakeLink(() => true);
  const keepalive = new Keepalive("unit:6", link, {
    ...QUICK,
    // Each reading of the clock is 1 s later: every tick is "late".
    now: () => (now += 1000),
  });
  await within(link.died, 5000, "the bound to run out");
  keepalive.stop();
  assert.equal(link.checks, MAX_KEEPALIVE_EXTENSIONS + 1);
});

Deno.test("invalid keepalive periods are a RangeError before anything is opened", async () => {
  // Nothing listens there: a connect attempt would fail differently.
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
