/**
 * The server side of streaming calls (`src/server/_stream.ts`) as a unit, on
 * a scripted connection (no socket): the `open` → request pairing, input
 * within the window and the connection's input budget (at and one past),
 * the grants sent as the handler reads, output paced by the client's credit,
 * by the bytes in flight and by the connection's output queue, the frame
 * limit of one item (at and one past), and cancellation stopping the
 * producer.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  INPUT_BUDGET,
  isItemStream,
  ServerStreams,
  STREAM_BYTES_IN_FLIGHT,
  STREAM_END,
  type StreamHost,
} from "../../src/server/_stream.ts";
import { type Frame, FrameType, StreamMode } from "../../src/protocol/frame.ts";
import {
  encodeWindow,
  MAX_STREAM_WINDOW,
} from "../../src/protocol/stream_frames.ts";
import { ProtocolError, ResourceExhaustedError } from "../../src/errors.ts";
import { stillPending, waitFor, within } from "../_wait.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** A scripted connection: what was pushed, and knobs for the rest. */
function host(peerWindow = 4) {
  const pushed: {
    type: number;
    id: number;
    bytes?: Uint8Array | undefined;
  }[] = [];
  const state = {
    buffered: 0,
    sendLimit: 1 << 20,
    peerWindow,
    below: [] as { limit: number; resolve: () => void }[],
  };
  const h: StreamHost = {
    push: (type, id, bytes) => void pushed.push({ type, id, bytes }),
    buffered: () => state.buffered,
    below: (limit) =>
      new Promise((resolve) => state.below.push({ limit, resolve })),
    encode: (value) => {
      if (typeof value === "function") throw new TypeError("a function");
      return utf8.encode(JSON.stringify(value));
    },
    decode: (bytes) => JSON.parse(text.decode(bytes)),
    sendLimit: () => state.sendLimit,
    peerWindow: () => state.peerWindow,
  };
  return {
    h,
    state,
    pushed,
    /** The items pushed for `id`, decoded. */
    items: (id: number) =>
      pushed.filter((p) => p.type === FrameType.Item && p.id === id).map((
        p,
      ) => JSON.parse(text.decode(p.bytes))),
    /** The window grants pushed for `id`. */
    grants: (id: number) =>
      pushed.filter((p) => p.type === FrameType.Window && p.id === id).map((
        p,
      ) => new DataView(p.bytes!.buffer).getUint32(0)),
  };
}

const frame = (
  type: number,
  id: number,
  payload: Uint8Array = new Uint8Array(0),
): Frame => ({ type, id, payload }) as Frame;
const item = (id: number, value: unknown) =>
  frame(FrameType.Item, id, utf8.encode(JSON.stringify(value)));
const open = (id: number, mode: number) =>
  frame(FrameType.Open, id, new Uint8Array([mode]));
const window = (id: number, n: number) =>
  frame(FrameType.Window, id, encodeWindow(n));

/** An async iterable of `values`. */
async function* gen(...values: unknown[]): AsyncGenerator<unknown> {
  yield* values;
}

/** Every item of `iterable`, within 2 s. */
function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  return within(Array.fromAsync(iterable), 2000, "the input to end");
}

/** `promise` within 2 s: a stream that does not settle fails the test. */
function settled<T>(promise: Promise<T>, what = "the stream"): Promise<T> {
  return within(promise, 2000, what);
}

Deno.test("streams: an open pairs with the next request's id; other frames are not streaming frames", () => {
  const t = host();
  const s = new ServerStreams(t.h, 8);
  assert.equal(s.take(1), 0, "no open: a unary call");
  for (const type of [FrameType.Request, FrameType.Cancel, FrameType.Ping]) {
    assert.equal(s.onFrame(frame(type, 1)), false);
  }
  assert.equal(s.onFrame(open(5, StreamMode.Output)), true);
  assert.equal(s.onFrame(frame(FrameType.Request, 5)), false);
  assert.equal(s.take(5), StreamMode.Output);
  assert.equal(s.take(5), 0, "the open is consumed");
  s.onFrame(open(6, StreamMode.Input | StreamMode.Output));
  assert.throws(
    () => s.take(7),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        "Cannot read request: the open frame before it was for call 6, not 7",
  );
  s.onFrame(open(8, StreamMode.Input));
  assert.throws(
    () => s.onFrame(frame(FrameType.Cancel, 8)),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        "Cannot read frame: an open frame (call 8) must be followed by its request, got frame type 4",
  );
  assert.throws(
    () => new ServerStreams(t.h, 0).onFrame(open(1, StreamMode.Output)),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        "Cannot read frame: this server does not accept streams (it announced no streamWindow)",
  );
});

Deno.test("streams: input items arrive in order, decoded, then end; frames for unknown calls are ignored", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 8);
  assert.equal(s.onFrame(item(3, "stray")), true);
  assert.equal(s.onFrame(frame(FrameType.End, 3)), true);
  assert.equal(s.onFrame(window(3, 1)), true);
  const input = s.input(1, new AbortController().signal);
  s.onFrame(item(1, 1));
  s.onFrame(item(1, { b: 2 }));
  s.onFrame(frame(FrameType.End, 1));
  s.onFrame(item(1, "after end")); // dropped
  assert.deepEqual(await collect(input), [1, { b: 2 }]);
  await assert.rejects(
    collect(input),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message === "Cannot read the call's input twice",
  );
});

Deno.test("streams: the handler's reads grant the window back once half of it was read; one item past the window is a protocol error", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 4);
  const input = s.input(1, new AbortController().signal);
  for (let i = 0; i < 4; i++) s.onFrame(item(1, i));
  const it = input[Symbol.asyncIterator]();
  assert.deepEqual(await settled(it.next(), "the next item"), {
    value: 0,
    done: false,
  });
  assert.deepEqual(t.grants(1), [], "one of four read: no grant yet");
  assert.deepEqual(await settled(it.next(), "the next item"), {
    value: 1,
    done: false,
  });
  assert.deepEqual(t.grants(1), [2], "half read: two granted");
  // The grant makes room for two more: the window holds again.
  s.onFrame(item(1, "x"));
  s.onFrame(item(1, "y"));
  assert.throws(
    () => s.onFrame(item(1, "z")),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        "Cannot read item of call 1: the client sent more items than its window allows",
  );
  await settled(it.return!(undefined), "the input's end");
});

Deno.test("streams: an undecodable input item fails the read with a protocol error", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 4);
  const input = s.input(1, new AbortController().signal);
  s.onFrame(frame(FrameType.Item, 1, utf8.encode("{nope")));
  await assert.rejects(
    collect(input),
    (e: unknown) =>
      e instanceof ProtocolError &&
      /^Cannot read input item: /.test(e.message),
  );
});

Deno.test("streams: the connection's input budget holds exactly INPUT_BUDGET unread bytes; one byte more fails that input after its items", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 8);
  const half = INPUT_BUDGET / 2;
  const big = (fill: number) =>
    frame(FrameType.Item, 1, new Uint8Array(half).fill(fill));
  let decoded = 0;
  t.h.decode = () => ++decoded;
  const input = s.input(1, new AbortController().signal);
  const other = s.input(2, new AbortController().signal);
  s.onFrame(big(0x31));
  s.onFrame(big(0x32));
  // Exactly the budget: both kept. One more byte, on any stream: refused.
  s.onFrame(frame(FrameType.Item, 2, new Uint8Array(1)));
  s.onFrame(frame(FrameType.End, 2));
  await assert.rejects(
    collect(other),
    (e: unknown) =>
      e instanceof ResourceExhaustedError && e.ran === true &&
      e.message ===
        `Cannot read the input of call 2: ${INPUT_BUDGET} bytes of stream input already wait unread on this connection (input budget ${INPUT_BUDGET} bytes)`,
  );
  const it = input[Symbol.asyncIterator]();
  assert.deepEqual(await settled(it.next(), "the next item"), {
    value: 1,
    done: false,
  });
  // Half the budget was read: an item of half the budget fits again.
  s.onFrame(big(0x33));
  s.onFrame(frame(FrameType.End, 1));
  assert.deepEqual(await settled(it.next(), "the next item"), {
    value: 2,
    done: false,
  });
  assert.deepEqual(await settled(it.next(), "the next item"), {
    value: 3,
    done: false,
  });
  assert.deepEqual(await settled(it.next(), "the next item"), {
    value: undefined,
    done: true,
  });
});

Deno.test("streams: an aborted call's input fails with the abort reason and drops what was not read; forget() ends it", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 8);
  const controller = new AbortController();
  const input = s.input(1, controller.signal);
  s.onFrame(item(1, "unread"));
  const reason = new Error("cancelled");
  controller.abort(reason);
  await assert.rejects(collect(input), (e: unknown) => e === reason);
  const later = s.input(2, new AbortController().signal);
  const reading = collect(later);
  assert.equal(await stillPending(reading), true, "waits for items");
  s.forget(2);
  await assert.rejects(
    within(reading, 2000, "the forgotten input"),
    /call over/,
  );
  assert.equal(s.onFrame(item(2, "late")), true, "ignored after forget");
});

Deno.test("streams: run() in input mode settles with the handler's value and forgets the call", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 8);
  const input = s.input(1, new AbortController().signal);
  const done = s.run(
    1,
    StreamMode.Input,
    Promise.resolve(7),
    new AbortController().signal,
  );
  assert.equal(await settled(done), 7);
  await assert.rejects(collect(input), /call over/);
});

Deno.test("streams: output items go out one per credit; a window frame grants more; STREAM_END after the last", async () => {
  const t = host(2);
  const s = new ServerStreams(t.h, 8);
  let finished = false;
  async function* produce() {
    try {
      for (let i = 0; i < 5; i++) yield i;
    } finally {
      finished = true;
    }
  }
  const done = s.run(
    1,
    StreamMode.Output,
    produce(),
    new AbortController().signal,
  );
  await waitFor(() => t.items(1).length === 2, "the first two items");
  assert.equal(await stillPending(done), true, "no credit: it waits");
  assert.deepEqual(t.items(1), [0, 1]);
  assert.equal(s.onFrame(window(1, 1)), true);
  await waitFor(() => t.items(1).length === 3, "one more item");
  assert.equal(await stillPending(done), true);
  s.onFrame(window(1, 5));
  assert.equal(await within(done, 2000, "the stream's end"), STREAM_END);
  assert.deepEqual(t.items(1), [0, 1, 2, 3, 4]);
  assert.equal(finished, true);
  assert.equal(s.onFrame(window(1, 1)), true, "ignored once over");
});

Deno.test("streams: a credit past MAX_STREAM_WINDOW is a protocol error", async () => {
  const t = host(0);
  const s = new ServerStreams(t.h, 8);
  const controller = new AbortController();
  const done = s.run(
    1,
    StreamMode.Output,
    (async function* () {
      yield 1;
    })(),
    controller.signal,
  );
  s.onFrame(window(1, MAX_STREAM_WINDOW));
  assert.throws(
    () => s.onFrame(window(1, 1)),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        `Cannot read window frame: the client granted more than ${MAX_STREAM_WINDOW} items on call 1`,
  );
  controller.abort();
  await within(done, 2000, "the stream");
});

Deno.test("streams: a plain value, or a promise of one, is one item; a promise of a stream is streamed; a ReadableStream too", async () => {
  const t = host(8);
  const s = new ServerStreams(t.h, 8);
  const signal = new AbortController().signal;
  const run = (id: number, result: unknown) =>
    settled(s.run(id, StreamMode.Output, result, signal));
  assert.equal(await run(1, 42), STREAM_END);
  assert.equal(await run(2, Promise.resolve([1, 2])), STREAM_END);
  assert.equal(await run(3, Promise.resolve(gen("a", "b"))), STREAM_END);
  assert.equal(await run(4, ReadableStream.from(["r1", "r2"])), STREAM_END);
  assert.deepEqual(
    [t.items(1), t.items(2), t.items(3), t.items(4)],
    [[42], [[1, 2]], ["a", "b"], ["r1", "r2"]],
  );
});

Deno.test("streams: an item exactly at the client's frame limit is sent, one byte more fails the stream; an unencodable item is a TypeError", async () => {
  const t = host(8);
  const s = new ServerStreams(t.h, 8);
  const signal = new AbortController().signal;
  const run = (id: number, result: unknown) =>
    settled(s.run(id, StreamMode.Output, result, signal).catch((e) => e));
  // "aaa…" encodes as its length + 2 quotes; a frame adds 5 bytes.
  t.state.sendLimit = 100;
  const fits = "a".repeat(100 - 5 - 2);
  assert.equal(await run(1, gen(fits)), STREAM_END);
  assert.deepEqual(t.items(1), [fits]);
  const error = await run(2, fits + "a");
  assert.ok(error instanceof ResourceExhaustedError);
  assert.equal(error.ran, true);
  assert.equal(
    error.message,
    "Cannot send stream item: 96 bytes exceed the client's frame limit of 100 bytes",
  );
  assert.deepEqual(t.items(2), []);
  const bad = await run(3, () => 1);
  assert.ok(bad instanceof TypeError);
  assert.equal(bad.message, "Cannot send stream item: a function");
});

Deno.test("streams: a cancelled output stops at once and stops its producer", async () => {
  const t = host(1);
  const s = new ServerStreams(t.h, 8);
  const controller = new AbortController();
  const stopped = Promise.withResolvers<void>();
  async function* produce() {
    try {
      for (let i = 0;; i++) yield i;
    } finally {
      stopped.resolve();
    }
  }
  const done = s.run(1, StreamMode.Output, produce(), controller.signal);
  await waitFor(() => t.items(1).length === 1, "the first item");
  assert.equal(await stillPending(done), true, "waiting for credit");
  controller.abort();
  assert.equal(await within(done, 2000, "the stream"), undefined);
  await within(stopped.promise, 2000, "the producer's finally");
  assert.deepEqual(t.items(1), [0]);
  // Cancelled while the producer awaits: no item after the abort.
  const c2 = new AbortController();
  const never = Promise.withResolvers<never>();
  const slow = s.run(
    2,
    StreamMode.Output,
    (async function* () {
      yield await never.promise;
    })(),
    c2.signal,
  );
  assert.equal(await stillPending(slow), true);
  c2.abort();
  assert.equal(await within(slow, 2000, "the stream"), undefined);
  // Cancelled while a promised value is pending.
  const c3 = new AbortController();
  const late = s.run(3, StreamMode.Output, never.promise, c3.signal);
  assert.equal(await stillPending(late), true);
  c3.abort();
  assert.equal(await within(late, 2000, "the stream"), undefined);
  assert.deepEqual([t.items(2), t.items(3)], [[], []]);
});

Deno.test("streams: output waits while the connection's queue is over its high water, until it drains to half", async () => {
  const t = host(8);
  const s = new ServerStreams(t.h, 8);
  t.state.buffered = 512 * 1024 + 1;
  const done = s.run(
    1,
    StreamMode.Output,
    gen("a", "b"),
    new AbortController().signal,
  );
  await waitFor(() => t.state.below.length === 1, "a wait for the queue");
  assert.equal(t.state.below[0]!.limit, 256 * 1024);
  assert.deepEqual(t.items(1), []);
  t.state.buffered = 512 * 1024; // exactly the high water: goes on
  t.state.below[0]!.resolve();
  assert.equal(await within(done, 2000, "the stream"), STREAM_END);
  assert.deepEqual(t.items(1), ["a", "b"]);
});

Deno.test("streams: at most STREAM_BYTES_IN_FLIGHT bytes are sent and not granted back, whatever the credit", async () => {
  const t = host(100);
  const s = new ServerStreams(t.h, 8);
  const size = STREAM_BYTES_IN_FLIGHT / 4; // each item's encoded size
  const value = "x".repeat(size - 2);
  const done = s.run(
    1,
    StreamMode.Output,
    (async function* () {
      for (let i = 0; i < 6; i++) yield value;
    })(),
    new AbortController().signal,
  );
  await waitFor(() => t.items(1).length === 4, "four items (1 MiB)");
  assert.equal(await stillPending(done), true, "1 MiB in flight: it waits");
  assert.equal(t.items(1).length, 4);
  // Granting one back frees the oldest item's bytes: exactly one more.
  s.onFrame(window(1, 1));
  await waitFor(() => t.items(1).length === 5, "a fifth item");
  assert.equal(await stillPending(done), true);
  s.onFrame(window(1, 1));
  await waitFor(() => t.items(1).length === 6, "the sixth item");
  // 1 MiB in flight again: even the producer's end waits for a grant.
  assert.equal(await stillPending(done), true);
  s.onFrame(window(1, 1));
  assert.equal(await within(done, 2000, "the stream"), STREAM_END);
  assert.equal(t.items(1).length, 6);
});

Deno.test("isItemStream: an async iterable or a ReadableStream, nothing else", () => {
  assert.equal(isItemStream((async function* () {})()), true);
  assert.equal(isItemStream(new ReadableStream()), true);
  assert.equal(
    isItemStream({ [Symbol.asyncIterator]: () => ({}) }),
    true,
  );
  for (
    const v of [[1], "s", null, undefined, 1, { next() {} }, {
      [Symbol.asyncIterator]: 1,
    }]
  ) {
    assert.equal(isItemStream(v), false, String(v));
  }
});

Deno.test("streams: the documented budgets: 16 MiB of unread input per connection, 1 MiB unacknowledged per stream", () => {
  assert.equal(INPUT_BUDGET, 16 * 1024 * 1024);
  assert.equal(STREAM_BYTES_IN_FLIGHT, 1024 * 1024);
});

Deno.test("streams: an input item is copied on arrival (the read buffer is reused)", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 8);
  const input = s.input(1, new AbortController().signal);
  const payload = utf8.encode('"kept"');
  assert.equal(s.onFrame(frame(FrameType.Item, 1, payload)), true);
  payload.fill(0x20); // the connection reads the next bytes into it
  s.onFrame(frame(FrameType.End, 1));
  assert.deepEqual(await collect(input), ["kept"]);
});

Deno.test("streams: an abort drops the unread input and frees its budget; items after it are ignored; an input that ended stays ended", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 8);
  const controller = new AbortController();
  const input = s.input(1, controller.signal);
  s.onFrame(frame(FrameType.Item, 1, new Uint8Array(INPUT_BUDGET - 1)));
  const reason = new Error("gone");
  controller.abort(reason);
  s.onFrame(item(1, "late"));
  const it = input[Symbol.asyncIterator]();
  await assert.rejects(settled(it.next()), (e: unknown) => e === reason);
  // The budget is free again: a full budget fits on another stream.
  const other = s.input(2, new AbortController().signal);
  t.h.decode = (bytes) => bytes.length;
  s.onFrame(frame(FrameType.Item, 2, new Uint8Array(INPUT_BUDGET)));
  s.onFrame(frame(FrameType.End, 2));
  assert.deepEqual(await collect(other), [INPUT_BUDGET]);
  // Ended, then aborted with items unread: it ends without the error.
  const c3 = new AbortController();
  const ended = s.input(3, c3.signal);
  s.onFrame(item(3, "unread"));
  s.onFrame(frame(FrameType.End, 3));
  c3.abort(new Error("after the end"));
  assert.deepEqual(await collect(ended), []);
});

Deno.test("streams: over the budget, the items already received are still read before the error", async () => {
  const t = host();
  const s = new ServerStreams(t.h, 8);
  t.h.decode = (bytes) => bytes.length;
  const input = s.input(1, new AbortController().signal);
  s.onFrame(frame(FrameType.Item, 1, new Uint8Array(10)));
  s.onFrame(frame(FrameType.Item, 1, new Uint8Array(INPUT_BUDGET)));
  const it = input[Symbol.asyncIterator]();
  assert.deepEqual(await settled(it.next()), { value: 10, done: false });
  await assert.rejects(settled(it.next()), ResourceExhaustedError);
});

Deno.test("streams: a codec failing with a non-Error still names the step", async () => {
  const t = host(8);
  const s = new ServerStreams(t.h, 8);
  t.h.decode = () => {
    throw "nope";
  };
  const input = s.input(1, new AbortController().signal);
  s.onFrame(item(1, 1));
  await assert.rejects(
    collect(input),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message === "Cannot read input item: undecodable",
  );
  t.h.encode = () => {
    throw "nope";
  };
  const error = await settled(
    s.run(2, StreamMode.Output, 1, new AbortController().signal),
  ).catch((e) => e);
  assert.ok(error instanceof TypeError);
  assert.equal(error.message, "Cannot send stream item: not encodable");
});

Deno.test("streams: a window frame while the producer is busy only adds credit", async () => {
  const t = host(1);
  const s = new ServerStreams(t.h, 8);
  const next = Promise.withResolvers<void>();
  const done = s.run(
    1,
    StreamMode.Output,
    (async function* () {
      yield 1;
      await next.promise;
      yield 2;
    })(),
    new AbortController().signal,
  );
  await waitFor(() => t.items(1).length === 1, "the first item");
  s.onFrame(window(1, 1)); // credit 1: the producer asks for item 2
  assert.equal(s.onFrame(window(1, 1)), true, "no waiter to wake");
  next.resolve();
  assert.equal(await settled(done), STREAM_END);
  assert.deepEqual(t.items(1), [1, 2]);
});

Deno.test("streams: an item that cannot be sent stops its producer (its finally runs)", async () => {
  const t = host(8);
  const s = new ServerStreams(t.h, 8);
  const stopped = Promise.withResolvers<void>();
  const error = await settled(
    s.run(
      1,
      StreamMode.Output,
      (async function* () {
        try {
          yield 1;
          yield () => 2; // not encodable
          yield 3;
        } finally {
          stopped.resolve();
        }
      })(),
      new AbortController().signal,
    ),
  ).catch((e) => e);
  assert.ok(error instanceof TypeError);
  await within(stopped.promise, 2000, "the producer's finally");
  assert.deepEqual(t.items(1), [1]);
});

Deno.test("streams: a producer that throws fails the stream with its error after the items before it", async () => {
  const t = host(8);
  const s = new ServerStreams(t.h, 8);
  const boom = new RangeError("producer failed");
  const error = await settled(
    s.run(
      1,
      StreamMode.Output,
      (async function* () {
        yield 1;
        throw boom;
      })(),
      new AbortController().signal,
    ),
  ).catch((e) => e);
  assert.equal(error, boom);
  assert.deepEqual(t.items(1), [1]);
});
