/**
 * The OpenTelemetry side of zkrpc's telemetry: a span per channel call with
 * a client span per attempt below it, a server span per handled call, W3C
 * trace context in call metadata (`traceparent`, `tracestate`), and
 * metrics. The only module that imports `@opentelemetry/api`;
 * `telemetry.ts` loads it the first time telemetry is on, so a
 * process without telemetry never does.
 *
 * Attribute names follow the OpenTelemetry RPC semantic conventions:
 * `rpc.system` ("zkrpc"), `rpc.service`, `rpc.method`, `server.address`,
 * `server.port`, `client.address`, `error.type`.
 *
 * Metrics (meter "zkrpc"): `rpc.client.duration` and `rpc.server.duration`
 * (histograms, ms), `zkrpc.client.calls`, `zkrpc.client.errors`,
 * `zkrpc.server.calls`, `zkrpc.server.errors` (counters; errors carry
 * `error.type`), `zkrpc.client.in_flight`, `zkrpc.server.in_flight`
 * (up-down counters), and per channel `zkrpc.channel.endpoints`,
 * `zkrpc.channel.ejections`, `zkrpc.channel.discovery_state` (gauges read
 * at collection).
 *
 * @module
 */

import {
  type Attributes,
  type Context,
  context,
  type Counter,
  type Histogram,
  metrics,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type UpDownCounter,
} from "@opentelemetry/api";
import type { ClientInterceptor, ServerInterceptor } from "../_interceptors.ts";

interface Instruments {
  tracer: Tracer;
  duration: Histogram;
  calls: Counter;
  errors: Counter;
  inFlight: UpDownCounter;
}

let client: Instruments | undefined;
let server: Instruments | undefined;

function instruments(side: "client" | "server"): Instruments {
  const meter = metrics.getMeter("zkrpc");
  return {
    tracer: trace.getTracer("zkrpc"),
    duration: meter.createHistogram(`rpc.${side}.duration`, {
      description: `Duration of zkrpc calls (${side} side)`,
      unit: "ms",
    }),
    calls: meter.createCounter(`zkrpc.${side}.calls`, {
      description: `zkrpc calls (${side} side)`,
    }),
    errors: meter.createCounter(`zkrpc.${side}.errors`, {
      description: `zkrpc calls that failed, by error.type (${side} side)`,
    }),
    inFlight: meter.createUpDownCounter(`zkrpc.${side}.in_flight`, {
      description: `zkrpc calls in flight (${side} side)`,
    }),
  };
}

/** The error class name, as `error.type`. */
function errorType(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/**
 * Runs one call in a span, recording its metrics.
 */
async function observe(
  i: Instruments,
  span: Span,
  attributes: Attributes,
  next: () => Promise<unknown>,
): Promise<unknown> {
  const started = performance.now();
  i.inFlight.add(1, attributes);
  try {
    return await next();
  } catch (error) {
    const type = errorType(error);
    span.setAttribute("error.type", type);
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    i.errors.add(1, { ...attributes, "error.type": type });
    throw error;
  } finally {
    span.end();
    i.inFlight.add(-1, attributes);
    i.calls.add(1, attributes);
    i.duration.record(performance.now() - started, attributes);
  }
}

/** A W3C `traceparent` value for a span. */
function traceparent(span: Span): string {
  const sc = span.spanContext();
  return `00-${sc.traceId}-${sc.spanId}-${
    (sc.traceFlags & 0xff).toString(16).padStart(2, "0")
  }`;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote parent named by call metadata, or the active context. */
function parentOf(metadata: Readonly<Record<string, string>>): Context {
  const match = TRACEPARENT.exec(metadata["traceparent"] ?? "");
  if (match === null) return context.active();
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: parseInt(match[3]!, 16),
    isRemote: true,
  });
}

/**
 * The client interceptor of telemetry: a CLIENT span per attempt, its W3C
 * trace context in the call's metadata, and the client metrics.
 *
 * @example Around one call (no-op spans with no provider registered)
 * ```ts
 * import { clientSpans } from "./_spans.ts";
 * import assert from "node:assert/strict";
 *
 * const intercept = clientSpans("calc");
 * const call = { method: "divide", params: [1, 2], target: "127.0.0.1:4000", attempt: 1, metadata: {} };
 * assert.equal(await intercept(call as never, () => Promise.resolve(0.5)), 0.5);
 * ```
 *
 * @param service The service the calls go to, for `rpc.service`.
 * @returns The interceptor.
 */
export function clientSpans(service?: string): ClientInterceptor {
  const i = client ??= instruments("client");
  return (call, next) => {
    const colon = call.target.lastIndexOf(":");
    const attributes: Attributes = {
      "rpc.system": "zkrpc",
      "rpc.method": call.method,
      "server.address": call.target.slice(0, colon),
      "server.port": Number(call.target.slice(colon + 1)),
    };
    if (service !== undefined) attributes["rpc.service"] = service;
    const span = i.tracer.startSpan(
      service === undefined ? call.method : `${service}/${call.method}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { ...attributes, "zkrpc.attempt": call.attempt },
      },
      context.active(),
    );
    call.metadata["traceparent"] = traceparent(span);
    const state = span.spanContext().traceState?.serialize();
    if (state) call.metadata["tracestate"] = state;
    return observe(i, span, attributes, next);
  };
}

/**
 * The server interceptor of telemetry: a SERVER span per handled call,
 * child of the caller's `traceparent`, and the server metrics. The handler
 * runs with the server span active, so calls it makes are its children.
 *
 * @example Around one call (no-op spans with no provider registered)
 * ```ts
 * import { serverSpans } from "./_spans.ts";
 * import assert from "node:assert/strict";
 *
 * const intercept = serverSpans();
 * const call = { method: "divide", params: [1, 2], metadata: {} };
 * assert.equal(await intercept(call as never, () => Promise.resolve(0.5)), 0.5);
 * ```
 *
 * @param addr The server's address, for `server.address`/`server.port`.
 * @returns The interceptor.
 */
export function serverSpans(addr?: Deno.NetAddr): ServerInterceptor {
  const i = server ??= instruments("server");
  return (call, next) => {
    const attributes: Attributes = {
      "rpc.system": "zkrpc",
      "rpc.method": call.method,
    };
    if (addr !== undefined) {
      attributes["server.address"] = addr.hostname;
      attributes["server.port"] = addr.port;
    }
    const parent = parentOf(call.metadata);
    const span = i.tracer.startSpan(call.method, {
      kind: SpanKind.SERVER,
      attributes: call.remoteAddr === undefined ? attributes : {
        ...attributes,
        "client.address": call.remoteAddr.hostname,
        "client.port": call.remoteAddr.port,
      },
    }, parent);
    return context.with(
      trace.setSpan(parent, span),
      () => observe(i, span, attributes, next),
    );
  };
}

/** What {@linkcode channelGauges} reads of a channel at each collection. */
export interface ChannelSnapshot {
  /** The discovery state (`fresh`, `stale`, ...). */
  state: string;
  /** Each endpoint's connection state and its ejections so far. */
  endpoints: readonly { state: string; ejections: number }[];
}

/**
 * Reports a channel's endpoints by state (`zkrpc.channel.endpoints`, with
 * `zkrpc.endpoint.state`), its ejected endpoints' ejection counts
 * (`zkrpc.channel.ejections`) and its discovery state
 * (`zkrpc.channel.discovery_state`: 1 for the current state, by
 * `zkrpc.discovery.state`), read only when the exporter collects.
 *
 * @example Observe a snapshot source
 * ```ts
 * import { channelGauges } from "./_spans.ts";
 *
 * const stop = channelGauges("calc", () => ({ state: "fresh", endpoints: [] }));
 * stop();
 * ```
 *
 * @param service The channel's service, for `rpc.service`.
 * @param read Reads the channel's current state.
 * @returns Stops observing (call it when the channel closes).
 */
export function channelGauges(
  service: string,
  read: () => ChannelSnapshot,
): () => void {
  const meter = metrics.getMeter("zkrpc");
  const endpoints = meter.createObservableGauge("zkrpc.channel.endpoints", {
    description: "Endpoints of a channel by connection state",
  });
  const ejections = meter.createObservableGauge("zkrpc.channel.ejections", {
    description: "Ejections in a row of the channel's ejected endpoints",
  });
  const discovery = meter.createObservableGauge(
    "zkrpc.channel.discovery_state",
    { description: "1 for the channel's current discovery state" },
  );
  const callback = (
    result: {
      observe(
        metric: typeof endpoints,
        value: number,
        attributes: Attributes,
      ): void;
    },
  ) => {
    const snapshot = read();
    const byState = new Map<string, number>();
    let ejected = 0;
    for (const endpoint of snapshot.endpoints) {
      byState.set(endpoint.state, (byState.get(endpoint.state) ?? 0) + 1);
      ejected += endpoint.ejections;
    }
    for (const [state, count] of byState) {
      result.observe(endpoints, count, {
        "rpc.service": service,
        "zkrpc.endpoint.state": state,
      });
    }
    result.observe(ejections, ejected, { "rpc.service": service });
    result.observe(discovery, 1, {
      "rpc.service": service,
      "zkrpc.discovery.state": snapshot.state,
    });
  };
  const observables = [endpoints, ejections, discovery];
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}

/** Runs a whole channel call (`run`) inside whatever wraps it. */
export type ChannelCallWrapper = (
  method: string,
  run: () => Promise<unknown>,
) => Promise<unknown>;

/**
 * Wraps a whole channel call (all its attempts and hedges) in one span
 * (`INTERNAL`, named `service/method`): its attempts' client spans are its
 * children.
 *
 * @example Wrap a call
 * ```ts
 * import { channelCallSpan } from "./_spans.ts";
 * import assert from "node:assert/strict";
 *
 * const wrap = channelCallSpan("calc");
 * assert.equal(await wrap("add", () => Promise.resolve(42)), 42);
 * ```
 *
 * @param service The channel's service.
 * @returns The wrapper.
 */
export function channelCallSpan(service: string): ChannelCallWrapper {
  const tracer = trace.getTracer("zkrpc");
  return (method, run) => {
    const active = context.active();
    const span = tracer.startSpan(`${service}/${method}`, {
      kind: SpanKind.INTERNAL,
      attributes: {
        "rpc.system": "zkrpc",
        "rpc.service": service,
        "rpc.method": method,
      },
    }, active);
    return context.with(trace.setSpan(active, span), async () => {
      try {
        return await run();
      } catch (error) {
        span.setAttribute("error.type", errorType(error));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : String(error),
        });
        throw error;
      } finally {
        span.end();
      }
    });
  };
}
