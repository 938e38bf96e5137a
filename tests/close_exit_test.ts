/**
 * Close means exit: once `close()` settles, no timer or socket of the server
 * keeps the process alive, even with a peer that sent requests (and half a
 * frame) and never read the replies.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Connection } from "../src/client/connection.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import {
  concat,
  HELLO,
  requestPayload,
  startChildServer,
  within,
  writeAll,
} from "./_core_helpers.ts";

const HOST = "127.0.0.1";

Deno.test("a closed server process exits promptly although a peer never read its replies", async () => {
  // closeTimeout 1 s; the frame timeout (30 s) and idle timeout (120 s)
  // are what a leftover timer would make the process wait for.
  await using server = await startChildServer("closing_server.ts", [
    JSON.stringify({ closeTimeout: 1000 }),
  ]);
  using greedy = await Deno.connect({ hostname: HOST, port: server.port });
  const params = jsonCodec.encode([1_000_000]);
  const requests = Array.from(
    { length: 64 },
    (_, i) =>
      encodeFrame(FrameType.Request, i + 1, requestPayload("big", params)),
  );
  const half = encodeFrame(FrameType.Request, 999, requestPayload("ok", params))
    .subarray(0, 12);
  await within(
    writeAll(greedy, concat(HELLO, ...requests, half)),
    10_000,
    "the greedy peer's requests",
  );
  // The server has read them and is stuck writing replies nobody reads.
  await using good = await Connection.connect({
    hostname: HOST,
    port: server.port,
  });
  assert.equal(await within(good.call("ok", []), 5000, "ok"), "ok");
  good.close();
  server.child.kill("SIGTERM");
  // An outcome bound, not a speed figure: close() takes about its 1 s
  // deadline; a leftover frame timer held the process for ~30 s.
  const status = await within(server.child.status, 10_000, "the exit");
  assert.equal(status.code, 0);
  assert.equal(status.signal, null, "it exited by itself");
});
