/**
 * The client side of a streaming call (`src/client/_stream.ts`) as a unit,
 * on a scripted connection: the open mode, when a stream may be sent, items
 * delivered in order and the window granted back as they are read (none
 * after the end), more items than the window, undecodable items, the
 * errors of a stream that broke after items, cancellation by the reader
 * and by the caller's signal, the input pumped one item per credit (and
 * held while the output is full), and the routing of stream frames.
 */
import assert from "node:assert/strict";
import {
  ClientStream,
  type ClientStreamHost,
  onStreamFrame,
  openClientStream,
} from "../../src/client/_stream.ts";
import {
  CancelledError,
  ConnectionError,
  ProtocolError,
  RemoteError,
  ServerClosingError,
} from "../../src/errors.ts";
import { jsonCodec } from "../../src/protocol/codec.ts";
import { FrameType } from "../../src/protocol/frame.ts";
import type { CallOptions } from "../../src/client/options.ts";
import { within } from "../_wait.ts";

const enc = (v: unknown) => jsonCodec.encode(v);

/** A scripted connection for one stream. */
function host(window = 4, peerWindow = 2) {
  const pushed: [number, number, number[]][] = [];
  const state = { buffered: 0 };
  let below: (() => void) | undefined;
  const belowLimits: number[] = [];
  const h: ClientStreamHost = {
    push: (type, id, bytes) => void pushed.push([type, id, [...(bytes ?? [])]]),
    encode: (v) => jsonCodec.encode(v),
    decode: (b) => jsonCodec.decode(b),
    buffered: () => state.buffered,
    below: (limit) => {
      belowLimits.push(limit);
      return new Promise<void>((resolve) => below = resolve);
    },
    window,
    peerWindow,
    name: "unit:1",
  };
  return {
    h,
    pushed,
    state,
    belowLimits,
    drain: () => below?.(),
    windows: () => pushed.filter(([t]) => t === FrameType.Window),
  };
}

/** Lets the input pump and stream callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

Deno.test("stream: the open mode says whether input follows; a stream is sent once, and only to a server with a stream window", () => {
  const { h } = host();
  const out = new ClientStream("m", h, undefined, undefined);
  assert.deepEqual([...out.openPayload], [1]);
  assert.equal(out.attached, false);
  assert.equal(out.refusal(), undefined);
  out.attach(5);
  assert.equal(out.attached, true);
  const again = out.refusal();
  assert.ok(again instanceof TypeError);
  assert.equal(
    again.message,
    'Cannot stream method "m": a stream is sent once (an interceptor called next() again)',
  );
  const both = new ClientStream("m", h, (async function* () {})(), undefined);
  assert.deepEqual([...both.openPayload], [3]);
  const old = new ClientStream("m", host(4, 0).h, undefined, undefined);
  const refusal = old.refusal();
  assert.ok(refusal instanceof ProtocolError);
  assert.equal(
    refusal.message,
    'Cannot stream method "m": server unit:1 does not accept streaming calls (its settings announce no streamWindow: an older zkrpc; request not sent)',
  );
  out.end();
  both.end();
});

Deno.test("stream: items arrive in order; the window is granted back every half window read, never after the end", async () => {
  const { h, windows } = host(4);
  const s = new ClientStream("m", h, undefined, undefined);
  s.attach(7);
  const reader = s.readable.getReader();
  for (let i = 0; i < 4; i++) s.onItem(enc(i));
  assert.equal(s.received, 4);
  assert.deepEqual(await reader.read(), { done: false, value: 0 });
  assert.equal(windows().length, 0);
  assert.deepEqual(await reader.read(), { done: false, value: 1 });
  assert.deepEqual(windows(), [[FrameType.Window, 7, [0, 0, 0, 2]]]);
  // A read that waits gets the next item handed over directly.
  await reader.read();
  await reader.read();
  assert.equal(windows().length, 2);
  const waiting = reader.read();
  s.onItem(enc("late"));
  assert.deepEqual(await waiting, { done: false, value: "late" });
  // Ended: queued items are still read, but no window is granted.
  s.onItem(enc("x"));
  s.end();
  assert.deepEqual(await reader.read(), { done: false, value: "x" });
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  assert.equal(windows().length, 2);
});

Deno.test("stream: the window's worth of items is accepted; one more is a ProtocolError", () => {
  const { h } = host(3);
  const s = new ClientStream("m", h, undefined, undefined);
  for (let i = 0; i < 3; i++) s.onItem(enc(i));
  assert.throws(
    () => s.onItem(enc(3)),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.message ===
        'Cannot read item of stream "m" from unit:1: the server sent more items than the window allows',
  );
  s.end();
});

Deno.test("stream: an undecodable item cancels the call and is the stream's error, not the cancel it caused", async () => {
  const { h } = host();
  const s = new ClientStream("m", h, undefined, undefined);
  s.onItem(enc(1));
  s.onItem(new TextEncoder().encode("{"));
  assert.equal(s.received, 1);
  assert.equal(s.signal.aborted, true);
  const reason = s.signal.reason;
  assert.ok(reason instanceof ProtocolError);
  assert.match(
    reason.message,
    /^Cannot read stream "m": cannot decode item 2: /,
  );
  s.fail(new CancelledError("cancelled"));
  const reader = s.readable.getReader();
  assert.deepEqual(await reader.read(), { done: false, value: 1 });
  await assert.rejects(reader.read(), (e: unknown) => e === reason);
});

Deno.test("stream: a connection lost after items says how many arrived; before any item, or another error, is passed on as is", async () => {
  for (
    const error of [
      new ConnectionError("gone", { written: true }),
      new ServerClosingError("closing", { notRun: false }),
    ]
  ) {
    const { h } = host();
    const s = new ClientStream("m", h, undefined, undefined);
    s.onItem(enc("a"));
    s.onItem(enc("b"));
    s.fail(error);
    const reader = s.readable.getReader();
    assert.equal((await reader.read()).value, "a");
    assert.equal((await reader.read()).value, "b");
    await assert.rejects(reader.read(), (e: unknown) => {
      assert.ok(e instanceof ConnectionError);
      assert.equal(
        e.message,
        `Stream "m" from unit:1 broke after 2 items: ${error.message}`,
      );
      assert.equal(e.written, true);
      assert.equal(e.cause, error);
      return true;
    });
  }
  const early = new ConnectionError("gone", { written: false });
  const s1 = new ClientStream("m", host().h, undefined, undefined);
  s1.fail(early);
  await assert.rejects(s1.readable.getReader().read(), (e) => e === early);
  const remote = new RemoteError("no", { remoteName: "E" });
  const s2 = new ClientStream("m", host().h, undefined, undefined);
  s2.onItem(enc(1));
  s2.fail(remote);
  const r2 = s2.readable.getReader();
  await r2.read();
  await assert.rejects(r2.read(), (e) => e === remote);
  const s3 = new ClientStream("m", host().h, undefined, undefined);
  s3.fail(undefined);
  await assert.rejects(
    s3.readable.getReader().read(),
    (e: unknown) => e instanceof Error && e.message === "stream failed",
  );
});

Deno.test("stream: the reader's cancel aborts the call with its reason (or a CancelledError) and drops later items", async () => {
  const { h } = host(2);
  const s = new ClientStream("m", h, undefined, undefined);
  s.onItem(enc(1));
  await s.readable.cancel();
  assert.equal(s.signal.aborted, true);
  assert.ok(s.signal.reason instanceof CancelledError);
  assert.equal(s.signal.reason.message, 'Stream "m" cancelled');
  // Later items are dropped, even past the window.
  for (let i = 0; i < 5; i++) s.onItem(enc(i));
  s.end();
  const t = new ClientStream("n", host().h, undefined, undefined);
  const why = new Error("enough");
  await t.readable.cancel(why);
  assert.equal(t.signal.reason, why);
});

Deno.test("stream: the caller's signal aborts the stream; its listener is removed when the stream ends", () => {
  const pre = new ClientStream(
    "m",
    host().h,
    undefined,
    AbortSignal.abort("early"),
  );
  assert.equal(pre.signal.aborted, true);
  assert.equal(pre.signal.reason, "early");
  pre.end();
  const controller = new AbortController();
  const s = new ClientStream("m", host().h, undefined, controller.signal);
  assert.equal(s.signal.aborted, false);
  controller.abort("later");
  assert.equal(s.signal.reason, "later");
  s.end();
  const removed: string[] = [];
  const spy = new AbortController();
  const signal = spy.signal;
  const original = signal.removeEventListener.bind(signal);
  signal.removeEventListener = ((type: string, fn: () => void) => {
    removed.push(type);
    original(type, fn);
  }) as typeof signal.removeEventListener;
  const ended = new ClientStream("m", host().h, undefined, signal);
  ended.end();
  assert.deepEqual(removed, ["abort"]);
  spy.abort("after the end");
  assert.equal(ended.signal.aborted, false);
});

Deno.test("stream: input is sent one item per credit of the server's window, then end", async () => {
  const { h, pushed } = host(4, 2);
  let pulled = 0;
  async function* input() {
    for (const v of ["a", "b", "c", "d"]) {
      pulled++;
      yield v;
    }
  }
  const s = new ClientStream("m", h, input(), undefined);
  s.attach(3);
  await settle();
  const items = () =>
    pushed.filter(([t]) => t === FrameType.Item).map(([, id, b]) => [
      id,
      jsonCodec.decode(new Uint8Array(b)),
    ]);
  assert.deepEqual(items(), [[3, "a"], [3, "b"]]);
  assert.equal(pulled, 2, "not pulled before a credit");
  s.onWindow(1);
  await settle();
  assert.deepEqual(items().length, 3);
  s.onWindow(5);
  await settle();
  assert.deepEqual(items().map(([, v]) => v), ["a", "b", "c", "d"]);
  assert.deepEqual(pushed.at(-1), [FrameType.End, 3, []]);
  s.end();
});

Deno.test("stream: no input item is pulled while more than 1 MiB of output waits; it goes on below 512 KiB", async () => {
  const { h, pushed, state, belowLimits, drain } = host(4, 10);
  async function* input() {
    yield 1;
    yield 2;
  }
  state.buffered = 1024 * 1024 + 1;
  const s = new ClientStream("m", h, input(), undefined);
  s.attach(1);
  await settle();
  assert.equal(pushed.length, 0);
  assert.deepEqual(belowLimits, [512 * 1024]);
  state.buffered = 1024 * 1024;
  drain();
  await settle();
  assert.equal(pushed.filter(([t]) => t === FrameType.Item).length, 2);
  s.end();
});

Deno.test("stream: an input item that cannot be encoded cancels the call with a TypeError; an input cut short is closed", async () => {
  const { h } = host();
  const s = new ClientStream(
    "m",
    h,
    (async function* () {
      yield Symbol("x");
    })(),
    undefined,
  );
  s.attach(1);
  await settle();
  assert.ok(s.signal.reason instanceof TypeError);
  assert.match(s.signal.reason.message, /^Cannot stream input of method "m": /);
  s.fail(new CancelledError("cancelled"));
  await assert.rejects(
    s.readable.getReader().read(),
    (e: unknown) => e === s.signal.reason,
  );
  // The call ends before the input does: the input's finally runs.
  let closed = false;
  const t = new ClientStream(
    "m",
    host(4, 1).h,
    (async function* () {
      try {
        yield 1;
      } finally {
        closed = true;
      }
    })(),
    undefined,
  );
  t.attach(1);
  await settle();
  t.end();
  await settle();
  assert.equal(closed, true);
});

Deno.test("stream frames: routed to their call's stream; an end settles the call; unknown ids are dropped, a bad window is not", () => {
  const { h } = host(4, 0);
  const s = new ClientStream("m", h, undefined, undefined);
  const settled: unknown[] = [];
  const call = {
    stream: s,
    resolve: (v: unknown) => settled.push(["resolve", v]),
  };
  const calls = {
    get: (id: number) => id === 1 ? call : undefined,
    settle: (c: unknown) => settled.push(["settle", c === call]),
  };
  onStreamFrame({ type: FrameType.Item, id: 1, payload: enc(5) }, calls);
  assert.equal(s.received, 1);
  onStreamFrame({ type: FrameType.Item, id: 2, payload: enc(6) }, calls);
  assert.equal(s.received, 1);
  onStreamFrame(
    { type: FrameType.Window, id: 1, payload: new Uint8Array([0, 0, 0, 3]) },
    calls,
  );
  assert.throws(
    () =>
      onStreamFrame(
        {
          type: FrameType.Window,
          id: 2,
          payload: new Uint8Array([0, 0, 0, 0]),
        },
        calls,
      ),
    ProtocolError,
  );
  onStreamFrame(
    { type: FrameType.End, id: 2, payload: new Uint8Array() },
    calls,
  );
  assert.equal(settled.length, 0);
  onStreamFrame(
    { type: FrameType.End, id: 1, payload: new Uint8Array() },
    calls,
  );
  assert.deepEqual([...settled], [["settle", true], ["resolve", undefined]]);
  // A call that is not a stream: dropped.
  const plain = { stream: undefined, resolve: () => settled.push("plain") };
  onStreamFrame({ type: FrameType.End, id: 9, payload: new Uint8Array() }, {
    get: () => plain,
    settle: () => settled.push("plain settle"),
  });
  assert.equal(settled.length, 2);
  s.end();
});

Deno.test("openClientStream: sends with the stream's own signal, without input; the send's outcome ends the stream", async () => {
  const { h } = host();
  let seen: CallOptions | undefined;
  const done = Promise.withResolvers<unknown>();
  const controller = new AbortController();
  const readable = openClientStream(
    "m",
    h,
    { timeout: 5, input: (async function* () {})(), signal: controller.signal },
    (options, stream) => {
      seen = options;
      stream.onItem(enc("only"));
      return done.promise;
    },
  );
  assert.deepEqual(Object.keys(seen!).sort(), ["signal", "timeout"]);
  assert.equal(seen!.timeout, 5);
  assert.notEqual(seen!.signal, controller.signal);
  controller.abort("stop");
  assert.equal(seen!.signal!.reason, "stop");
  done.resolve(undefined);
  const reader = readable.getReader();
  assert.deepEqual(await within(reader.read(), 2000, "the item"), {
    done: false,
    value: "only",
  });
  assert.equal((await within(reader.read(), 2000, "the end")).done, true);
  const failing = openClientStream(
    "m",
    host().h,
    {},
    () => Promise.reject(new RemoteError("bad", { remoteName: "E" })),
  );
  await assert.rejects(
    within(failing.getReader().read(), 2000, "the error"),
    RemoteError,
  );
});

Deno.test("stream: a window is granted only for items read: none for items that arrive with no read waiting", async () => {
  const { h, windows } = host(2);
  const s = new ClientStream("m", h, undefined, undefined);
  s.attach(4);
  await settle(); // nothing read: the stream does not pull by itself
  s.onItem(enc(1));
  s.onItem(enc(2));
  assert.equal(windows().length, 0);
  const reader = s.readable.getReader();
  assert.equal((await reader.read()).value, 1);
  assert.equal(windows().length, 1);
  // A read waiting gets the next item; the one after it waits again.
  assert.equal((await reader.read()).value, 2);
  const waiting = reader.read();
  await settle();
  s.onItem(enc(3));
  assert.equal((await waiting).value, 3);
  assert.equal(windows().length, 3);
  s.onItem(enc(4));
  assert.equal(windows().length, 3, "not read yet: no grant");
  s.end();
});

Deno.test("stream: an item or input item that fails with a non-Error says so", async () => {
  const decodeFails = host();
  decodeFails.h.decode = () => {
    throw "bad bytes";
  };
  const s = new ClientStream("m", decodeFails.h, undefined, undefined);
  s.onItem(enc(1));
  assert.equal(
    (s.signal.reason as Error).message,
    'Cannot read stream "m": cannot decode item 1: undecodable',
  );
  s.fail(new CancelledError("cancelled"));
  const encodeFails = host();
  encodeFails.h.encode = () => {
    throw "no";
  };
  const t = new ClientStream(
    "m",
    encodeFails.h,
    (async function* () {
      yield 1;
    })(),
    undefined,
  );
  t.attach(1);
  await settle();
  const reason = t.signal.reason as TypeError;
  assert.equal(
    reason.message,
    'Cannot stream input of method "m": not encodable',
  );
  assert.equal(reason.cause, "no");
  t.end();
  await assert.rejects(s.readable.getReader().read(), ProtocolError);
});

Deno.test("stream: a CancelledError from the call is the stream's error when this side did not cancel it", async () => {
  const s = new ClientStream("m", host().h, undefined, undefined);
  const cancelled = new CancelledError("the caller aborted");
  s.fail(cancelled);
  await assert.rejects(s.readable.getReader().read(), (e) => e === cancelled);
  const t = new ClientStream("m", host().h, undefined, undefined);
  const other = new ConnectionError("gone", { written: false });
  t.fail(other);
  await assert.rejects(t.readable.getReader().read(), (e) => e === other);
});

Deno.test("stream: cancelled by the reader, then ended: the caller's signal is let go, nothing is thrown", async () => {
  const removed: string[] = [];
  const controller = new AbortController();
  const signal = controller.signal;
  const original = signal.removeEventListener.bind(signal);
  signal.removeEventListener = ((type: string, fn: () => void) => {
    removed.push(type);
    original(type, fn);
  }) as typeof signal.removeEventListener;
  const s = new ClientStream("m", host().h, undefined, signal);
  const reader = s.readable.getReader();
  const pending = reader.read();
  await settle();
  await reader.cancel();
  assert.equal((await pending).done, true);
  s.end();
  assert.deepEqual(removed, ["abort"]);
});

Deno.test("stream: an input item produced after the call ended is not sent", async () => {
  const { h, pushed } = host(4, 4);
  const gate = Promise.withResolvers<void>();
  async function* input() {
    await gate.promise;
    yield "late";
  }
  const s = new ClientStream("m", h, input(), undefined);
  s.attach(1);
  await settle();
  s.end();
  gate.resolve();
  await settle();
  assert.deepEqual(pushed, []);
});

Deno.test("stream: input iterators without return(), or whose return() gives no promise, are let go quietly", async () => {
  for (const ret of [undefined, () => undefined]) {
    const { h } = host(4, 0);
    let nexts = 0;
    const iterator: AsyncIterator<unknown> = {
      next: () => (nexts++, Promise.resolve({ done: false, value: 1 })),
      ...(ret
        ? { return: ret as unknown as () => Promise<IteratorResult<unknown>> }
        : {}),
    };
    const s = new ClientStream("m", h, {
      [Symbol.asyncIterator]: () => iterator,
    }, undefined);
    s.attach(1); // no credit: waits
    await settle();
    s.end();
    await settle();
    assert.equal(nexts, 0);
  }
});
