/**
 * Connection admission (issue 9, finding 5): per-address limit, an idle
 * timeout that pings do not reset, a ping rate limit, a maximum connection
 * age. 127.0.0.2 plays a second host: tests/fixtures/flood.ts connects from
 * it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serve, type ServeOptions } from "../src/server/server.ts";
import { Connection } from "../src/client/connection.ts";
import { ServerClosingError } from "../src/errors.ts";
import { decodeFrames } from "./_frames.ts";
import {
  concat,
  delay,
  HELLO,
  PREFACE,
  readToEnd,
  startFlood,
  within,
  writeAll,
} from "./_core_helpers.ts";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";

const HOST = "127.0.0.1";

function start(options: ServeOptions = {}) {
  const errors: Error[] = [];
  const server = serve({ ok: () => "ok" }, {
    hostname: HOST,
    onError: (e) => void errors.push(e),
    ...options,
  });
  return { server, errors };
}

Deno.test("pings do not reset the idle timeout: a pinging, callless connection is closed", async () => {
  const { server, errors } = start({ idleTimeout: 300 });
  await using _ = server;
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  await writeAll(conn, HELLO);
  const closed = readToEnd(conn);
  let open = true;
  closed.then(() => open = false);
  const started = Date.now();
  while (open && Date.now() - started < 5000) {
    await conn.write(encodeFrame(FrameType.Ping, 1)).catch(() => open = false);
    // sleep-ok: paces the traffic while the idle timeout passes: time passing is the property
    await delay(50);
  }
  await within(closed, 1000, "idle close");
  conn.close();
  assert.ok(!open, "a pinging connection was kept open");
  assert.match(errors[0]!.message, /idle timeout; pings do not count/);
});

Deno.test("a call in flight keeps a connection from being idle, however long it runs", async () => {
  const errors: Error[] = [];
  await using server = serve({
    ok: () => "ok",
    async slow(): Promise<string> {
      // sleep-ok: handler work lasting three idle timeouts
      await delay(600);
      return "done";
    },
  }, { hostname: HOST, idleTimeout: 200, onError: (e) => void errors.push(e) });
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.equal(await conn.call("slow", [], { timeout: 30_000 }), "done");
  assert.equal(await conn.call("ok", [], { timeout: 30_000 }), "ok");
  assert.equal(conn.isClosed, false);
  assert.deepEqual(errors, []);
});

Deno.test("more than maxPingsPerMinute pings get a goaway and a closed connection", async () => {
  const { server, errors } = start({ maxPingsPerMinute: 10 });
  await using _ = server;
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  const pings = Array.from(
    { length: 11 },
    (_, i) => encodeFrame(FrameType.Ping, i + 1),
  );
  await writeAll(conn, concat(HELLO, ...pings));
  const reply = await within(readToEnd(conn), 3000, "close");
  conn.close();
  const frames = decodeFrames(reply.subarray(PREFACE.length));
  assert.equal(frames.filter((f) => f.type === FrameType.Pong).length, 10);
  const goaway = frames.find((f) => f.type === FrameType.Goaway);
  assert.equal(new TextDecoder().decode(goaway?.payload), "Too many pings");
  assert.match(errors[0]!.message, /more than 10 pings in a minute/);
});

Deno.test("maxConnectionAge drains a connection with goaway, then closes it", async () => {
  const { server, errors } = start({ maxConnectionAge: 300 });
  await using _ = server;
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const goaway = new Promise((resolve) =>
    conn.addEventListener("goaway", resolve, { once: true })
  );
  await within(goaway, 3000, "goaway at max age");
  assert.equal(conn.goawayReason, "Maximum connection age reached");
  await assert.rejects(conn.call("ok", []), ServerClosingError);
  await within(conn.finished, 3000, "closed after the drain");
  assert.match(errors[0]!.message, /maximum connection age of 300 ms/);
  // A new connection is served.
  await using again = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.equal(await again.call("ok", []), "ok");
});

Deno.test("maxConnectionsPerAddress refuses one host's extra connections, not another host's", async () => {
  const { server, errors } = start({
    maxConnectionsPerAddress: 5,
    maxConnections: 8,
  });
  await using _ = server;
  // Six from 127.0.0.2: five held, one refused.
  await using flood = await startFlood(server.addr.port, 6, "silent");
  assert.deepEqual(flood.result, { accepted: 5, refused: 1 });
  assert.ok(
    errors.some((e) =>
      /limit of 5 connections from 127\.0\.0\.2 reached/.test(e.message)
    ),
  );
  // Another "host" still gets in, twice over.
  await using a = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  await using b = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  assert.equal(await a.call("ok", []), "ok");
  assert.equal(await b.call("ok", []), "ok");
});
