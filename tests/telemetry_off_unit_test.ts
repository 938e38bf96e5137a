/**
 * With no OpenTelemetry provider registered, telemetry is off and costs
 * nothing: no interceptors, no channel wrapper, a no-op gauge observer, and
 * `@opentelemetry/api` is not loaded (`src/telemetry/telemetry.ts`). A module of its own: the enabled check is
 * made once per process. No I/O.
 *
 * @module
 */
import assert from "node:assert/strict";
import { trace } from "@opentelemetry/api";
import {
  channelCallTelemetry,
  clientTelemetry,
  observeChannel,
  serverTelemetry,
  spansLoad,
  telemetryEnabled,
} from "../src/telemetry/telemetry.ts";

Deno.test("without a registered provider telemetry is off: no interceptors, no wrapper, and the channel snapshot is never read", () => {
  assert.equal(telemetryEnabled(), false);
  assert.deepEqual(clientTelemetry("calc"), []);
  assert.deepEqual(serverTelemetry(), []);
  assert.equal(channelCallTelemetry("calc"), undefined);
  let read = 0;
  const stop = observeChannel("calc", () => {
    read++;
    return { state: "fresh", endpoints: [] };
  });
  stop();
  assert.equal(read, 0);
  // Nor is the OpenTelemetry side (and with it @opentelemetry/api) loaded.
  assert.equal(spansLoad(), undefined);
  // Checked once: a provider registered later does not turn it on.
  trace.setGlobalTracerProvider({
    getTracer: () => {
      throw new Error("asked for a tracer");
    },
  } as never);
  try {
    assert.equal(telemetryEnabled(), false);
    assert.deepEqual(clientTelemetry(), []);
  } finally {
    trace.disable();
  }
});
