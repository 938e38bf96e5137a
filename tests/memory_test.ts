/**
 * Memory discipline per connection (issue 9, finding 6), measured on a
 * server in its own process (its /proc/PID/status) and on a client facing a
 * hostile fake server.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Connection } from "../src/client/connection.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { ProtocolError } from "../src/errors.ts";
import { serve } from "../src/server/server.ts";
import {
  concat,
  HELLO,
  memoryOf,
  readToEnd,
  requestPayload,
  startChildServer,
  within,
  writeAll,
} from "./_core_helpers.ts";

const HOST = "127.0.0.1";
const MIB = 1024 * 1024;

Deno.test("400 requests for 1 MB results in one read queue about 1 MiB, not 400 MiB, for a peer that does not read", async () => {
  await using server = await startChildServer("limits_server.ts", [
    JSON.stringify({ idleTimeout: 60_000 }),
  ]);
  const base = await memoryOf(server.child.pid);
  const greedy = await Deno.connect({ hostname: HOST, port: server.port });
  const params = jsonCodec.encode([1_000_000]);
  const requests = Array.from(
    { length: 400 },
    (_, i) =>
      encodeFrame(FrameType.Request, i + 1, requestPayload("big", params)),
  );
  await writeAll(greedy, concat(HELLO, ...requests));
  // The server answers others meanwhile (its event loop is not stuck).
  await using good = await Connection.connect({
    hostname: HOST,
    port: server.port,
  });
  for (let i = 0; i < 20; i++) assert.equal(await good.call("ok", []), "ok");
  const after = await memoryOf(server.child.pid);
  greedy.close();
  const growth = after.peak - base.rss;
  assert.ok(growth < 100, `server peak grew by ${growth.toFixed(0)} MiB`);
});

Deno.test("a ping over 64 bytes closes that connection", async () => {
  const errors: Error[] = [];
  await using server = serve({ ok: () => "ok" }, {
    hostname: HOST,
    onError: (e) => void errors.push(e),
  });
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await writeAll(
    conn,
    concat(HELLO, encodeFrame(FrameType.Ping, 1, new Uint8Array(65))),
  );
  await within(readToEnd(conn), 3000, "close");
  conn.close();
  assert.match(
    errors[0]!.message,
    /ping payload of 65 bytes exceeds the limit of 64 bytes/,
  );
});

/** A fake server: answers the handshake, then runs `then` on the socket. */
function fakeServer(
  then: (conn: Deno.Conn) => Promise<void>,
): { port: number; done: Promise<void>; listener: Deno.Listener } {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    await writeAll(conn, HELLO);
    try {
      await then(conn);
    } catch {
      // the client closed
    }
    try {
      conn.close();
    } catch {
      // closed
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done, listener };
}

Deno.test("a client bounds the pongs it queues for a server that pings and never reads", async () => {
  // 64 MiB of pings in 4 MiB writes; the client must not queue a pong each.
  const ping = encodeFrame(FrameType.Ping, 7, new Uint8Array(64).fill(1));
  const chunk = concat(
    ...Array.from({ length: (4 * MIB) / ping.length }, () => ping),
  );
  let sent = 0;
  const fake = fakeServer(async (conn) => {
    while (sent < 64 * MIB) {
      await writeAll(conn, chunk);
      sent += chunk.length;
    }
  });
  const before = Deno.memoryUsage().rss / MIB;
  const conn = await Connection.connect({ hostname: HOST, port: fake.port });
  await within(fake.done, 60_000, "pings sent");
  const growth = Deno.memoryUsage().rss / MIB - before;
  assert.equal(conn.isClosed, false);
  conn.close();
  await conn.closed;
  fake.listener.close();
  assert.ok(growth < 40, `client RSS grew by ${growth.toFixed(0)} MiB`);
});

Deno.test("a client closes the connection on a ping over 64 bytes", async () => {
  const fake = fakeServer(async (conn) => {
    await writeAll(
      conn,
      encodeFrame(FrameType.Ping, 1, new Uint8Array(4 * MIB - 100)),
    );
    await readToEnd(conn);
  });
  const conn = await Connection.connect({ hostname: HOST, port: fake.port });
  const closed = new Promise<Error | undefined>((resolve) =>
    conn.addEventListener(
      "close",
      (e) =>
        resolve((e as CustomEvent<{ error: Error | undefined }>).detail.error),
      { once: true },
    )
  );
  const error = await within(closed, 5000, "client closes");
  assert.ok(error instanceof ProtocolError, String(error));
  assert.match(
    error.message,
    /ping payload of \d+ bytes exceeds the limit of 64/,
  );
  await fake.done;
  fake.listener.close();
});
