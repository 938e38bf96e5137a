/**
 * Client keepalive as the channel relies on it: a silent connection with
 * calls waiting is pinged, a healthy server answers even while its handler
 * runs, and `ping()` proves a server alive (the channel's probe).
 */
import assert from "node:assert/strict";
import { Connection } from "../src/connection.ts";
import { ConnectionError } from "../src/errors.ts";
import { serve } from "../src/server.ts";
import { delay } from "./_core_helpers.ts";

const HOST = "127.0.0.1";

Deno.test("a call longer than several keepalive rounds completes: the busy server answers the pings", async () => {
  await using server = serve({
    slow: async () => {
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
  conn.close();
  await conn.closed;
  await assert.rejects(
    conn.ping(2000),
    (error: unknown) => error instanceof ConnectionError && !error.written,
  );
});
