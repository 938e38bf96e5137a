/**
 * The server's accept loop (`src/server/_acceptor.ts`): the connection
 * limits in total and per address at their boundary and one past (a real
 * server on 127.0.0.1, a scripted client), room again once a connection
 * leaves, the exact refusal bytes and the accept errors (a scripted
 * listener and fake timers: the back-off is fired by the test, never slept).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Acceptor } from "../../src/server/_acceptor.ts";
import { RunningHandlers } from "../../src/server/_running.ts";
import type { ServerInternals } from "../../src/server/_server_connection.ts";
import { type RpcServer, serve } from "../../src/server/server.ts";
import {
  encodeFrame,
  encodeSettings,
  FrameType,
  PREFACE,
  PREFACE_SIZE,
} from "../../src/protocol/frame.ts";
import { concat, HELLO, rawFrames, writeAll } from "../_core_helpers.ts";
import { decodeFrames } from "../_frames.ts";
import { stillPending, waitFor, within } from "../_wait.ts";
import { withFakeTimers } from "../_timers.ts";

const HOST = "127.0.0.1";
const text = new TextDecoder();

/**
 * Opens a connection and waits until the server took it in or refused it
 * (its connection count or its reported errors grew). A taken one is
 * `"served"` once a ping is answered; a refused one (nothing written to it,
 * so its close is clean) gives the reason of its goaway.
 */
async function attempt(server: RpcServer, errors: Error[]): Promise<{
  outcome: string;
  conn: Deno.Conn;
}> {
  const [served, reported] = [server.connections, errors.length];
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await waitFor(
    () => server.connections > served || errors.length > reported,
    "the server to take or refuse the connection",
  );
  const frames = rawFrames(conn);
  const refused = errors.length > reported;
  if (!refused) {
    await writeAll(conn, concat(HELLO, encodeFrame(FrameType.Ping, 7)));
  }
  await frames.preface();
  await frames.next(FrameType.Settings);
  const next = await frames.next([FrameType.Pong, FrameType.Goaway]);
  return {
    outcome: next.type === FrameType.Pong
      ? "served"
      : text.decode(next.payload),
    conn,
  };
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // closed already
    }
  }
}

Deno.test('acceptor: exactly maxConnections are served, one more gets goaway "Too many connections"; room again once one leaves', async () => {
  const errors: Error[] = [];
  await using server = serve({ ok: () => 1 }, {
    hostname: HOST,
    maxConnections: 3,
    maxConnectionsPerAddress: 0,
    onError: (e) => void errors.push(e),
  });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const a = await attempt(server, errors);
      conns.push(a.conn);
      assert.equal(a.outcome, "served", `connection ${i + 1}`);
    }
    const extra = await attempt(server, errors);
    conns.push(extra.conn);
    assert.equal(extra.outcome, "Too many connections");
    assert.equal(server.connections, 3);
    assert.match(
      errors.map((e) => e.message).join("\n"),
      /^Connection from 127\.0\.0\.1:\d+ refused: limit of 3 connections reached$/m,
    );
    conns[0]!.close();
    await waitFor(() => server.connections === 2, "the server to see it go");
    const again = await attempt(server, errors);
    conns.push(again.conn);
    assert.equal(again.outcome, "served");
  } finally {
    closeAll(conns.slice(1));
  }
});

Deno.test("acceptor: exactly maxConnectionsPerAddress from one address are served, one more is refused; the count follows closes", async () => {
  const errors: Error[] = [];
  await using server = serve({ ok: () => 1 }, {
    hostname: HOST,
    maxConnections: 10,
    maxConnectionsPerAddress: 2,
    onError: (e) => void errors.push(e),
  });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const a = await attempt(server, errors);
      conns.push(a.conn);
      assert.equal(a.outcome, "served");
    }
    const extra = await attempt(server, errors);
    conns.push(extra.conn);
    assert.equal(extra.outcome, "Too many connections from this address");
    assert.match(
      errors.map((e) => e.message).join("\n"),
      /^Connection from 127\.0\.0\.1:\d+ refused: limit of 2 connections from 127\.0\.0\.1 reached$/m,
    );
    // Both leave: the address may open two again (its count went to zero).
    conns[0]!.close();
    conns[1]!.close();
    await waitFor(() => server.connections === 0, "both to go");
    for (let i = 0; i < 2; i++) {
      const a = await attempt(server, errors);
      conns.push(a.conn);
      assert.equal(a.outcome, "served", `again ${i + 1}`);
    }
    const third = await attempt(server, errors);
    conns.push(third.conn);
    assert.equal(third.outcome, "Too many connections from this address");
    // One leaves: exactly one more.
    conns.at(-2)!.close();
    await waitFor(() => server.connections === 1, "one to go");
    const one = await attempt(server, errors);
    conns.push(one.conn);
    assert.equal(one.outcome, "served");
    const over = await attempt(server, errors);
    conns.push(over.conn);
    assert.equal(over.outcome, "Too many connections from this address");
  } finally {
    closeAll(conns.slice(2));
  }
});

Deno.test("acceptor: the total limit is checked before the per-address one", async () => {
  const errors: Error[] = [];
  await using server = serve({ ok: () => 1 }, {
    hostname: HOST,
    maxConnections: 1,
    maxConnectionsPerAddress: 1,
    onError: (e) => void errors.push(e),
  });
  const first = await attempt(server, errors);
  const second = await attempt(server, errors);
  try {
    assert.equal(first.outcome, "served");
    assert.equal(second.outcome, "Too many connections");
  } finally {
    closeAll([first.conn, second.conn]);
  }
});

/** A connection the scripted listener hands out. */
function fakeConn(port: number, held = false) {
  const written: Uint8Array[] = [];
  const write = Promise.withResolvers<void>();
  if (!held) write.resolve();
  const eof = Promise.withResolvers<null>();
  let closed = false;
  const noDelay: boolean[] = [];
  const conn = {
    remoteAddr: { transport: "tcp", hostname: "10.0.0.1", port },
    write: async (bytes: Uint8Array) => {
      written.push(bytes.slice());
      await write.promise;
      return bytes.length;
    },
    read: () => eof.promise,
    setNoDelay: (on: boolean) => void noDelay.push(on),
    close: () => {
      closed = true;
      eof.resolve(null);
    },
  };
  return {
    conn: conn as unknown as Deno.Conn,
    written,
    noDelay,
    /** Lets a held write complete. */
    wrote: () => write.resolve(),
    closed: () => closed,
  };
}

/**
 * A listener whose `accept()` follows `script`: each entry is thrown, or
 * handed out as a connection; after it, `accept()` waits until `close()`,
 * which rejects it with `BadResource`.
 */
function scriptedListener(script: unknown[]) {
  const pending = () => {
    const p = Promise.withResolvers<never>();
    p.promise.catch(() => {}); // nobody may be accepting when it closes
    return p;
  };
  let closed = pending();
  let accepts = 0;
  const listener = {
    addr: { transport: "tcp", hostname: HOST, port: 1 },
    accept(): Promise<Deno.Conn> {
      const next = script[accepts++];
      if (next === undefined) return closed.promise;
      if (next instanceof Error) return Promise.reject(next);
      return Promise.resolve(next as Deno.Conn);
    },
    close() {
      closed.reject(new Deno.errors.BadResource("closed"));
      closed = pending();
    },
  };
  return {
    listener: listener as unknown as Deno.Listener,
    accepts: () => accepts,
  };
}

function internals(errors: Error[]): ServerInternals {
  return {
    table: new Map(),
    running: new RunningHandlers(),
    handlers: {},
    codecs: [],
    options: {},
    inheritDeadline: true,
    notServing: () => undefined,
    settings: encodeSettings({
      maxFrameSize: 1024,
      codecs: ["json"],
      maxInFlight: 5,
    }),
    onError: (e: Error) => void errors.push(e),
  } as unknown as ServerInternals;
}

Deno.test("acceptor: a refused connection gets the preface, the settings and a goaway with the reason, then is closed", async () => {
  const errors: Error[] = [];
  const a = fakeConn(1);
  const b = fakeConn(2);
  const { listener } = scriptedListener([a.conn, b.conn]);
  const acceptor = new Acceptor(listener, internals(errors), {
    maxConnections: 0,
  });
  await waitFor(() => b.closed(), "both refused");
  await within(acceptor.refused(), 2000, "the refusals");
  await acceptor.stop();
  assert.equal(acceptor.connections.size, 0);
  assert.equal(a.written.length, 1, "one write");
  const bytes = a.written[0]!;
  assert.deepEqual([...bytes.subarray(0, PREFACE_SIZE)], [...PREFACE]);
  const frames = decodeFrames(bytes.subarray(PREFACE_SIZE));
  assert.deepEqual(frames.map((f) => [f.type, f.id]), [
    [FrameType.Settings, 0],
    [FrameType.Goaway, 0],
  ]);
  assert.deepEqual(
    [...frames[0]!.payload],
    [...internals([]).settings],
  );
  assert.equal(text.decode(frames[1]!.payload), "Too many connections");
  assert.equal(a.closed(), true);
  assert.deepEqual(errors.map((e) => e.message), [
    "Connection from 10.0.0.1:1 refused: limit of 0 connections reached",
    "Connection from 10.0.0.1:2 refused: limit of 0 connections reached",
  ]);
});

Deno.test("acceptor: accept errors are reported unless they concern one connection, backed off, and stop() cuts the back-off short", async () => {
  const errors: Error[] = [];
  const boom = new Error("boom");
  const { listener, accepts } = scriptedListener([
    new Deno.errors.ConnectionReset("reset"),
    new Deno.errors.ConnectionAborted("aborted"),
    new Deno.errors.ConnectionRefused("refused"),
    new Deno.errors.NotConnected("not connected"),
    boom,
    boom,
  ]);
  await withFakeTimers(async (timers) => {
    const acceptor = new Acceptor(listener, internals(errors), {});
    // Each failure waits for its back-off timer before accepting again.
    for (let i = 1; i <= 6; i++) {
      await waitUntil(() => timers.length === i);
      assert.equal(accepts(), i);
      const ms = timers[i - 1]!.ms;
      const period = Math.min(1000, 5 * 2 ** (i - 1));
      // clock-ok: the delay the fake timer was armed with, not time
      assert.ok(
        ms >= period * 0.8 && ms <= Math.min(1000, period * 1.2),
        `${i}: ${ms}`,
      );
      if (i < 6) timers[i - 1]!.fire();
    }
    // The sixth back-off is pending: stop() ends the loop without it.
    await acceptor.stop();
    assert.equal(accepts(), 6);
  });
  assert.deepEqual(errors.map((e) => e.message), [
    "Cannot accept connections: Error: boom",
    "Cannot accept connections: Error: boom",
  ]);
  assert.equal(errors[0]!.cause, boom);
});

Deno.test("acceptor: a good accept resets the back-off; a listener closed under the loop ends it", async () => {
  const errors: Error[] = [];
  const a = fakeConn(1);
  const { listener, accepts } = scriptedListener([
    new Error("one"),
    new Error("two"),
    a.conn,
    new Error("three"),
  ]);
  await withFakeTimers(async (timers) => {
    const acceptor = new Acceptor(listener, internals(errors), {
      maxConnections: 0,
    });
    await waitUntil(() => timers.length === 1);
    timers[0]!.fire();
    await waitUntil(() => timers.length === 2);
    // clock-ok: the delay the fake timer was armed with, not time
    assert.ok(timers[1]!.ms >= 8, "the second back-off is longer");
    timers[1]!.fire();
    await waitUntil(() => timers.length === 3);
    assert.equal(accepts(), 4);
    // clock-ok: the delay the fake timer was armed with, not time
    assert.ok(
      timers[2]!.ms <= 6,
      `back to the first back-off: ${timers[2]!.ms}`,
    );
    await acceptor.stop();
    // A listener closed under the loop (BadResource) ends it: no report,
    // no back-off, no further accept.
    const gone = scriptedListener([new Deno.errors.BadResource("gone")]);
    const ended = new Acceptor(gone.listener, internals(errors), {});
    await waitUntil(() => gone.accepts() === 1);
    await waitUntil(() => false, 50).catch(() => {});
    assert.equal(gone.accepts(), 1);
    assert.equal(timers.length, 3);
    await ended.stop();
  });
  // Two accept errors, one refusal (maxConnections 0), one more error.
  assert.deepEqual(errors.map((e) => e.message), [
    "Cannot accept connections: Error: one",
    "Cannot accept connections: Error: two",
    "Connection from 10.0.0.1:1 refused: limit of 0 connections reached",
    "Cannot accept connections: Error: three",
  ]);
});

/** Polls `done` for up to `turns` rounds of microtasks (no timer). */
async function waitUntil(done: () => boolean, turns = 1000): Promise<void> {
  for (let i = 0; i < turns && !done(); i++) {
    // wait-ok: a microtask turn, bounded by the loop count (no timer)
    await new Promise((resolve) => queueMicrotask(() => resolve(undefined)));
    await Promise.resolve();
  }
  assert.ok(done(), `the condition within ${turns} turns`);
}

Deno.test("acceptor: refused() waits until every refused connection's goaway is written", async () => {
  const a = fakeConn(1, true);
  const { listener } = scriptedListener([a.conn]);
  const acceptor = new Acceptor(listener, internals([]), { maxConnections: 0 });
  await waitFor(() => a.written.length === 1, "the refusal's write");
  const refused = acceptor.refused();
  assert.equal(await stillPending(refused), true, "the write is held");
  assert.equal(a.closed(), false);
  a.wrote();
  await within(refused, 2000, "the refusals");
  assert.equal(a.closed(), true);
  await acceptor.stop();
});

Deno.test("acceptor: an accepted connection is open, counted, and has Nagle's delay off", async () => {
  const a = fakeConn(1);
  const b = fakeConn(2);
  const { listener } = scriptedListener([a.conn, b.conn]);
  const acceptor = new Acceptor(listener, internals([]), {
    maxConnections: 5,
    maxConnectionsPerAddress: 1,
  });
  await waitFor(() => b.closed(), "the second from the address refused");
  await acceptor.stop();
  assert.equal(acceptor.connections.size, 1);
  assert.deepEqual(a.noDelay, [true]);
  assert.deepEqual(b.noDelay, [], "a refused one is not tuned");
  for (const sc of acceptor.connections) sc.close();
  await waitFor(() => acceptor.connections.size === 0, "the connection to go");
});
