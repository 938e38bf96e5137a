/**
 * OpenTelemetry through Deno's built-in exporter (`OTEL_DENO=true`, no SDK):
 * a child process runs client -> server -> nested call against a tiny
 * OTLP/HTTP JSON receiver on loopback.
 *
 * @module
 */
import assert from "node:assert/strict";
import { waitFor } from "./_wait.ts";

const FIXTURE = new URL("./fixtures/otel_nested.ts", import.meta.url);
const CONFIG = new URL("../deno.json", import.meta.url);

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}

interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: OtlpAttribute[];
  status?: { code?: number };
}

interface Run {
  fixture: { enabled: boolean; result: number; outer: number; inner: number };
  posts: Map<string, unknown[]>;
}

/** Runs the fixture with telemetry exported to a receiver on loopback. */
async function runWithReceiver(): Promise<Run> {
  const posts = new Map<string, unknown[]>();
  const receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      const body = await request.json();
      posts.set(path, [...(posts.get(path) ?? []), body]);
      return Response.json({});
    },
  );
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        "--config",
        CONFIG.pathname,
        FIXTURE.pathname,
      ],
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.addr.port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_METRIC_EXPORT_INTERVAL: "200",
        OTEL_DENO_CONSOLE: "ignore",
        OTEL_SERVICE_NAME: "zkrpc-telemetry-test",
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const lines = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let stdout = "";
    while (!stdout.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      stdout += value;
    }
    // The channel's gauges are read by the periodic export while it is open.
    await waitFor(
      () =>
        JSON.stringify(posts.get("/v1/metrics") ?? []).includes(
          "zkrpc.channel.endpoints",
        ),
      { what: "the channel's gauges exported", timeout: 20_000, interval: 20 },
    );
    await child.stdin.close();
    while (!(await lines.read()).done) { /* drain */ }
    const status = await child.status;
    assert.equal(status.code, 0, await stderr);
    const fixture = JSON.parse(stdout);
    return { fixture, posts };
  } finally {
    await receiver.shutdown();
  }
}

function attributes(span: OtlpSpan): Record<string, unknown> {
  return Object.fromEntries(
    span.attributes.map((a) => [a.key, Object.values(a.value)[0]]),
  );
}

function spansOf(posts: Map<string, unknown[]>): OtlpSpan[] {
  const spans: OtlpSpan[] = [];
  for (const body of posts.get("/v1/traces") ?? []) {
    for (const rs of (body as { resourceSpans: unknown[] }).resourceSpans) {
      for (
        const ss of (rs as { scopeSpans: { spans: OtlpSpan[] }[] }).scopeSpans
      ) spans.push(...ss.spans);
    }
  }
  return spans;
}

// OTel span kinds in OTLP: 1 = internal, 2 = server, 3 = client.
const INTERNAL = 1;
const SERVER = 2;
const CLIENT = 3;

Deno.test("client -> server -> nested call forms one trace of correctly parented spans with RPC attributes", async () => {
  const { fixture, posts } = await runWithReceiver();
  assert.equal(fixture.enabled, true);
  assert.equal(fixture.result, 25);
  const spans = spansOf(posts).filter((s) =>
    attributes(s)["rpc.system"] === "zkrpc"
  );
  const one = (name: string, kind: number) => {
    const found = spans.filter((s) => s.name === name && s.kind === kind);
    assert.ok(found.length > 0, `no ${name} span of kind ${kind}`);
    return found;
  };
  const [call] = one("calc/sumOfSquares", INTERNAL);
  const [client] = one("calc/sumOfSquares", CLIENT);
  const [server] = one("sumOfSquares", SERVER);
  const nestedClients = one("square", CLIENT);
  const nestedServers = one("square", SERVER);
  assert.equal(nestedClients.length, 2);
  assert.equal(nestedServers.length, 2);
  // One trace, parented call -> attempt (client) -> server -> nested client
  // -> nested server.
  const trace = call!.traceId;
  for (const span of [client!, server!, ...nestedClients, ...nestedServers]) {
    assert.equal(span.traceId, trace);
  }
  assert.ok(!call!.parentSpanId);
  assert.equal(client!.parentSpanId, call!.spanId);
  assert.equal(attributes(call!)["rpc.method"], "sumOfSquares");
  assert.equal(server!.parentSpanId, client!.spanId);
  for (const nested of nestedClients) {
    assert.equal(nested.parentSpanId, server!.spanId);
  }
  assert.deepEqual(
    new Set(nestedServers.map((s) => s.parentSpanId)),
    new Set(nestedClients.map((s) => s.spanId)),
  );
  const clientAttributes = attributes(client!);
  assert.equal(clientAttributes["rpc.system"], "zkrpc");
  assert.equal(clientAttributes["rpc.service"], "calc");
  assert.equal(clientAttributes["rpc.method"], "sumOfSquares");
  assert.equal(clientAttributes["server.address"], "127.0.0.1");
  assert.equal(Number(clientAttributes["server.port"]), fixture.outer);
  const serverAttributes = attributes(server!);
  assert.equal(serverAttributes["rpc.method"], "sumOfSquares");
  assert.equal(Number(serverAttributes["server.port"]), fixture.outer);
  assert.equal(serverAttributes["client.address"], "127.0.0.1");
  // A failed call: error status and error.type.
  const [failed] = one("calc/missing", CLIENT);
  assert.equal(failed!.status?.code, 2);
  assert.equal(attributes(failed!)["error.type"], "MethodNotFoundError");
});

Deno.test("RPC metrics (calls, errors, latency histograms, in-flight, endpoints, ejections, discovery state) arrive at the OTLP receiver", async () => {
  const { posts } = await runWithReceiver();
  const names = new Set<string>();
  let errorType: unknown;
  for (const body of posts.get("/v1/metrics") ?? []) {
    for (const rm of (body as { resourceMetrics: unknown[] }).resourceMetrics) {
      const scopes = (rm as {
        scopeMetrics: {
          scope: { name: string };
          metrics: {
            name: string;
            sum?: { dataPoints: { attributes: OtlpAttribute[] }[] };
          }[];
        }[];
      }).scopeMetrics;
      for (const scope of scopes) {
        if (scope.scope.name !== "zkrpc") continue;
        for (const metric of scope.metrics) {
          names.add(metric.name);
          if (metric.name === "zkrpc.client.errors") {
            errorType = metric.sum?.dataPoints[0]?.attributes.find((a) =>
              a.key === "error.type"
            )?.value["stringValue"];
          }
        }
      }
    }
  }
  for (
    const name of [
      "rpc.client.duration",
      "rpc.server.duration",
      "zkrpc.client.calls",
      "zkrpc.client.errors",
      "zkrpc.client.in_flight",
      "zkrpc.server.calls",
      "zkrpc.server.in_flight",
      "zkrpc.channel.endpoints",
      "zkrpc.channel.ejections",
      "zkrpc.channel.discovery_state",
    ]
  ) assert.ok(names.has(name), `${name} missing from ${[...names]}`);
  assert.equal(errorType, "MethodNotFoundError");
});
