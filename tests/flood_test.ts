/**
 * Issue 9 acceptance: 1,100 hostile connections from one address (silent
 * after the handshake, pinging once a second, holding a partial frame) do not
 * lock out a client from another address, and the server's memory stays
 * bounded. The server runs in its own process at its default limits; its
 * peak RSS is read from /proc/PID/status.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Connection } from "../src/client/connection.ts";
import {
  delay,
  memoryOf,
  startChildServer,
  startFlood,
} from "./_core_helpers.ts";

const HOST = "127.0.0.1";
/** The stated bound on the server's peak RSS during the flood. */
const RSS_BOUND_MIB = 300;

Deno.test("1,100 hostile connections from 127.0.0.2 do not lock out a client from 127.0.0.1, and server RSS stays bounded", async () => {
  await using server = await startChildServer("limits_server.ts", ["{}"]);
  const base = await memoryOf(server.child.pid);
  await using good = await Connection.connect({
    hostname: HOST,
    port: server.port,
  });
  let answered = 0;
  let flooding = true;
  const calls = (async () => {
    // One call every 10 ms for as long as the flood lasts, each within 2 s.
    while (flooding) {
      assert.equal(await good.call("ok", [], { timeout: 2000 }), "ok");
      answered++;
      // sleep-ok: paces the good client's calls during the flood
      await delay(10);
    }
  })();
  try {
    await using flood = await startFlood(server.port, 1100);
    assert.equal(flood.result.accepted + flood.result.refused, 1100);
    assert.ok(flood.result.accepted <= 256, JSON.stringify(flood.result));
    // Held connections stay a while: a few pings, partial frames waiting.
    const before = answered;
    // sleep-ok: the flood is held this long: its length is the property
    await delay(2500);
    assert.ok(answered > before, "no answers while the flood was held");
    // A new connection from the good address is admitted too.
    await using fresh = await Connection.connect({
      hostname: HOST,
      port: server.port,
    });
    assert.equal(await fresh.call("ok", []), "ok");
    const peak = (await memoryOf(server.child.pid)).peak;
    console.log(
      `flood: ${JSON.stringify(flood.result)}, ${answered} calls answered, ` +
        `server RSS ${base.rss.toFixed(0)} MiB before, peak ${
          peak.toFixed(0)
        } MiB (bound ${RSS_BOUND_MIB} MiB)`,
    );
    assert.ok(peak < RSS_BOUND_MIB, `server peak RSS ${peak.toFixed(0)} MiB`);
  } finally {
    flooding = false;
    await calls;
  }
});
