/**
 * The client connection as a unit, on an in-memory socket facing a
 * scripted server (tests/client/_scripted_server.ts): answers matched by
 * id, every frame a server may send and the ones it may not, `goaway` and
 * EOF (a call pending at EOF after `goaway` fails, it never hangs nor
 * succeeds), deadlines and aborts with their cancel frames, the in-flight
 * limit and the frame limits at their boundaries, pings and pongs (payload
 * and pong queue at their limits), and the close paths with their
 * "written" flags. The real-socket tests are in tests/connection_test.ts.
 */
import assert from "node:assert/strict";
import {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  ErrorRegistry,
  ProtocolError,
  RemoteError,
  ServerClosingError,
} from "../../src/errors.ts";
import type { ConnectionCloseDetail } from "../../src/client/options.ts";
import { callUnwrapped, type Connection } from "../../src/client/connection.ts";
import {
  encodeFrame,
  FrameType,
  MAX_PING_PAYLOAD,
} from "../../src/protocol/frame.ts";
import type { ClientInterceptor } from "../../src/_interceptors.ts";
import { stillPending, within } from "../_wait.ts";
import { concat } from "../_core_helpers.ts";
import { FakeClock } from "../_timers.ts";
import { MAX_KEEPALIVE_EXTENSIONS } from "../../src/client/_keepalive.ts";
import { QUICK, type Scripted, scripted } from "./_scripted_server.ts";

/** The `"close"` event's detail. */
function closeDetail(conn: Connection): Promise<ConnectionCloseDetail> {
  return within(
    new Promise((resolve) =>
      conn.addEventListener(
        "close",
        (e) => resolve((e as CustomEvent<ConnectionCloseDetail>).detail),
        { once: true },
      )
    ),
    QUICK,
    "the close event",
  );
}

/** Asserts that `promise` rejects with `type` and a message matching `re`. */
async function rejectsWith(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => Error,
  re: RegExp,
  what: string,
): Promise<Error> {
  let caught: unknown;
  await assert.rejects(within(promise, QUICK, what), (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof type, `${what}: ${caught}`);
  assert.match((caught as Error).message, re, what);
  return caught as Error;
}

Deno.test("connection: answers are matched by id in any order; an answer for an unknown id is ignored", async () => {
  await using s = scripted();
  const a = s.conn.call("a", [1], { timeout: 5000 });
  const b = s.conn.call("b", ["x", null]);
  const ra = await s.request();
  const rb = await s.request();
  assert.deepEqual([ra.method, ra.params], ["a", [1]]);
  assert.deepEqual([rb.method, rb.params, rb.timeout], [
    "b",
    ["x", null],
    undefined,
  ]);
  assert.equal(
    ra.timeout !== undefined && ra.timeout <= 5000 && ra.timeout > 4000,
    true,
  );
  assert.notEqual(ra.id, rb.id);
  assert.equal(s.conn.inFlight, 2);
  s.result(rb.id + ra.id + 100, "stray");
  s.result(rb.id, "B");
  assert.equal(await within(b, QUICK, "b"), "B");
  assert.equal(s.conn.inFlight, 1);
  assert.equal(await stillPending(a), true);
  s.result(ra.id, { v: 1 });
  assert.deepEqual(await within(a, QUICK, "a"), { v: 1 });
  assert.equal(s.conn.inFlight, 0);
  // An answer to a settled call is ignored too.
  s.result(ra.id, "again");
  s.error(ra.id, { name: "Error", message: "late" });
  const c = s.conn.call("c", []);
  s.result((await s.request()).id, 3);
  assert.equal(await within(c, QUICK, "c"), 3);
  assert.equal(s.conn.isClosed, false);
});

Deno.test("connection: a result that does not decode fails that call alone with a ProtocolError", async () => {
  await using s = scripted();
  const bad = s.conn.call("bad", []);
  const good = s.conn.call("good", []);
  const rbad = await s.request();
  const rgood = await s.request();
  s.send(FrameType.Result, rbad.id, new TextEncoder().encode("{"));
  await rejectsWith(
    bad,
    ProtocolError,
    /^Cannot call method "bad": cannot decode result: /,
    "the undecodable result",
  );
  assert.equal(s.conn.inFlight, 1);
  s.result(rgood.id, "ok");
  assert.equal(await within(good, QUICK, "good"), "ok");
  assert.equal(s.conn.isClosed, false);
});

Deno.test("connection: error replies revive the registered class with the call's method and target", async () => {
  class InvalidOperation extends Error {
    override name = "InvalidOperation";
  }
  await using s = scripted({
    errors: new ErrorRegistry().register(InvalidOperation),
  });
  const known = s.conn.call("divide", [1, 0]);
  const unknown = s.conn.call("other", []);
  const rk = await s.request();
  const ru = await s.request();
  s.error(rk.id, { name: "InvalidOperation", message: "No" });
  s.error(ru.id, { name: "Weird", message: "odd" });
  const e1 = await rejectsWith(known, InvalidOperation, /No/, "registered");
  assert.equal(e1.message, "No");
  const e2 = await rejectsWith(unknown, RemoteError, /odd/, "unregistered");
  assert.equal((e2 as RemoteError).remoteName, "Weird");
  assert.match(e2.message, /memory:\d+/);
  assert.match(e2.message, /"other"/);
});

Deno.test("connection: malformed error replies fail their call alone", async () => {
  await using s = scripted();
  const payloads = [
    new TextEncoder().encode("{"),
    new TextEncoder().encode('{"name":1,"message":"m"}'),
    new TextEncoder().encode('{"name":"E","message":2}'),
    new TextEncoder().encode("null"),
  ];
  const calls = payloads.map((_, i) => s.conn.call(`m${i}`, []));
  for (const payload of payloads) {
    s.send(FrameType.Error, (await s.request()).id, payload);
  }
  for (const [i, call] of calls.entries()) {
    const e = await rejectsWith(
      call,
      ProtocolError,
      new RegExp(
        `^Cannot call method "m${i}": cannot read the error reply from memory:\\d+: `,
      ),
      `malformed reply ${i}`,
    );
    if (i > 0) assert.match(e.message, /: expected \{ name, message \}$/);
  }
  assert.equal(s.conn.isClosed, false);
  assert.equal(s.conn.inFlight, 0);
});

Deno.test("connection: a ServerClosingError answer is 'not run' only after a goaway", async () => {
  await using s = scripted();
  const before = s.conn.call("x", []);
  const after = s.conn.call("y", []);
  const rb = await s.request();
  const ra = await s.request();
  const closing = { name: "ServerClosingError", message: "closing" };
  s.error(rb.id, closing);
  const e1 = await rejectsWith(before, ServerClosingError, /closing/, "before");
  assert.equal((e1 as ServerClosingError).notRun, false);
  s.goaway("bye");
  s.error(ra.id, closing);
  const e2 = await rejectsWith(after, ServerClosingError, /closing/, "after");
  assert.equal((e2 as ServerClosingError).notRun, true);
  assert.equal(e2.message, e1.message.replace('"x"', '"y"'));
});

Deno.test("connection: an error frame with id 0 is the server refusing the connection: every call fails", async () => {
  await using s = scripted();
  const closed = closeDetail(s.conn);
  const call = s.conn.call("x", []);
  await s.request();
  s.error(0, { name: "Error", message: "go away" });
  const e = await rejectsWith(
    call,
    ConnectionError,
    /^Cannot call method "x": connection to memory:\d+ refused by the server: go away \(request may have run\)$/,
    "the pending call",
  );
  assert.equal((e as ConnectionError).written, true);
  assert.ok(e.cause instanceof ProtocolError);
  const { error } = await closed;
  assert.ok(error instanceof ProtocolError);
  assert.match(
    error.message,
    /^Connection to memory:\d+ refused by the server: go away$/,
  );
  assert.equal(s.conn.isClosed, true);
  assert.equal(s.socketClosed(), true);
});

Deno.test("connection: an unreadable error frame with id 0 is a ProtocolError that says so", async () => {
  await using s = scripted();
  const closed = closeDetail(s.conn);
  s.send(FrameType.Error, 0, new TextEncoder().encode('{"name":"E"}'));
  const { error } = await closed;
  assert.ok(error instanceof ProtocolError);
  assert.match(error.message, /^Cannot read error frame from memory:\d+: /);
});

Deno.test("connection: frame types a server never sends close the connection with a ProtocolError", async () => {
  for (
    const type of [
      FrameType.Request,
      FrameType.Cancel,
      FrameType.Settings,
      FrameType.Open,
    ]
  ) {
    await using s = scripted();
    const closed = closeDetail(s.conn);
    s.send(type as FrameType, 1);
    const { error } = await closed;
    assert.ok(error instanceof ProtocolError, `type ${type}`);
    assert.match(
      error.message,
      new RegExp(
        `^Cannot read frame from memory:\\d+: frame type ${type} is not sent by servers$`,
      ),
    );
  }
});

Deno.test("connection: a server's ping is answered with a pong of the same id and payload, up to 64 bytes", async () => {
  await using s = scripted();
  const payload = new Uint8Array(MAX_PING_PAYLOAD).map((_, i) => i + 1);
  s.send(FrameType.Ping, 7, payload);
  const pong = await s.next(FrameType.Pong);
  assert.equal(pong.id, 7);
  assert.deepEqual(pong.payload, payload);
  s.send(FrameType.Ping, 0);
  const empty = await s.next(FrameType.Pong);
  assert.deepEqual([empty.id, empty.payload.length], [0, 0]);
  assert.equal(s.conn.isClosed, false);
});

Deno.test("connection: a ping or a pong of 65 bytes closes the connection with a ProtocolError", async () => {
  for (const type of [FrameType.Ping, FrameType.Pong]) {
    await using s = scripted();
    const closed = closeDetail(s.conn);
    const call = s.conn.call("x", []);
    await s.request();
    s.send(type, 1, new Uint8Array(MAX_PING_PAYLOAD + 1));
    const { error } = await closed;
    assert.ok(error instanceof ProtocolError);
    assert.match(
      error.message,
      /payload of 65 bytes exceeds the limit of 64 bytes/,
    );
    await rejectsWith(call, ConnectionError, /exceeds the limit/, "the call");
    assert.equal(
      s.frames.some((f) => f.type === FrameType.Pong),
      false,
    );
  }
});

Deno.test("connection: pongs are queued up to 1 MiB of unwritten output, not one frame past it", async () => {
  await using s = scripted();
  // The socket takes nothing: the first pong is "in the socket", the rest
  // queue in the writer.
  s.stall();
  s.send(FrameType.Ping, 1);
  // Queue exactly 1 MiB: 14363 pongs of 73 bytes, two of 38 and 39.
  const full = new Uint8Array(MAX_PING_PAYLOAD);
  const pings: Uint8Array[] = [];
  for (let i = 0; i < 14363; i++) {
    pings.push(encodeFrame(FrameType.Ping, 2, full));
  }
  pings.push(encodeFrame(FrameType.Ping, 3, new Uint8Array(29)));
  pings.push(encodeFrame(FrameType.Ping, 4, new Uint8Array(30)));
  // At 1 MiB exactly: still answered; then above it: not.
  pings.push(encodeFrame(FrameType.Ping, 5));
  pings.push(encodeFrame(FrameType.Ping, 6));
  pings.push(encodeFrame(FrameType.Ping, 7));
  s.sendBytes(concat(...pings));
  await s.idle();
  s.resume();
  const ids: number[] = [];
  while (!ids.includes(5)) ids.push((await s.next(FrameType.Pong)).id);
  assert.equal(ids[0], 1);
  // Ping 6 and 7 got no pong; a later ping (the queue drained) gets one.
  s.send(FrameType.Ping, 8);
  assert.equal((await s.next(FrameType.Pong)).id, 8);
  assert.equal(ids.filter((id) => id === 2).length, 14363);
  assert.deepEqual(ids.slice(-3), [3, 4, 5]);
});

Deno.test("connection: after goaway the connection drains: one event, the reason, new calls refused unsent and not run", async () => {
  await using s = scripted();
  let events = 0;
  s.conn.addEventListener("goaway", () => events++);
  assert.equal(s.conn.draining, false);
  assert.equal(s.conn.goawayReason, "");
  const running = s.conn.call("running", []);
  const r = await s.request();
  s.goaway("maintenance");
  s.goaway("second");
  await s.idle();
  assert.equal(events, 1);
  assert.equal(s.conn.draining, true);
  assert.equal(s.conn.goawayReason, "maintenance");
  const refused = await rejectsWith(
    s.conn.call("late", []),
    ServerClosingError,
    /^Cannot call method "late": server memory:\d+ is closing \(request not sent\)$/,
    "a call after goaway",
  );
  assert.equal((refused as ServerClosingError).notRun, true);
  assert.equal(s.frames.filter((f) => f.type === FrameType.Request).length, 1);
  // The call in flight completes normally.
  s.result(r.id, "done");
  assert.equal(await within(running, QUICK, "the running call"), "done");
  assert.equal(s.conn.isClosed, false);
});

Deno.test("connection: EOF after goaway with calls pending fails them (sent: may have run; queued: not sent), never a clean end", async () => {
  await using s = scripted({ maxInFlight: 1 });
  const closed = closeDetail(s.conn);
  const sent = s.conn.call("work", [], { timeout: 60_000 });
  const queued = s.conn.call("work", [], { timeout: 60_000 });
  await s.request();
  s.goaway("bye");
  s.eof();
  const e1 = await rejectsWith(
    sent,
    ConnectionError,
    /^Cannot call method "work": connection to memory:\d+ closed by the server \(request may have run\)$/,
    "the sent call",
  );
  assert.equal((e1 as ConnectionError).written, true);
  const e2 = await rejectsWith(
    queued,
    ConnectionError,
    /closed by the server \(request not sent\)$/,
    "the queued call",
  );
  assert.equal((e2 as ConnectionError).written, false);
  assert.ok(e2.cause instanceof ConnectionError);
  const { error } = await closed;
  assert.ok(error instanceof ConnectionError);
  assert.equal((error as ConnectionError).written, true);
  assert.match(
    error.message,
    /^Connection to memory:\d+ closed by the server$/,
  );
  assert.equal(s.frames.filter((f) => f.type === FrameType.Request).length, 1);
});

Deno.test("connection: EOF after goaway with no call pending is a clean end; EOF without goaway is not", async () => {
  {
    await using s = scripted();
    const closed = closeDetail(s.conn);
    s.goaway();
    s.eof();
    assert.equal((await closed).error, undefined);
    assert.equal(s.conn.isClosed, true);
    assert.equal(s.socketClosed(), true);
  }
  {
    await using s = scripted();
    const closed = closeDetail(s.conn);
    s.eof();
    const { error } = await closed;
    assert.ok(error instanceof ConnectionError);
    assert.match(error.message, /closed by the server$/);
    await rejectsWith(
      s.conn.call("x", []),
      ConnectionError,
      /^Cannot call method "x": connection to memory:\d+ is closed \(request not sent\)$/,
      "a call after the EOF",
    );
  }
});

Deno.test("connection: a call's deadline rejects it, sends a cancel and ignores a late answer", async () => {
  await using s = scripted();
  const call = s.conn.call("slow", [], { timeout: 30 });
  const r = await s.request();
  assert.ok(r.timeout !== undefined && r.timeout <= 30 && r.timeout >= 20);
  const e = await rejectsWith(
    call,
    DeadlineExceededError,
    /^Cannot call method "slow": deadline of 30 ms exceeded$/,
    "the deadline",
  );
  assert.ok(e);
  const cancel = await s.next(FrameType.Cancel);
  assert.equal(cancel.id, r.id);
  assert.equal(s.conn.inFlight, 0);
  s.result(r.id, "late");
  await s.idle();
  assert.equal(s.conn.isClosed, false);
});

Deno.test("connection: a call queued over maxInFlight that expires sends nothing, not even a cancel", async () => {
  await using s = scripted({ maxInFlight: 1 });
  const first = s.conn.call("first", []);
  const queued = s.conn.call("queued", [], { timeout: 20 });
  const r = await s.request();
  await rejectsWith(
    queued,
    DeadlineExceededError,
    /"queued": deadline of 20 ms exceeded/,
    "the queued call's deadline",
  );
  assert.equal(s.conn.inFlight, 1);
  s.result(r.id, 1);
  assert.equal(await within(first, QUICK, "first"), 1);
  // The slot freed goes to the next call, not to the expired one.
  const next = s.conn.call("next", []);
  const rn = await s.request();
  assert.equal(rn.method, "next");
  s.result(rn.id, 2);
  assert.equal(await within(next, QUICK, "next"), 2);
  assert.deepEqual(
    s.frames.map((f) => f.type),
    [FrameType.Request, FrameType.Request],
  );
});

Deno.test("connection: aborting a call rejects it with CancelledError (the reason as cause) and sends a cancel", async () => {
  await using s = scripted();
  const controller = new AbortController();
  const call = s.conn.call("x", [], { signal: controller.signal });
  const r = await s.request();
  const reason = new Error("user gave up");
  controller.abort(reason);
  const e = await rejectsWith(
    call,
    CancelledError,
    /^Cannot call method "x": cancelled$/,
    "the abort",
  );
  assert.equal(e.cause, reason);
  assert.equal((await s.next(FrameType.Cancel)).id, r.id);
  assert.equal(s.conn.inFlight, 0);
  // Aborted before the call: rejected, nothing sent.
  const before = await rejectsWith(
    s.conn.call("y", [], { signal: AbortSignal.abort("no") }),
    CancelledError,
    /^Cannot call method "y": cancelled$/,
    "an aborted signal",
  );
  assert.equal(before.cause, "no");
  // An answered call's signal no longer matters.
  const later = new AbortController();
  const answered = s.conn.call("z", [], { signal: later.signal });
  s.result((await s.request()).id, "z");
  assert.equal(await within(answered, QUICK, "z"), "z");
  later.abort();
  await s.idle();
  assert.equal(s.frames.filter((f) => f.type === FrameType.Cancel).length, 1);
  assert.equal(s.frames.filter((f) => f.type === FrameType.Request).length, 2);
});

Deno.test("connection: close() fails pending calls as closed by the client with their written flag, once", async () => {
  const s = scripted({ maxInFlight: 1 });
  let closes = 0;
  s.conn.addEventListener("close", () => closes++);
  const closed = closeDetail(s.conn);
  const sent = s.conn.call("a", []);
  const queued = s.conn.call("b", []);
  await s.request();
  s.conn.close();
  s.conn.close();
  assert.equal(s.conn.isClosed, true);
  const e1 = await rejectsWith(
    sent,
    ConnectionError,
    /^Cannot call method "a": connection to memory:\d+ closed by the client \(request may have run\)$/,
    "the sent call",
  );
  assert.equal((e1 as ConnectionError).written, true);
  assert.equal(e1.cause, undefined);
  const e2 = await rejectsWith(
    queued,
    ConnectionError,
    /^Cannot call method "b": connection to memory:\d+ closed by the client \(request not sent\)$/,
    "the queued call",
  );
  assert.equal((e2 as ConnectionError).written, false);
  assert.equal((await closed).error, undefined);
  await within(s.conn.finished, QUICK, "finished");
  assert.equal(s.conn.closed, s.conn.finished);
  assert.equal(closes, 1);
  assert.equal(s.socketClosed(), true);
  const after = await rejectsWith(
    s.conn.call("c", []),
    ConnectionError,
    /is closed \(request not sent\)$/,
    "a call after close",
  );
  assert.equal((after as ConnectionError).written, false);
  assert.equal(s.conn.inFlight, 0);
});

Deno.test("connection: a request still in a stalled write batch is 'not sent' when the connection closes", async () => {
  await using s = scripted();
  s.stall();
  const first = s.conn.call("first", []); // handed to the socket
  const second = s.conn.call("second", []); // waits in the next batch
  s.conn.close();
  const e1 = await rejectsWith(first, ConnectionError, /may have run/, "1st");
  assert.equal((e1 as ConnectionError).written, true);
  const e2 = await rejectsWith(second, ConnectionError, /not sent/, "2nd");
  assert.equal((e2 as ConnectionError).written, false);
});

Deno.test("connection: maxInFlight is the smaller of the option and the server's setting (0: no server limit)", async () => {
  const cases: [number | undefined, number | undefined, number][] = [
    [3, 2, 2],
    [2, 3, 2],
    [3, 0, 3],
    [undefined, 4, 4],
  ];
  for (const [option, server, expected] of cases) {
    await using s = scripted(
      option === undefined ? {} : { maxInFlight: option },
      server === undefined ? {} : { maxInFlight: server },
    );
    const calls = Array.from(
      { length: expected + 2 },
      (_, i) => s.conn.call("n", [i]),
    );
    const first: number[] = [];
    for (let i = 0; i < expected; i++) first.push((await s.request()).id);
    await s.idle();
    assert.equal(
      s.frames.length,
      expected,
      `option ${option}, server ${server}: ${s.frames.length} sent`,
    );
    assert.equal(s.conn.inFlight, expected + 2);
    // Each answer lets exactly one queued call out, in order.
    s.result(first[0]!, "r0");
    const next = await s.request();
    assert.deepEqual(next.params, [expected]);
    await s.idle();
    assert.equal(s.frames.length, expected + 1);
    s.result(first[1]!, "r1");
    assert.deepEqual((await s.request()).params, [expected + 1]);
    assert.equal(await within(calls[0]!, QUICK, "call 0"), "r0");
    s.conn.close();
    await Promise.allSettled(calls);
  }
});

Deno.test("connection: the default maxInFlight is 1024", async () => {
  await using s = scripted();
  const calls = Array.from({ length: 1025 }, () => s.conn.call("n", []));
  await s.idle();
  await within(
    (async () => {
      while (s.frames.length < 1024) await s.next(FrameType.Request);
    })(),
    QUICK,
    "1024 requests",
  );
  await s.idle();
  assert.equal(s.frames.length, 1024);
  s.conn.close();
  await Promise.allSettled(calls);
});

Deno.test("connection: a request is checked against the smaller frame limit, the message names whose", async () => {
  // The request frame of `echo` with params ["x"*n]: 5 + 1 + 1 + 4 + n + 4.
  const size = (n: number) => 5 + 1 + 1 + 4 + n + 4;
  for (
    const [own, peer, whose] of [
      [200, 300, "the frame limit of 200"],
      [300, 200, "the server's frame limit of 200"],
    ] as const
  ) {
    await using s = scripted({ maxFrameSize: own }, { maxFrameSize: peer });
    const n = 200 - size(0);
    const fits = s.conn.call("echo", ["x".repeat(n)]);
    const r = await s.request();
    assert.deepEqual(r.params, ["x".repeat(n)]);
    s.result(r.id, "ok");
    assert.equal(await within(fits, QUICK, "the call at the limit"), "ok");
    await rejectsWith(
      s.conn.call("echo", ["x".repeat(n + 1)]),
      RangeError,
      new RegExp(
        `^Cannot call method "echo": request of 201 bytes exceeds ${whose} bytes$`,
      ),
      "one byte past the limit",
    );
  }
});

Deno.test("connection: a frame over the client's own maxFrameSize closes the connection with a ProtocolError", async () => {
  await using s = scripted({ maxFrameSize: 100 });
  const closed = closeDetail(s.conn);
  const call = s.conn.call("x", []);
  const r = await s.request();
  s.result(r.id, "y".repeat(200));
  const { error } = await closed;
  assert.ok(error instanceof ProtocolError);
  await rejectsWith(call, ConnectionError, /\(request may have run\)$/, "x");
});

Deno.test("connection: a failed write closes the connection with a ConnectionError that keeps the cause", async () => {
  await using s = scripted();
  const closed = closeDetail(s.conn);
  const cause = new Error("broken pipe");
  s.failWrites(cause);
  const call = s.conn.call("x", []);
  const e = await rejectsWith(
    call,
    ConnectionError,
    /^Cannot call method "x": connection to memory:\d+ failed: broken pipe \(request may have run\)$/,
    "the call",
  );
  assert.equal((e as ConnectionError).written, true);
  const { error } = await closed;
  assert.ok(error instanceof ConnectionError);
  assert.equal(
    error.message.replace(/\d+/, "N"),
    "Connection to memory:N failed: broken pipe",
  );
  assert.equal(error.cause, cause);
  assert.equal((error as ConnectionError).written, true);
  assert.equal(e.cause, error);
});

Deno.test("connection: a failed read closes the connection with a ConnectionError that keeps the cause", async () => {
  await using s = scripted();
  const closed = closeDetail(s.conn);
  const call = s.conn.call("x", []);
  await s.request();
  const cause = new Error("reset by peer");
  s.failRead(cause);
  const { error } = await closed;
  assert.ok(error instanceof ConnectionError);
  assert.equal(
    error.message.replace(/\d+/, "N"),
    "Connection to memory:N failed: reset by peer",
  );
  assert.equal(error.cause, cause);
  assert.equal((error as ConnectionError).written, true);
  await rejectsWith(call, ConnectionError, /failed: reset by peer/, "the call");
});

Deno.test("connection: ping() resolves on the pong and fails once closed; the default wait is keepaliveTimeout", async () => {
  await using s = scripted({ keepaliveTimeout: 30 });
  const answered = s.conn.ping(1000);
  const ping = await s.next(FrameType.Ping);
  s.send(FrameType.Pong, ping.id, ping.payload);
  await within(answered, QUICK, "the pong");
  // No pong: the default wait (keepaliveTimeout, 30 ms) ends it.
  await rejectsWith(
    s.conn.ping(),
    ConnectionError,
    /^Cannot ping memory:\d+: no answer within 30 ms$/,
    "an unanswered ping",
  );
  const waiting = s.conn.ping(60_000);
  await s.next(FrameType.Ping);
  s.conn.close();
  const e = await rejectsWith(
    waiting,
    ConnectionError,
    /^Cannot ping memory:\d+: connection closed$/,
    "a ping when the connection closes",
  );
  assert.equal((e as ConnectionError).written, false);
});

Deno.test("connection: interceptors see the call (method, params, a copy of the metadata, timeout, target) and may change it", async () => {
  const seen: unknown[] = [];
  const interceptor: ClientInterceptor = (call, next) => {
    seen.push({ ...call, metadata: { ...call.metadata } });
    call.metadata.added = "yes";
    return next();
  };
  await using s = scripted({ interceptors: [interceptor] });
  const metadata = { k: "v" };
  const call = s.conn.call("m", [1], { timeout: 5000, metadata });
  const r = await s.request();
  assert.deepEqual(r.metadata, { k: "v", added: "yes" });
  assert.deepEqual(metadata, { k: "v" });
  s.result(r.id, "ok");
  assert.equal(await within(call, QUICK, "the call"), "ok");
  const [c] = seen as {
    method: string;
    params: unknown[];
    metadata: Record<string, string>;
    timeout: number;
    attempt: number;
    target: string;
  }[];
  assert.equal(c!.method, "m");
  assert.deepEqual(c!.params, [1]);
  assert.deepEqual(c!.metadata, { k: "v" });
  assert.ok(c!.timeout <= 5000 && c!.timeout > 4000);
  assert.equal(c!.attempt, 1);
  assert.match(c!.target, /^memory:\d+$/);
  // An invalid timeout is refused before the interceptors run.
  await rejectsWith(
    s.conn.call("m", [], { timeout: -1 }),
    RangeError,
    /^Cannot call method "m": timeout must be a number of ms >= 0 or Infinity/,
    "a negative timeout",
  );
  assert.equal(seen.length, 1);
});

Deno.test("connection: call() errors carry the caller's stack", async () => {
  await using s = scripted();
  async function callerMarkerFunction() {
    return await s.conn.call("x", []);
  }
  const call = callerMarkerFunction();
  s.error((await s.request()).id, { name: "Error", message: "boom" });
  const e = await rejectsWith(call, RemoteError, /boom/, "the remote error");
  assert.match(e.stack ?? "", /callerMarkerFunction/);
});

Deno.test("connection: a deadline, a cancel and a lost connection also reach the awaiting caller with its frame", async () => {
  await using s = scripted();
  const abort = new AbortController();
  async function awaitedDeadline() {
    return await s.conn.call("slow", [], { timeout: 1 });
  }
  async function awaitedCancel() {
    return await s.conn.call("slow", [], { signal: abort.signal });
  }
  async function awaitedLoss() {
    return await s.conn.call("slow", []);
  }
  const deadline = awaitedDeadline();
  const cancelled = awaitedCancel();
  const lost = awaitedLoss();
  for (let i = 0; i < 3; i++) await s.request();
  const e1 = await rejectsWith(
    deadline,
    DeadlineExceededError,
    /deadline/,
    "the deadline",
  );
  assert.match(e1.stack ?? "", /awaitedDeadline/);
  abort.abort();
  const e2 = await rejectsWith(cancelled, CancelledError, /cancel/, "cancel");
  assert.match(e2.stack ?? "", /awaitedCancel/);
  s.eof();
  const e3 = await rejectsWith(lost, ConnectionError, /./, "the loss");
  assert.match(e3.stack ?? "", /awaitedLoss/);
});

Deno.test("connection: keepalive pings a silent connection with a call waiting and closes it when no pong comes", async () => {
  await using s = scripted({ keepaliveInterval: 10, keepaliveTimeout: 20 });
  const closed = closeDetail(s.conn);
  const call = s.conn.call("x", []);
  await s.request();
  await s.next(FrameType.Ping);
  const e = await rejectsWith(
    call,
    ConnectionError,
    /^Cannot call method "x": connection to memory:\d+ lost: no answer to a ping within 20 ms \(request may have run\)$/,
    "the dead peer",
  );
  assert.equal((e as ConnectionError).written, true);
  const { error } = await closed;
  assert.ok(error instanceof ConnectionError);
  assert.equal((error as ConnectionError).written, true);
});

Deno.test("connection: keepalive pings an idle connection; answered pongs keep it open", async () => {
  await using s = scripted({
    keepaliveInterval: 5,
    keepaliveTimeout: 50,
    idleKeepaliveInterval: 10,
  });
  // Several rounds, each answered: each unanswered would close it.
  for (let i = 0; i < 4; i++) {
    const ping = await s.next(FrameType.Ping);
    s.send(FrameType.Pong, ping.id, ping.payload);
  }
  assert.equal(s.conn.isClosed, false);
  const call = s.conn.call("x", []);
  s.result((await s.request()).id, 1);
  assert.equal(await within(call, QUICK, "a call after the pings"), 1);
});

Deno.test("connection: a stream gets its items in order, grants its window back and ends with the end frame", async () => {
  await using s = scripted({ streamWindow: 4 });
  const items: unknown[] = [];
  const reading = (async () => {
    for await (const item of s.conn.stream("count", [3], { timeout: 5000 })) {
      items.push(item);
    }
  })();
  const open = await s.next(FrameType.Open);
  assert.deepEqual([...open.payload], [1]);
  const r = await s.request();
  assert.equal(r.id, open.id);
  assert.deepEqual([r.method, r.params], ["count", [3]]);
  for (let i = 0; i < 4; i++) {
    s.send(FrameType.Item, r.id, new TextEncoder().encode(String(i)));
  }
  const grant = await s.next(FrameType.Window);
  assert.equal(grant.id, r.id);
  s.send(FrameType.End, r.id);
  await within(reading, QUICK, "the stream to end");
  assert.deepEqual(items, [0, 1, 2, 3]);
  assert.equal(s.conn.inFlight, 0);
});

Deno.test("connection: a stream to a server that announced no stream window is refused unsent", async () => {
  await using s = scripted({}, {});
  const stream = s.conn.stream("count", [3], { timeout: 5000 });
  await assert.rejects(
    within(stream.getReader().read(), QUICK, "the refusal"),
    (e: unknown) =>
      e instanceof ProtocolError &&
      /does not accept streaming calls/.test(e.message),
  );
  await s.idle();
  assert.equal(s.frames.length, 0);
});

Deno.test("connection: a stream with input sends an open of mode 3, then its items and end as the server grants them", async () => {
  await using s = scripted({}, { streamWindow: 2 });
  async function* input() {
    yield "a";
    yield "b";
    yield "c";
  }
  const reader = s.conn.stream("up", [], { input: input(), timeout: 5000 })
    .getReader();
  const reading = reader.read();
  const open = await s.next(FrameType.Open);
  assert.deepEqual([...open.payload], [3]);
  const decode = (f: { payload: Uint8Array }) =>
    JSON.parse(new TextDecoder().decode(f.payload));
  assert.equal(decode(await s.next(FrameType.Item)), "a");
  assert.equal(decode(await s.next(FrameType.Item)), "b");
  await s.idle();
  // Two credits used: "c" waits for a window frame.
  assert.equal(s.frames.filter((f) => f.type === FrameType.Item).length, 2);
  s.send(FrameType.Window, open.id, new Uint8Array([0, 0, 0, 5]));
  assert.equal(decode(await s.next(FrameType.Item)), "c");
  assert.equal((await s.next(FrameType.End)).id, open.id);
  s.send(FrameType.End, open.id);
  assert.deepEqual(await within(reading, QUICK, "the end"), {
    done: true,
    value: undefined,
  });
});

/** Answers the calls `ids` (with 1, 2, ...) in bytes the client reads at once. */
function answersInOneRead(s: Scripted, ids: number[]): void {
  s.sendBytes(
    concat(
      ...ids.map((id, i) =>
        encodeFrame(FrameType.Result, id, new TextEncoder().encode(`${i + 1}`))
      ),
    ),
  );
}

Deno.test("connection: callers woken by one read send their next requests in one write; a lone request goes out at once", async () => {
  await using s = scripted();
  const next = async (method: string) => {
    await s.conn.call(method, []);
    return s.conn.call(`${method}2`, []);
  };
  const chains = [next("a"), next("b")];
  const ra = await s.request();
  const rb = await s.request();
  assert.equal(s.writes.length, 2, "each first request at once");
  answersInOneRead(s, [ra.id, rb.id]);
  const r2 = [await s.request(), await s.request()];
  assert.deepEqual(r2.map((r) => r.method).sort(), ["a2", "b2"]);
  assert.equal(s.writes.length, 3, "the two next requests in one write");
  for (const r of r2) s.result(r.id, r.method);
  assert.deepEqual(
    (await within(Promise.all(chains), QUICK, "the chains")).sort(),
    ["a2", "b2"],
  );
});

Deno.test("connection: callers woken by one read send their next requests on another connection in one write too", async () => {
  await using a = scripted();
  await using b = scripted();
  const chain = async (method: string) => {
    await a.conn.call(method, []);
    return b.conn.call(`${method}2`, []);
  };
  const chains = [chain("x"), chain("y")];
  const rx = await a.request();
  const ry = await a.request();
  answersInOneRead(a, [rx.id, ry.id]);
  const next = [await b.request(), await b.request()];
  assert.deepEqual(next.map((r) => r.method).sort(), ["x2", "y2"]);
  assert.equal(b.writes.length, 1, "B: the two requests in one write");
  for (const r of next) b.result(r.id, r.method);
  assert.deepEqual(
    (await within(Promise.all(chains), QUICK, "the chains")).sort(),
    ["x2", "y2"],
  );
  // The turn is over: a later request on B goes out at once.
  const later = b.conn.call("z", []);
  assert.equal(b.writes.length, 2, "at once after the turn");
  b.result((await b.request()).id, 3);
  assert.equal(await within(later, QUICK, "z"), 3);
});

Deno.test("connection: a caller woken alone sends its next requests at once, the first in a write of its own", async () => {
  await using s = scripted();
  const chain = (async () => {
    await s.conn.call("a", []);
    return [s.conn.call("b", []), s.conn.call("c", [])];
  })();
  s.result((await s.request()).id, 1);
  const [b, c] = await within(chain, QUICK, "the chain");
  const rb = await s.request();
  const rc = await s.request();
  assert.deepEqual([rb.method, rc.method], ["b", "c"]);
  assert.equal(s.writes.length, 3, "b at once, c in the next write");
  s.result(rb.id, 2);
  s.result(rc.id, 3);
  assert.deepEqual(await within(Promise.all([b!, c!]), QUICK, "b, c"), [2, 3]);
});

Deno.test("connection: params default to none, for calls and streams", async () => {
  await using s = scripted();
  const call = s.conn.call("m");
  const r = await s.request();
  assert.deepEqual(r.params, []);
  s.result(r.id, 1);
  assert.equal(await within(call, QUICK, "the call"), 1);
  const reader = s.conn.stream("st").getReader();
  const reading = reader.read();
  const rs = await s.request();
  assert.deepEqual([rs.method, rs.params], ["st", []]);
  s.send(FrameType.End, rs.id);
  assert.equal((await within(reading, QUICK, "the end")).done, true);
});

Deno.test("connection: callUnwrapped() sends the call and settles with its answer", async () => {
  await using s = scripted();
  const call = callUnwrapped(s.conn, "add", [1, 2], { timeout: 5000 });
  const r = await s.request();
  assert.deepEqual([r.method, r.params], ["add", [1, 2]]);
  s.result(r.id, 3);
  assert.equal(await within(call, QUICK, "the call"), 3);
  const failing = callUnwrapped(s.conn, "x", [], {});
  s.error((await s.request()).id, { name: "Error", message: "no" });
  await rejectsWith(failing, RemoteError, /no/, "the error");
});

Deno.test("connection: interceptors run for streams too (their metadata is sent)", async () => {
  const interceptor: ClientInterceptor = (call, next) => {
    call.metadata.via = "interceptor";
    return next();
  };
  await using s = scripted({ interceptors: [interceptor] });
  const reader = s.conn.stream("st", [], { timeout: 5000 }).getReader();
  const reading = reader.read();
  const r = await s.request();
  assert.deepEqual(r.metadata, { via: "interceptor" });
  s.send(FrameType.End, r.id);
  assert.equal((await within(reading, QUICK, "the end")).done, true);
});

Deno.test("connection: ping() on a broken connection fails with the breakage as its cause", async () => {
  await using s = scripted();
  const closed = closeDetail(s.conn);
  s.eof();
  const { error } = await closed;
  await assert.rejects(
    s.conn.ping(1000),
    (e: unknown) =>
      e instanceof ConnectionError && !e.written && e.cause === error &&
      /^Cannot ping memory:\d+: connection closed$/.test(e.message),
  );
});

Deno.test("connection: finished waits for the write in progress after close()", async () => {
  const s = scripted();
  s.stall();
  const call = s.conn.call("x", []);
  s.conn.close();
  await rejectsWith(call, ConnectionError, /closed by the client/, "the call");
  assert.equal(await stillPending(s.conn.finished), true);
  s.resume();
  await within(s.conn.finished, QUICK, "finished");
});

Deno.test("connection: stream input waits while more than 1 MiB of output is unwritten", async () => {
  await using s = scripted({}, { streamWindow: 16 });
  s.stall();
  let pulled = 0;
  const big = "x".repeat(600 * 1024);
  async function* input() {
    for (let i = 0; i < 5; i++) {
      pulled++;
      yield big;
    }
  }
  const reader = s.conn.stream("up", [], { input: input(), timeout: 60_000 })
    .getReader();
  const reading = reader.read();
  // The open went to the (stalled) socket; the request and items 1 and 2
  // queue (1.2 MB): the third is not pulled.
  await s.idle();
  for (let i = 0; i < 10; i++) await Promise.resolve();
  assert.equal(pulled, 2);
  s.resume();
  const r = await s.request();
  for (let i = 0; i < 5; i++) await s.next(FrameType.Item);
  await s.next(FrameType.End);
  assert.equal(pulled, 5);
  s.send(FrameType.End, r.id);
  assert.equal((await within(reading, QUICK, "the end")).done, true);
});

/** Lets the in-memory socket and the connection run what is queued. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Moves `clock` on by `ms`, then lets what fell due run. */
async function tick(clock: FakeClock, ms: number): Promise<void> {
  clock.advance(ms);
  await flush();
}

/** Keepalive with its defaults (the scripted connection turns it off). */
const DEFAULT_KEEPALIVE = { keepaliveInterval: undefined } as unknown as {
  keepaliveInterval: number;
};

const pings = (s: { frames: { type: number }[] }) =>
  s.frames.filter((f) => f.type === FrameType.Ping).length;

Deno.test("connection: keepalive pings after exactly keepaliveInterval of silence and gives up exactly keepaliveTimeout later (fake clock)", async () => {
  using clock = new FakeClock();
  await using s = scripted({ keepaliveInterval: 100, keepaliveTimeout: 50 });
  const call = s.conn.call("x", []);
  call.catch(() => {});
  await flush();
  await tick(clock, 99);
  assert.equal(pings(s), 0);
  await tick(clock, 1);
  assert.equal(pings(s), 1);
  await tick(clock, 49);
  assert.equal(s.conn.isClosed, false);
  await tick(clock, 1);
  assert.equal(s.conn.isClosed, true);
  await assert.rejects(
    call,
    (e: unknown) =>
      e instanceof ConnectionError &&
      /lost: no answer to a ping within 50 ms/.test(e.message),
  );
});

Deno.test("connection: a keepalive ping stuck behind our own stalled write is waited for, MAX_KEEPALIVE_EXTENSIONS timeouts (fake clock)", async () => {
  using clock = new FakeClock();
  await using s = scripted({ keepaliveInterval: 100, keepaliveTimeout: 50 });
  s.stall();
  const call = s.conn.call("x", []); // its write never ends
  call.catch(() => {});
  await flush();
  clock.advance(100); // the ping is queued behind it
  await flush();
  await tick(clock, 50 * MAX_KEEPALIVE_EXTENSIONS);
  assert.equal(s.conn.isClosed, false);
  await tick(clock, 50);
  assert.equal(s.conn.isClosed, true);
  assert.equal(pings(s), 0, "never written");
});

Deno.test("connection: keepalive defaults: a ping after 1000 ms of silence with a call waiting, dead 2000 ms later; idle, after 30 s (fake clock)", async () => {
  using clock = new FakeClock();
  {
    await using s = scripted(DEFAULT_KEEPALIVE);
    const call = s.conn.call("x", []);
    call.catch(() => {});
    await flush();
    await tick(clock, 999);
    assert.equal(pings(s), 0);
    await tick(clock, 1);
    assert.equal(pings(s), 1);
    await tick(clock, 1999);
    assert.equal(s.conn.isClosed, false);
    await tick(clock, 1);
    assert.equal(s.conn.isClosed, true);
  }
  {
    await using s = scripted(DEFAULT_KEEPALIVE);
    await tick(clock, 29_999);
    assert.equal(pings(s), 0);
    await tick(clock, 1);
    assert.equal(pings(s), 1);
  }
});

Deno.test("connection: a caller woken by an answer writes its next request before the read loop starts its next read", async () => {
  await using s = scripted();
  const first = s.conn.call("first", []);
  const r1 = await s.request();
  await s.idle();
  // The caller's continuation sends the next call at once.
  const second = first.then(() => s.conn.call("second", []));
  s.events.length = 0;
  s.result(r1.id, 1);
  const r2 = await s.request();
  assert.equal(r2.method, "second");
  await s.idle();
  assert.deepEqual(s.events, ["write", "read"]);
  s.result(r2.id, 2);
  assert.equal(await within(second, QUICK, "second"), 2);
});
