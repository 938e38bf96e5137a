/**
 * OpenTelemetry for zkrpc, installed only when telemetry is on: a span per
 * channel call with a client span per attempt below it, a server span per
 * handled call, W3C trace context in call metadata, metrics, and channel
 * gauges (all of it in `_spans.ts`).
 *
 * Telemetry is on when a tracer provider is registered with
 * `@opentelemetry/api` - with Deno's built-in OpenTelemetry
 * (`OTEL_DENO=true`) that is the case from the start, no SDK needed. It is
 * detected once per process, from the API's global registry, without
 * loading the API: a process without telemetry never loads
 * `@opentelemetry/api` (about 1.4 MiB less heap; docs/performance.md,
 * "Sixth round"), installs no interceptor, and its calls cost what they cost
 * without this module. When it is on, the API is loaded at the first
 * channel, connection or server that installs telemetry, and a call that
 * comes before it has loaded waits for it.
 *
 * @module
 */

import type { ClientInterceptor, ServerInterceptor } from "../_interceptors.ts";
import type { ChannelCallWrapper, ChannelSnapshot } from "./_spans.ts";

export type { ChannelCallWrapper, ChannelSnapshot };

/** Where `@opentelemetry/api` 1.x keeps the providers registered with it. */
const API_REGISTRY = Symbol.for("opentelemetry.js.api.1");

let enabled: boolean | undefined;

/**
 * Whether a tracer provider is registered with `@opentelemetry/api` 1.x
 * (Deno's built-in one with `OTEL_DENO=true`, or an SDK's). Detected once,
 * at the first call; a provider registered after that is not seen.
 *
 * @example Check
 * ```ts
 * import { telemetryEnabled } from "./telemetry.ts";
 *
 * console.log(telemetryEnabled()); // false unless OTEL_DENO=true
 * ```
 *
 * @returns Whether telemetry is on.
 */
export function telemetryEnabled(): boolean {
  if (enabled === undefined) {
    const registry = (globalThis as Record<symbol, unknown>)[API_REGISTRY] as
      | { trace?: unknown }
      | undefined;
    enabled = registry?.trace !== undefined;
  }
  return enabled;
}

type Spans = typeof import("./_spans.ts");

/** The OpenTelemetry side, once loaded. */
let spans: Spans | undefined;
let loading: Promise<Spans> | undefined;

/** Loads the OpenTelemetry side (once). */
function loadSpans(): Promise<Spans> {
  return loading ??= import("./_spans.ts").then((loaded) => spans = loaded);
}

/**
 * The load of the OpenTelemetry side, once begun: `undefined` in a process
 * where telemetry has never been installed (what the tests check).
 *
 * @example Nothing loaded while telemetry is off
 * ```ts
 * import { clientTelemetry, spansLoad, telemetryEnabled } from "./telemetry.ts";
 * import assert from "node:assert/strict";
 *
 * clientTelemetry(); // off unless OTEL_DENO=true
 * if (!telemetryEnabled()) assert.equal(spansLoad(), undefined);
 * ```
 *
 * @returns The load, or `undefined`.
 */
export function spansLoad(): Promise<unknown> | undefined {
  return loading;
}

/**
 * A function that runs the one `make` builds from the OpenTelemetry side:
 * starts loading it now, and lets a call that comes first wait for it.
 */
function whenLoaded<A extends unknown[], R>(
  make: (spans: Spans) => (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  // A failed load fails the calls that wait for it, not this kick.
  loadSpans().catch(() => {});
  let made: ((...args: A) => Promise<R>) | undefined;
  return (...args) =>
    made !== undefined
      ? made(...args)
      : loadSpans().then((loaded) => (made ??= make(loaded))(...args));
}

/**
 * The client interceptors telemetry adds: one, when telemetry is on (a
 * CLIENT span per attempt, W3C trace context in its metadata, the client
 * metrics).
 *
 * @example Install by hand
 * ```ts
 * import { clientTelemetry } from "./telemetry.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(Array.isArray(clientTelemetry()));
 * ```
 *
 * @param service The service the calls go to, for `rpc.service`.
 * @returns The interceptors (empty when telemetry is off).
 */
export function clientTelemetry(service?: string): ClientInterceptor[] {
  if (!telemetryEnabled()) return [];
  return [whenLoaded((loaded) => loaded.clientSpans(service))];
}

/**
 * The server interceptors telemetry adds: one, when telemetry is on (a
 * SERVER span per call, child of the caller's trace context, with the
 * handler running inside it; the server metrics).
 *
 * @example Install by hand
 * ```ts
 * import { serverTelemetry } from "./telemetry.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(Array.isArray(serverTelemetry()));
 * ```
 *
 * @param addr The server's address, for `server.address`/`server.port`.
 * @returns The interceptors (empty when telemetry is off).
 */
export function serverTelemetry(addr?: Deno.NetAddr): ServerInterceptor[] {
  if (!telemetryEnabled()) return [];
  return [whenLoaded((loaded) => loaded.serverSpans(addr))];
}

/**
 * Reports a channel's endpoints, ejections and discovery state as gauges
 * read when the exporter collects (see `channelGauges`). Does nothing when
 * telemetry is off.
 *
 * @example Observe a snapshot source
 * ```ts
 * import { observeChannel } from "./telemetry.ts";
 *
 * const stop = observeChannel("calc", () => ({ state: "fresh", endpoints: [] }));
 * stop();
 * ```
 *
 * @param service The channel's service, for `rpc.service`.
 * @param read Reads the channel's current state.
 * @returns Stops observing (call it when the channel closes).
 */
export function observeChannel(
  service: string,
  read: () => ChannelSnapshot,
): () => void {
  if (!telemetryEnabled()) return () => {};
  let stopped = false;
  let stop: (() => void) | undefined;
  const start = (loaded: Spans): void => {
    if (!stopped) stop = loaded.channelGauges(service, read);
  };
  if (spans !== undefined) start(spans);
  // Without the API there are no gauges to report to.
  else loadSpans().then(start, () => {});
  return () => {
    stopped = true;
    stop?.();
  };
}

/**
 * Wraps a whole channel call (all its attempts and hedges) in one INTERNAL
 * span, parent of its attempts' client spans. `undefined` when telemetry is
 * off, so the channel skips it.
 *
 * @example Wrap a call
 * ```ts
 * import { channelCallTelemetry } from "./telemetry.ts";
 *
 * const wrap = channelCallTelemetry("calc");
 * const run = () => Promise.resolve(42);
 * console.log(await (wrap ? wrap("add", run) : run()));
 * ```
 *
 * @param service The channel's service.
 * @returns The wrapper, or `undefined` when telemetry is off.
 */
export function channelCallTelemetry(
  service: string,
): ChannelCallWrapper | undefined {
  if (!telemetryEnabled()) return undefined;
  return whenLoaded((loaded) => loaded.channelCallSpan(service));
}
