/**
 * Unit tests of the OpenTelemetry interceptors (`src/telemetry/telemetry.ts`,
 * which loads `src/telemetry/_spans.ts` when telemetry is on) against
 * recording tracer and meter providers registered with `@opentelemetry/api`
 * (no SDK, no exporter): a call made before that load, span names, kinds,
 * attributes, W3C trace context in and out, metrics per call and per error,
 * the channel gauges. The end-to-end export is in telemetry_test.ts; the
 * disabled path is in telemetry_off_unit_test.ts (a module of its own, since
 * the enabled check is made once per process). No I/O.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Attributes,
  type Context,
  context,
  metrics,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import {
  channelCallTelemetry,
  clientTelemetry,
  observeChannel,
  serverTelemetry,
  spansLoad,
  telemetryEnabled,
} from "../src/telemetry/telemetry.ts";
import { channelGauges } from "../src/telemetry/_spans.ts";
import type { ClientCall, ServerCall } from "../src/_interceptors.ts";

interface RecordedSpan {
  name: string;
  kind: SpanKind | undefined;
  attributes: Attributes;
  parent:
    | { traceId: string; spanId: string; isRemote: boolean | undefined }
    | undefined;
  status?: { code: SpanStatusCode; message?: string };
  ended: number;
  traceId: string;
  spanId: string;
}

const spans: RecordedSpan[] = [];
const points: { name: string; value: number; attributes: Attributes }[] = [];
const callbacks = new Set<(result: unknown) => void>();
let nextId = 1;

function fakeSpan(record: RecordedSpan, traceState?: string): Span {
  return {
    spanContext: () => ({
      traceId: record.traceId,
      spanId: record.spanId,
      traceFlags: 1,
      ...(traceState === undefined
        ? {}
        : { traceState: { serialize: () => traceState } }),
    }),
    setAttribute(key: string, value: unknown) {
      record.attributes[key] = value as string;
      return this;
    },
    setStatus(status: { code: SpanStatusCode; message?: string }) {
      record.status = status;
      return this;
    },
    end() {
      record.ended++;
    },
  } as unknown as Span;
}

let traceState: string | undefined;
const tracer = {
  startSpan(name: string, options: SpanOptions = {}, ctx?: Context): Span {
    const parent = ctx === undefined ? undefined : trace.getSpanContext(ctx);
    const id = (nextId++).toString(16);
    const record: RecordedSpan = {
      name,
      kind: options.kind,
      attributes: { ...options.attributes },
      parent: parent && {
        traceId: parent.traceId,
        spanId: parent.spanId,
        isRemote: parent.isRemote,
      },
      ended: 0,
      traceId: parent?.traceId ?? id.padStart(32, "a"),
      spanId: id.padStart(16, "b"),
    };
    spans.push(record);
    return fakeSpan(record, traceState);
  },
};
/** Every named thing the module asked the API for, with its options. */
const created: { kind: string; name: string; options?: unknown }[] = [];
const instrument = (kind: string) => (name: string, options?: unknown) => {
  created.push({ kind, name, options });
  return recorder(name);
};
const recorder = (name: string) => ({
  add: (value: number, attributes: Attributes = {}) =>
    points.push({ name, value, attributes }),
  record: (value: number, attributes: Attributes = {}) =>
    points.push({ name, value, attributes }),
});
let observedWith: unknown[] = [];
const meter = {
  createHistogram: instrument("histogram"),
  createCounter: instrument("counter"),
  createUpDownCounter: instrument("updown"),
  createObservableGauge: (name: string, options?: unknown) => {
    created.push({ kind: "gauge", name, options });
    return { name };
  },
  addBatchObservableCallback: (
    cb: (result: unknown) => void,
    observables: unknown[],
  ) => {
    observedWith = observables;
    callbacks.add(cb);
  },
  removeBatchObservableCallback: (cb: (result: unknown) => void) =>
    callbacks.delete(cb),
};
trace.setGlobalTracerProvider({
  getTracer: (name: string) => {
    created.push({ kind: "tracer", name });
    return tracer;
  },
} as never);
metrics.setGlobalMeterProvider({
  getMeter: (name: string) => {
    created.push({ kind: "meter", name });
    return meter;
  },
} as never);

function clientCall(overrides: Partial<ClientCall> = {}): ClientCall {
  return {
    method: "divide",
    params: [1, 2],
    metadata: {},
    timeout: 1000,
    attempt: 2,
    target: "10.0.0.1:4000",
    ...overrides,
  };
}

function serverCall(overrides: Partial<ServerCall> = {}): ServerCall {
  return {
    method: "divide",
    params: [],
    metadata: {},
    deadline: Infinity,
    remoteAddr: undefined,
    signal: new AbortController().signal,
    ...overrides,
  };
}

function reset(): void {
  spans.length = 0;
  points.length = 0;
  traceState = undefined;
}

const named = (name: string) => points.filter((p) => p.name === name);

// First in this module: nothing has loaded the OpenTelemetry side yet.
Deno.test("a call made before the OpenTelemetry side has loaded waits for it and is traced; gauges stopped before it loaded are never registered", async () => {
  reset();
  assert.equal(spansLoad(), undefined);
  const before = callbacks.size;
  const stopEarly = observeChannel("early", () => {
    throw new Error("a stopped channel's state was read");
  });
  stopEarly();
  const [interceptor] = clientTelemetry("calc");
  const result = await interceptor!(clientCall(), () => Promise.resolve(42));
  assert.equal(result, 42);
  assert.deepEqual(spans.map((s) => [s.name, s.ended]), [["calc/divide", 1]]);
  assert.equal(callbacks.size, before);
  assert.ok(spansLoad() !== undefined);
  // Loaded now: a channel's gauges are registered at once.
  const stop = observeChannel(
    "late",
    () => ({ state: "fresh", endpoints: [] }),
  );
  assert.equal(callbacks.size, before + 1);
  stop();
  assert.equal(callbacks.size, before);
});

Deno.test("telemetry is on once a tracer provider is registered", () => {
  assert.equal(telemetryEnabled(), true);
  assert.equal(clientTelemetry().length, 1);
  assert.equal(serverTelemetry().length, 1);
  assert.equal(typeof channelCallTelemetry("s"), "function");
});

Deno.test("clientTelemetry: a CLIENT span named service/method with the call's attributes, W3C trace context in the metadata, and one call counted", async () => {
  reset();
  traceState = "vendor=1";
  const [interceptor] = clientTelemetry("calc");
  const call = clientCall();
  const before = performance.now();
  const result = await interceptor!(call, () => Promise.resolve(42));
  const around = performance.now() - before;
  assert.equal(result, 42);
  assert.equal(spans.length, 1);
  const span = spans[0]!;
  assert.equal(span.name, "calc/divide");
  assert.equal(span.kind, SpanKind.CLIENT);
  assert.deepEqual(span.attributes, {
    "rpc.system": "zkrpc",
    "rpc.method": "divide",
    "server.address": "10.0.0.1",
    "server.port": 4000,
    "rpc.service": "calc",
    "zkrpc.attempt": 2,
  });
  assert.equal(span.ended, 1);
  assert.equal(span.status, undefined);
  assert.equal(
    call.metadata.traceparent,
    `00-${span.traceId}-${span.spanId}-01`,
  );
  assert.match(call.metadata.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.equal(call.metadata.tracestate, "vendor=1");
  const attributes = {
    "rpc.system": "zkrpc",
    "rpc.method": "divide",
    "server.address": "10.0.0.1",
    "server.port": 4000,
    "rpc.service": "calc",
  };
  assert.deepEqual(named("zkrpc.client.in_flight"), [
    { name: "zkrpc.client.in_flight", value: 1, attributes },
    { name: "zkrpc.client.in_flight", value: -1, attributes },
  ]);
  assert.deepEqual(named("zkrpc.client.calls"), [
    { name: "zkrpc.client.calls", value: 1, attributes },
  ]);
  assert.deepEqual(named("zkrpc.client.errors"), []);
  const [duration] = named("rpc.client.duration");
  // clock-ok: consistency, no threshold: the recorded duration lies within
  // the time measured around the call
  assert.ok(
    duration !== undefined && duration.value >= 0 && duration.value <= around,
  );
  assert.deepEqual(duration.attributes, attributes);
});

Deno.test("clientTelemetry without a service: the span is named after the method, no rpc.service, no tracestate when there is none; an IPv6 target keeps its colons", async () => {
  reset();
  const [interceptor] = clientTelemetry();
  const call = clientCall({ target: "::1:9000" });
  await interceptor!(call, () => Promise.resolve());
  assert.equal(spans[0]!.name, "divide");
  assert.ok(!("rpc.service" in spans[0]!.attributes));
  assert.equal(spans[0]!.attributes["server.address"], "::1");
  assert.equal(spans[0]!.attributes["server.port"], 9000);
  assert.ok(!("tracestate" in call.metadata));
  traceState = "";
  const second = clientCall();
  await interceptor!(second, () => Promise.resolve());
  assert.ok(!("tracestate" in second.metadata));
});

Deno.test("a failed call: the span gets error.type and an ERROR status with the message, the error counter its type, and the error is rethrown as is", async () => {
  reset();
  const [interceptor] = clientTelemetry("calc");
  const error = new RangeError("no");
  await assert.rejects(
    interceptor!(clientCall(), () => Promise.reject(error)),
    (e) => e === error,
  );
  const span = spans[0]!;
  assert.equal(span.attributes["error.type"], "RangeError");
  assert.deepEqual(span.status, { code: SpanStatusCode.ERROR, message: "no" });
  assert.equal(span.ended, 1);
  const errors = named("zkrpc.client.errors");
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.value, 1);
  assert.equal(errors[0]!.attributes["error.type"], "RangeError");
  assert.equal(named("zkrpc.client.calls").length, 1);
  assert.deepEqual(named("zkrpc.client.in_flight").map((p) => p.value), [
    1,
    -1,
  ]);
  // A thrown non-Error: its typeof, and its string as the message.
  reset();
  await assert.rejects(
    interceptor!(clientCall(), () => Promise.reject("plain")),
    (e) => e === "plain",
  );
  assert.equal(spans[0]!.attributes["error.type"], "string");
  assert.deepEqual(spans[0]!.status, {
    code: SpanStatusCode.ERROR,
    message: "plain",
  });
});

Deno.test("serverTelemetry: a SERVER span, child of the caller's traceparent (remote), with server and client addresses", async () => {
  reset();
  const [interceptor] = serverTelemetry({
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 7000,
  });
  const traceId = "0123456789abcdef0123456789abcdef";
  const spanId = "0123456789abcdef";
  const result = await interceptor!(
    serverCall({
      metadata: { traceparent: `00-${traceId}-${spanId}-01` },
      remoteAddr: { transport: "tcp", hostname: "10.9.8.7", port: 5555 },
    }),
    () => Promise.resolve("done"),
  );
  assert.equal(result, "done");
  const span = spans[0]!;
  assert.equal(span.name, "divide");
  assert.equal(span.kind, SpanKind.SERVER);
  assert.deepEqual(span.parent, { traceId, spanId, isRemote: true });
  assert.deepEqual(span.attributes, {
    "rpc.system": "zkrpc",
    "rpc.method": "divide",
    "server.address": "127.0.0.1",
    "server.port": 7000,
    "client.address": "10.9.8.7",
    "client.port": 5555,
  });
  assert.equal(named("zkrpc.server.calls").length, 1);
  assert.equal(named("rpc.server.duration").length, 1);
  // The handler runs with the span active.
  reset();
  let active: string | undefined;
  await interceptor!(serverCall(), () => {
    active = trace.getSpan(context.active())?.spanContext().spanId;
    return Promise.resolve();
  });
  // Without a context manager the active context is the root: what matters
  // is that no foreign parent was made up.
  assert.equal(spans[0]!.parent, undefined);
  assert.ok(active === undefined || active === spans[0]!.spanId);
});

Deno.test("serverTelemetry ignores a malformed traceparent, and without an address sets none", async () => {
  const [interceptor] = serverTelemetry();
  const good = "0123456789abcdef0123456789abcdef";
  for (
    const bad of [
      `01-${good}-0123456789abcdef-01`,
      `00-${good.toUpperCase()}-0123456789abcdef-01`,
      `00-${good}a-0123456789abcdef-01`,
      `00-${good}-0123456789abcde-01`,
      `00-${good}-0123456789abcdef-1`,
      ` 00-${good}-0123456789abcdef-01`,
      `00-${good}-0123456789abcdef-01 `,
      "",
    ]
  ) {
    reset();
    await interceptor!(
      serverCall({ metadata: { traceparent: bad } }),
      () => Promise.resolve(),
    );
    assert.equal(spans[0]!.parent, undefined, bad);
    assert.deepEqual(spans[0]!.attributes, {
      "rpc.system": "zkrpc",
      "rpc.method": "divide",
    });
  }
  reset();
  await interceptor!(
    serverCall({ metadata: { traceparent: `00-${good}-0123456789abcdef-00` } }),
    () => Promise.resolve(),
  );
  assert.equal(spans[0]!.parent?.traceId, good);
});

Deno.test("channelGauges reports endpoints by state, the ejections summed, and the discovery state; stopping removes the callback", () => {
  const observed: { metric: string; value: number; attributes: Attributes }[] =
    [];
  const before = callbacks.size;
  const stop = channelGauges("calc", () => ({
    state: "stale",
    endpoints: [
      { state: "ready", ejections: 0 },
      { state: "ejected", ejections: 2 },
      { state: "ready", ejections: 0 },
      { state: "ejected", ejections: 3 },
    ],
  }));
  assert.equal(callbacks.size, before + 1);
  for (const cb of callbacks) {
    cb({
      observe: (
        metric: { name: string },
        value: number,
        attributes: Attributes,
      ) => observed.push({ metric: metric.name, value, attributes }),
    });
  }
  assert.deepEqual(observed, [
    {
      metric: "zkrpc.channel.endpoints",
      value: 2,
      attributes: { "rpc.service": "calc", "zkrpc.endpoint.state": "ready" },
    },
    {
      metric: "zkrpc.channel.endpoints",
      value: 2,
      attributes: { "rpc.service": "calc", "zkrpc.endpoint.state": "ejected" },
    },
    {
      metric: "zkrpc.channel.ejections",
      value: 5,
      attributes: { "rpc.service": "calc" },
    },
    {
      metric: "zkrpc.channel.discovery_state",
      value: 1,
      attributes: { "rpc.service": "calc", "zkrpc.discovery.state": "stale" },
    },
  ]);
  assert.deepEqual(
    (observedWith as { name: string }[]).map((o) => o.name),
    [
      "zkrpc.channel.endpoints",
      "zkrpc.channel.ejections",
      "zkrpc.channel.discovery_state",
    ],
  );
  stop();
  assert.equal(callbacks.size, before);
});

Deno.test("the instruments: zkrpc's meter and tracer, each metric with its description and unit", () => {
  // Everything asked for so far in this module, by the tests above.
  const names = (
    kind: string,
  ) => [...new Set(created.filter((c) => c.kind === kind).map((c) => c.name))];
  assert.deepEqual(names("meter"), ["zkrpc"]);
  assert.deepEqual(names("tracer"), ["zkrpc"]);
  const options = (name: string) =>
    created.find((c) => c.name === name)?.options;
  for (const side of ["client", "server"]) {
    assert.deepEqual(options(`rpc.${side}.duration`), {
      description: `Duration of zkrpc calls (${side} side)`,
      unit: "ms",
    });
    assert.deepEqual(options(`zkrpc.${side}.calls`), {
      description: `zkrpc calls (${side} side)`,
    });
    assert.deepEqual(options(`zkrpc.${side}.errors`), {
      description: `zkrpc calls that failed, by error.type (${side} side)`,
    });
    assert.deepEqual(options(`zkrpc.${side}.in_flight`), {
      description: `zkrpc calls in flight (${side} side)`,
    });
  }
  assert.deepEqual(options("zkrpc.channel.endpoints"), {
    description: "Endpoints of a channel by connection state",
  });
  assert.deepEqual(options("zkrpc.channel.ejections"), {
    description: "Ejections in a row of the channel's ejected endpoints",
  });
  assert.deepEqual(options("zkrpc.channel.discovery_state"), {
    description: "1 for the channel's current discovery state",
  });
});

Deno.test("channelCallTelemetry wraps a whole channel call in an INTERNAL span; failures set error.type and the status", async () => {
  reset();
  const tracers = created.filter((c) => c.kind === "tracer").length;
  const wrap = channelCallTelemetry("calc")!;
  assert.equal(await wrap("divide", () => Promise.resolve(3)), 3);
  // Its own tracer, zkrpc's.
  assert.deepEqual(created.filter((c) => c.kind === "tracer").slice(tracers), [
    { kind: "tracer", name: "zkrpc" },
  ]);
  assert.equal(spans[0]!.name, "calc/divide");
  assert.equal(spans[0]!.kind, SpanKind.INTERNAL);
  assert.deepEqual(spans[0]!.attributes, {
    "rpc.system": "zkrpc",
    "rpc.service": "calc",
    "rpc.method": "divide",
  });
  assert.equal(spans[0]!.ended, 1);
  assert.equal(spans[0]!.status, undefined);
  reset();
  const error = new TypeError("bad");
  await assert.rejects(
    wrap("m", () => Promise.reject(error)),
    (e) => e === error,
  );
  assert.equal(spans.at(0)!.attributes["error.type"], "TypeError");
  assert.deepEqual(spans[0]!.status, {
    code: SpanStatusCode.ERROR,
    message: "bad",
  });
  assert.equal(spans[0]!.ended, 1);
  reset();
  await assert.rejects(wrap("m", () => Promise.reject(7)), (e) => e === 7);
  assert.equal(spans.at(0)!.attributes["error.type"], "number");
  assert.deepEqual(spans[0]!.status, {
    code: SpanStatusCode.ERROR,
    message: "7",
  });
});
