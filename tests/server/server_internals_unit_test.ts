/**
 * `server/_server_internals.ts`: the server's defaults, defined once, and
 * the `goaway` reason of a server that does not serve, seen by a client of
 * an in-process server on 127.0.0.1 (no ZooKeeper). That the docs give the
 * same defaults is checked by tests/docs_defaults_test.ts.
 */
import assert from "node:assert/strict";
import {
  NOT_SERVING,
  SERVER_DEFAULTS,
} from "../../src/server/_server_internals.ts";
import { serve } from "../../src/server/server.ts";
import { Connection } from "../../src/client/connection.ts";
import { ServerClosingError } from "../../src/errors.ts";
import { nextEvent, within } from "../_wait.ts";

const HOST = "127.0.0.1";

Deno.test("SERVER_DEFAULTS are the documented server defaults, each one", () => {
  assert.deepEqual({ ...SERVER_DEFAULTS }, {
    handshakeTimeout: 10_000,
    closeTimeout: 10_000,
    maxInFlightPerConnection: 1024,
    idleTimeout: 120_000,
    frameTimeout: 30_000,
    maxPingsPerMinute: 120,
    maxConnections: 1024,
    maxConnectionsPerAddress: 256,
    maxConnectionAge: 0,
  });
});

Deno.test("a client of a server set not serving gets the goaway reason NOT_SERVING, 'Server is not serving', and its next call is not sent", async () => {
  assert.equal(NOT_SERVING, "Server is not serving");
  await using server = serve({ work: (n: number) => n + 1 }, {
    hostname: HOST,
  });
  await within(server.ready, 5000, "the server ready");
  await using direct = await within(
    Connection.connect({ hostname: HOST, port: server.addr.port }),
    5000,
    "a direct connection",
  );
  assert.equal(await within(direct.call("work", [1]), 5000, "a call"), 2);
  const goaway = nextEvent(direct, "goaway", 5000);
  server.setServing(false);
  await goaway;
  assert.equal(direct.goawayReason, NOT_SERVING);
  const refused = await within(
    direct.call("work", [2]).then(() => undefined, (e: unknown) => e),
    5000,
    "a refused call",
  );
  assert.ok(refused instanceof ServerClosingError, String(refused));
  assert.equal(refused.notRun, true);
});
