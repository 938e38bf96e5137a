/**
 * The streaming frames on the wire, from a raw client: the rules of
 * `docs/protocol.md` §9 that a zkrpc client never breaks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serve } from "../src/server/server.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { encodeWindow } from "../src/protocol/stream_frames.ts";
import {
  concat,
  HELLO,
  rawFrames,
  requestFrame,
  within,
  writeAll,
} from "./_core_helpers.ts";

const HOST = "127.0.0.1";
const open = (id: number, mode = 1) =>
  encodeFrame(FrameType.Open, id, new Uint8Array([mode]));

async function rawClient(port: number) {
  const conn = await within(
    Deno.connect({ hostname: HOST, port }),
    5000,
    "connect",
  );
  const frames = rawFrames(conn);
  await writeAll(conn, HELLO);
  await frames.preface();
  await frames.next(FrameType.Settings);
  return { conn, frames };
}

Deno.test("stream wire: items within the credit the client grants, then end", async () => {
  await using server = serve({
    async *count(n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
  }, { hostname: HOST });
  const { conn, frames } = await rawClient(server.addr.port);
  try {
    // HELLO announces no streamWindow: the server grants the stream no
    // credit until a window frame does.
    await writeAll(
      conn,
      concat(
        open(1),
        requestFrame(1, "count", [5]),
        encodeFrame(
          FrameType.Window,
          1,
          encodeWindow(3),
        ),
      ),
    );
    const items: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const frame = await frames.next(FrameType.Item);
      items.push(jsonCodec.decode(frame.payload));
    }
    await writeAll(conn, encodeFrame(FrameType.Window, 1, encodeWindow(10)));
    for (let i = 0; i < 2; i++) {
      const frame = await frames.next([FrameType.Item]);
      items.push(jsonCodec.decode(frame.payload));
    }
    assert.deepEqual(items, [0, 1, 2, 3, 4]);
    const end = await frames.next([FrameType.End, FrameType.Error]);
    assert.equal(end.type, FrameType.End);
    assert.equal(end.id, 1);
  } finally {
    conn.close();
  }
});

Deno.test("stream wire: an open before an unreadable request is consumed; the connection goes on", async () => {
  await using server = serve({ ok: () => "ok" }, { hostname: HOST });
  const { conn, frames } = await rawClient(server.addr.port);
  try {
    // flags 2 (metadata) with a length beyond the payload: unreadable.
    const bad = encodeFrame(
      FrameType.Request,
      1,
      new Uint8Array([2, 0xff, 0xff, 2, 111, 107]),
    );
    await writeAll(conn, concat(open(1), bad, requestFrame(2, "ok", [])));
    const refused = await frames.next(FrameType.Error);
    assert.equal(refused.id, 1);
    const answer = await frames.next(FrameType.Result);
    assert.equal(answer.id, 2);
    assert.equal(jsonCodec.decode(answer.payload), "ok");
  } finally {
    conn.close();
  }
});

Deno.test("stream wire: an open not followed by its request is a protocol error", async () => {
  await using server = serve({ ok: () => "ok" }, {
    hostname: HOST,
    onError: () => {},
  });
  const { conn, frames } = await rawClient(server.addr.port);
  try {
    await writeAll(conn, concat(open(1), encodeFrame(FrameType.Ping, 7)));
    const error = await frames.next(FrameType.Error);
    assert.equal(error.id, 0);
    assert.match(
      String((jsonCodec.decode(error.payload) as { message: string }).message),
      /an open frame \(call 1\) must be followed by its request, got frame type 5/,
    );
  } finally {
    conn.close();
  }
});

Deno.test("stream wire: a server that announced no streamWindow refuses an open as a protocol error", async () => {
  await using server = serve({ ok: () => "ok" }, {
    hostname: HOST,
    streamWindow: 0,
    onError: () => {},
  });
  const { conn, frames } = await rawClient(server.addr.port);
  try {
    await writeAll(conn, concat(open(1), requestFrame(1, "ok", [])));
    const error = await frames.next(FrameType.Error);
    assert.equal(error.id, 0);
    assert.match(
      String((jsonCodec.decode(error.payload) as { message: string }).message),
      /does not accept streams/,
    );
  } finally {
    conn.close();
  }
});

Deno.test("stream wire: an open stream counts against maxInFlightPerConnection until it ends", async () => {
  await using server = serve({
    async *count(n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
    ok: () => "ok",
  }, { hostname: HOST, maxInFlightPerConnection: 1 });
  const { conn, frames } = await rawClient(server.addr.port);
  try {
    // No credit yet: the stream stays open.
    await writeAll(
      conn,
      concat(
        open(1),
        requestFrame(1, "count", [2]),
        open(2),
        requestFrame(2, "count", [2]),
      ),
    );
    const refused = await frames.next(FrameType.Error);
    assert.equal(refused.id, 2);
    assert.match(
      String(
        (jsonCodec.decode(refused.payload) as { message: string }).message,
      ),
      /1 calls are already running on this connection \(request not run\)/,
    );
    // Credit lets the first stream end (its producer is pulled once more
    // to learn that it is done); its slot is free again.
    await writeAll(conn, encodeFrame(FrameType.Window, 1, encodeWindow(3)));
    const end = await frames.next(FrameType.End);
    assert.equal(end.id, 1);
    await writeAll(conn, requestFrame(3, "ok", []));
    const answer = await frames.next([FrameType.Result, FrameType.Error]);
    assert.equal(answer.type, FrameType.Result);
    assert.equal(answer.id, 3);
  } finally {
    conn.close();
  }
});
