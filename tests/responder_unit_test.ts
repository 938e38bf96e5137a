/**
 * The server's responder as a unit, on a scripted frame writer (no socket):
 * results and errors encoded into their frames, each frame limit at its
 * boundary (the client's and the server's, and the room an error keeps),
 * unencodable results and error data, the answers that wait for a slow
 * reader within the output budget (at and one past it), and nothing kept
 * for a closed connection.
 */
import assert from "node:assert/strict";
import { Responder, WRITE_HIGH_WATER } from "../src/server/_responder.ts";
import { STREAM_END } from "../src/server/_stream.ts";
import type { Codec } from "../src/protocol/codec.ts";
import { FrameType } from "../src/protocol/frame.ts";
import type { FrameWriter } from "../src/protocol/frame_writer.ts";
import { ResourceExhaustedError } from "../src/errors.ts";
import { within } from "./_wait.ts";

const BUDGET = 16 * 1024 * 1024;
const decoder = new TextDecoder();

/** A responder on a scripted writer; `frames` are what it pushed, decoded. */
function setup(ownMax = 1 << 20, exposeStack = false) {
  const pushed: [FrameType, number, Uint8Array][] = [];
  let drain = Promise.withResolvers<void>();
  const writer = {
    buffered: 0,
    push(type: FrameType, id: number, bytes: Uint8Array) {
      pushed.push([type, id, bytes]);
    },
    drained: () => drain.promise,
  };
  const state = { closed: false, drained: 0 };
  const flushed = Promise.withResolvers<void>();
  const reports: Error[] = [];
  const violations: string[] = [];
  const responder = new Responder(
    {
      writer: writer as unknown as FrameWriter,
      closed: () => state.closed,
      report: (e) => reports.push(e),
      violation: (r) => violations.push(r),
      drained: () => {
        state.drained++;
        flushed.resolve();
      },
    },
    ownMax,
    exposeStack,
  );
  return {
    responder,
    writer,
    state,
    reports,
    violations,
    pushed,
    /** Resolves when the waiting answers were written (`host.drained()`). */
    flushed: () => within(flushed.promise, 2000, "the waiting answers"),
    frames: () =>
      pushed.map(([type, id, bytes]) => ({
        type,
        id,
        body: bytes.length === 0
          ? undefined
          : JSON.parse(decoder.decode(bytes)),
      })),
    /** The writer drains down to `buffered`. */
    drain(buffered: number) {
      writer.buffered = buffered;
      const d = drain;
      drain = Promise.withResolvers<void>();
      d.resolve();
    },
  };
}

Deno.test("responder: a result is a Result frame, the stream's end an empty End frame, a stream for call() a TypeError", () => {
  const t = setup();
  t.responder.result(1, "m", { a: [1, "x"] });
  t.responder.result(2, "m", STREAM_END);
  t.responder.result(3, "tail", (async function* () {})());
  t.responder.result(4, "tail", new ReadableStream());
  assert.deepEqual(t.frames(), [
    { type: FrameType.Result, id: 1, body: { a: [1, "x"] } },
    { type: FrameType.End, id: 2, body: undefined },
    ...[3, 4].map((id) => ({
      type: FrameType.Error,
      id,
      body: {
        name: "TypeError",
        message:
          `Cannot call method "tail": it streams its result; call it with stream()`,
      },
    })),
  ]);
  assert.deepEqual(t.reports, []);
});

Deno.test("responder: an unencodable result is a TypeError for that call alone", () => {
  const t = setup();
  t.responder.result(1, "big", { f() {} });
  t.responder.result(2, "ok", 1);
  const [bad, good] = t.frames();
  assert.equal(bad!.type, FrameType.Error);
  assert.equal(bad!.body.name, "TypeError");
  assert.match(
    bad!.body.message,
    /^Cannot call method "big": cannot encode result: .+/,
  );
  assert.deepEqual(good, { type: FrameType.Result, id: 2, body: 1 });
});

Deno.test("responder: a result at the frame limit is sent; one byte more is a ResourceExhaustedError naming whose limit", () => {
  // `"x…"`: n + 2 bytes of JSON, plus the frame's 5 bytes of head.
  const t = setup(100);
  t.responder.result(1, "m", "x".repeat(93)); // 95 + 5 = 100
  t.responder.result(2, "m", "x".repeat(94)); // 101
  const [fits, over] = t.frames();
  assert.equal(fits!.type, FrameType.Result);
  assert.deepEqual(over, {
    type: FrameType.Error,
    id: 2,
    body: {
      name: "ResourceExhaustedError",
      message:
        `Cannot call method "m": result of 96 bytes exceeds the server's frame limit of 100 bytes`,
      data: { ran: true },
    },
  });
  assert.equal(t.reports.length, 1);
  assert.ok(t.reports[0] instanceof ResourceExhaustedError);
  assert.equal(t.reports[0]!.message, over!.body.message);
  // The client's limit, when it is the smaller one (or the same).
  for (const peer of [300, 1000]) {
    const c = setup(1000);
    c.responder.peerMaxFrameSize = peer;
    c.responder.result(1, "m", "x".repeat(peer - 6));
    c.responder.result(2, "m", "x".repeat(peer - 7));
    const [over, fits] = c.frames();
    assert.equal(
      over!.body.message,
      `Cannot call method "m": result of ${
        peer - 4
      } bytes exceeds the client's frame limit of ${peer} bytes`,
    );
    assert.equal(fits!.type, FrameType.Result);
  }
});

Deno.test("responder: an error keeps 64 KiB of room under a tiny server limit, and is refused past the client's", () => {
  const t = setup(10);
  t.responder.error(1, { name: "Error", message: "m".repeat(1000) });
  assert.equal(t.frames()[0]!.type, FrameType.Error, "room under a tiny limit");
  assert.equal(t.frames()[0]!.body.message, "m".repeat(1000));
  // Just at and just past 64 KiB, with the frame's 5 bytes of head.
  const room = 64 * 1024;
  const overhead = JSON.stringify({ name: "E", message: "" }).length + 5;
  const at = room - overhead;
  t.responder.error(2, { name: "E", message: "m".repeat(at) }, "f");
  t.responder.error(3, { name: "E", message: "m".repeat(at + 1) }, "f");
  const [, fits, past] = t.frames();
  assert.equal(fits!.body.name, "E");
  assert.deepEqual(past!.body, {
    name: "ResourceExhaustedError",
    message: `Cannot call method "f": error of ${
      room - 4
    } bytes exceeds the server's frame limit of ${room} bytes`,
    data: { ran: true },
  });
  // Under a tiny client limit even the ResourceExhaustedError is too large:
  // nothing is sent, the connection goes on.
  const tiny = setup(10);
  tiny.responder.peerMaxFrameSize = 20;
  tiny.responder.error(1, { name: "Error", message: "too long for 20" }, "f");
  assert.deepEqual(tiny.pushed, []);
  assert.equal(tiny.reports.length, 1);
  assert.deepEqual(tiny.violations, []);
});

Deno.test("responder: error data that cannot be encoded is dropped, the stack kept; a codec that cannot encode at all is a violation", () => {
  const t = setup();
  t.responder.error(1, { name: "E", message: "m", data: { n: Symbol("s") } });
  t.responder.error(2, {
    name: "E",
    message: "m",
    data: () => {},
    stack: "at x",
  });
  assert.deepEqual(t.frames().map((f) => f.body), [
    { name: "E", message: "m" },
    { name: "E", message: "m", stack: "at x" },
  ]);
  const broken = setup();
  broken.responder.codec = {
    name: "broken",
    encode() {
      throw new Error("no");
    },
    decode: () => undefined,
  } as unknown as Codec;
  broken.responder.error(1, { name: "E", message: "m" });
  assert.deepEqual(broken.pushed, []);
  assert.deepEqual(broken.violations, [
    `cannot encode an error payload with codec "broken": Error: no`,
  ]);
});

Deno.test("responder: a thrown value that cannot be read is reported and answered with what could be read", () => {
  const t = setup();
  const hostile = {
    get name(): string {
      throw new Error("boom");
    },
    message: "readable",
  };
  t.responder.answer(1, "h", hostile, true);
  const [frame] = t.frames();
  assert.equal(frame!.type, FrameType.Error);
  assert.equal(t.reports.length, 1);
  assert.match(
    t.reports[0]!.message,
    /^Handler "h" threw a value that cannot be read \(reading its name threw .*boom.*\): the caller got /,
  );
  const plain = setup();
  plain.responder.answer(1, "h", new RangeError("bad"), true);
  assert.deepEqual(plain.reports, []);
  assert.equal(plain.frames()[0]!.body.name, "RangeError");
  assert.equal(plain.frames()[0]!.body.stack, undefined, "no stack exposed");
  const exposed = setup(1 << 20, true);
  exposed.responder.answer(1, "h", new RangeError("bad"), true);
  assert.equal(typeof exposed.frames()[0]!.body.stack, "string");
});

Deno.test("responder: answers wait while the writer is above its high water, then go out in order", async () => {
  const t = setup();
  t.writer.buffered = WRITE_HIGH_WATER;
  t.responder.answer(1, "m", "at the mark", false);
  assert.equal(t.pushed.length, 1, "at the high water: sent");
  t.writer.buffered = WRITE_HIGH_WATER + 1;
  t.responder.answer(2, "m", "a", false);
  t.responder.answer(3, "m", "b", true);
  assert.equal(t.pushed.length, 1, "above it: waiting");
  assert.equal(t.responder.waiting, true);
  // Drained, but still above the mark: still waiting.
  t.drain(WRITE_HIGH_WATER + 1);
  await Promise.resolve();
  assert.equal(t.pushed.length, 1);
  t.drain(0);
  await t.flushed();
  assert.deepEqual(t.frames().map((f) => [f.id, f.type]), [
    [1, FrameType.Result],
    [2, FrameType.Result],
    [3, FrameType.Error],
  ]);
  assert.equal(t.responder.waiting, false);
  assert.equal(t.state.drained, 1);
  // Once drained, an answer is sent at once again.
  t.responder.answer(4, "m", "c", false);
  assert.equal(t.pushed.length, 4);
});

Deno.test("responder: waiting answers fill the output budget exactly; one byte past it the answer is a ResourceExhaustedError", async () => {
  const t = setup(32 << 20);
  t.responder.peerMaxFrameSize = 32 << 20;
  t.writer.buffered = WRITE_HIGH_WATER + 1;
  const half = BUDGET / 2; // a string of n - 2 is n bytes of JSON
  t.responder.answer(1, "m", "x".repeat(half - 2), false);
  t.responder.answer(2, "m", "x".repeat(half - 4), false);
  t.responder.answer(3, "m", "", false); // 2 bytes: exactly the budget
  t.responder.answer(4, "m", "", false); // 2 more: past it
  assert.deepEqual(t.pushed, [], "all waiting");
  t.drain(0);
  await t.flushed();
  const frames = t.frames();
  assert.deepEqual(frames.map((f) => [f.id, f.type]), [
    [1, FrameType.Result],
    [2, FrameType.Result],
    [3, FrameType.Result],
    [4, FrameType.Error],
  ]);
  assert.deepEqual(frames[3]!.body, {
    name: "ResourceExhaustedError",
    message:
      `Cannot call method "m": its answer of 2 bytes was not sent: ${BUDGET} bytes already wait for this client, which is not reading its responses (output budget ${BUDGET} bytes)`,
    data: { ran: true },
  });
});

Deno.test("responder: a connection that closes while answers wait drops them", async () => {
  const t = setup();
  t.writer.buffered = WRITE_HIGH_WATER + 1;
  t.responder.answer(1, "m", "a", false);
  t.responder.answer(2, "m", "b", false);
  t.state.closed = true;
  t.drain(0);
  // The flush ends at its next turn: after it, nothing waits any more.
  await within(
    (async () => {
      while (t.responder.waiting) await Promise.resolve();
    })(),
    2000,
    "the waiting answers dropped",
  );
  assert.deepEqual(t.pushed, []);
  assert.equal(t.state.drained, 0, "no drained() for a closed connection");
  // A later answer (the connection reopened its writer) is not doubled.
  t.state.closed = false;
  t.writer.buffered = 0;
  t.responder.answer(3, "m", "c", false);
  assert.deepEqual(t.frames().map((f) => f.id), [3]);
});
