/**
 * `zkrpc traces`, run as its own process with the one permission it
 * documents (`--allow-net=127.0.0.1`): real servers and clients export
 * through Deno's built-in OpenTelemetry (`OTEL_DENO=true`) to it, and it
 * prints their traces as trees; hostile or wrong exports are refused with a
 * specific answer and nothing else is lost.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper } from "../testing.ts";
import { lines } from "../src/testing/server_process.ts";
import { type ReceivedSpan, renderTrace } from "../src/cli/traces.ts";
import { waitFor, within } from "./_wait.ts";

const ROOT = new URL("../", import.meta.url);
const CLI = new URL("cli.ts", ROOT).pathname;
/** Generous: a subprocess start and an export on a loaded machine. */
const WAIT = 60_000;

interface Receiver extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** Ctrl-C (or `signal`); resolves with the exit code. */
  interrupt(signal?: Deno.Signal): Promise<number>;
  /** The exit code once the process ends by itself. */
  status: Promise<Deno.CommandStatus>;
}

/** Starts `deno run --allow-net=127.0.0.1 cli.ts traces --port 0 …`. */
async function startReceiver(args: string[] = []): Promise<Receiver> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      CLI,
      "traces",
      "--port",
      "0",
      ...args,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "", err = "";
  const reading = Promise.all([
    (async () => {
      for await (const line of lines(child.stdout)) out += `${line}\n`;
    })(),
    (async () => {
      for await (const line of lines(child.stderr)) err += `${line}\n`;
    })(),
  ]);
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await reading;
  };
  try {
    await waitFor(
      () => /receiving OTLP\/HTTP JSON on http:\/\/127\.0\.0\.1:\d+/.test(err),
      { what: "zkrpc traces to listen", timeout: WAIT },
    );
  } catch (error) {
    await stop();
    throw new Error(`${error}\n${err}`);
  }
  const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(err)![1]!;
  return {
    url,
    stdout: () => out,
    stderr: () => err,
    status: child.status,
    interrupt: async (signal: Deno.Signal = "SIGINT") => {
      child.kill(signal);
      const status = await within(child.status, WAIT, "zkrpc traces to stop");
      await reading;
      return status.code;
    },
    [Symbol.asyncDispose]: stop,
  };
}

/** A printed span line: its depth in the tree, kind and the line. */
interface SpanLine {
  depth: number;
  name: string;
  kind: string;
  line: string;
}

/** The span lines of each printed trace (blocks start with "trace "). */
function printedTraces(text: string): { header: string; spans: SpanLine[] }[] {
  const traces: { header: string; spans: SpanLine[] }[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("trace ")) {
      traces.push({ header: line, spans: [] });
      continue;
    }
    const span = /^((?:[│ ] {3})*)((?:[├└]── )?)(\S+) \[([a-z]+)\] /.exec(line);
    if (span === null || traces.length === 0) continue; // attributes, blanks
    const indent = span[1]!.length + span[2]!.length;
    traces.at(-1)!.spans.push({
      depth: indent / 4,
      name: span[3]!,
      kind: span[4]!,
      line,
    });
  }
  return traces;
}

/** The span line a span line is printed under, if any. */
function parentOf(spans: SpanLine[], index: number): SpanLine | undefined {
  for (let i = index - 1; i >= 0; i--) {
    if (spans[i]!.depth < spans[index]!.depth) return spans[i];
  }
  return undefined;
}

function otelEnv(receiver: Receiver): Record<string, string> {
  return {
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_DENO_CONSOLE: "ignore",
  };
}

Deno.test("the offline trace recipe of the OpenTelemetry page is the one these tests run", async () => {
  const page = await Deno.readTextFile(
    new URL("docs/interceptors-and-telemetry.md", ROOT),
  );
  assert.ok(page.includes("deno run --allow-net=127.0.0.1 cli.ts traces"));
  for (
    const [name, value] of Object.entries(otelEnv({ url: "" } as Receiver))
  ) {
    if (name === "OTEL_DENO_CONSOLE") continue; // the test's quiet output only
    assert.ok(
      page.includes(`${name}=${value || "http://127.0.0.1:4318"}`),
      `${name} in the recipe`,
    );
  }
});

Deno.test("zkrpc traces prints the trace of a real server and client as one tree in which the client span is the server span's parent", async () => {
  await using zk = await startZooKeeper();
  await using receiver = await startReceiver(["--settle", "300ms"]);
  const service = `traced-${Deno.pid}`;
  const env = otelEnv(receiver);
  // The server exports its spans in its next batch or when it exits; the
  // client when it exits: the trace is printed, then printed again whole
  // ("updated") when the other process's spans arrive.
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      new URL("examples/server.ts", ROOT).pathname,
      "127.0.0.1",
      "0",
      "--zookeeper",
      zk.connectionString,
      "--service",
      service,
    ],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const serverErr = new Response(server.stderr).text();
  const serverOut = lines(server.stdout);
  try {
    while (true) {
      const line = await within(
        serverOut.next(),
        WAIT,
        "the server to register",
      );
      if (line.done) assert.fail(`the server exited: ${await serverErr}`);
      if (line.value.startsWith("registered")) break;
    }
    const client = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        new URL("examples/client.ts", ROOT).pathname,
        "--zookeeper",
        zk.connectionString,
        "--service",
        service,
        "--count",
        "1",
        "--interval",
        "0",
      ],
      env,
      stdin: "null",
      signal: AbortSignal.timeout(WAIT),
    }).output();
    assert.equal(
      client.code,
      0,
      new TextDecoder().decode(client.stderr),
    );
  } finally {
    server.kill("SIGTERM");
    while (!(await within(serverOut.next(), WAIT, "the server to exit")).done) {
      // drain
    }
    await within(server.status, WAIT, "the server to exit");
    await serverErr;
  }
  // The server's span, printed under the client attempt that caused it.
  const found = () =>
    printedTraces(receiver.stdout()).find(({ spans }) =>
      spans.some((s, i) =>
        s.kind === "server" && s.name === "divide" &&
        parentOf(spans, i)?.kind === "client"
      )
    );
  await waitFor(() => found() !== undefined, {
    what:
      `a trace with a server span under a client span:\n${receiver.stdout()}`,
    timeout: WAIT,
  });
  const trace = found()!;
  const serverIndex = trace.spans.findIndex((s) =>
    s.kind === "server" && s.name === "divide"
  );
  const client = parentOf(trace.spans, serverIndex)!;
  assert.match(client.line, /\[client\] \d+(\.\d+)? (µs|ms|s)/);
  // The channel's call span is the root: call -> attempt (client) -> server.
  assert.equal(trace.spans[0]!.depth, 0);
  assert.equal(trace.spans[0]!.kind, "internal");
  assert.equal(client.depth, 1);
  assert.equal(trace.spans[serverIndex]!.depth, 2);
  assert.match(
    trace.header,
    /^trace [0-9a-f]{32}(?: \(updated: \d+ more\))?: 3 spans, /,
  );
  // Attributes below the span lines.
  const text = receiver.stdout();
  assert.match(text, /rpc\.method=divide/);
  assert.match(text, /rpc\.system=zkrpc/);
  assert.equal(await receiver.interrupt(), 0);
});

/** One span of an OTLP/HTTP JSON export. */
function span(name: string, fields: Record<string, unknown> = {}) {
  return {
    traceId: "5b8efff798038103d269b633813fc60c",
    spanId: "eee19b7ec3c1b174",
    name,
    kind: 2,
    startTimeUnixNano: "1700000000000000000",
    endTimeUnixNano: "1700000000002500000",
    attributes: [{ key: "rpc.method", value: { stringValue: "divide" } }],
    ...fields,
  };
}

function post(
  url: string,
  path: string,
  body: BodyInit,
  type = "application/json",
  headers: Record<string, string> = {},
) {
  return fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": type, ...headers },
    body,
    signal: AbortSignal.timeout(WAIT),
  });
}

Deno.test("zkrpc traces refuses wrong exports with a specific answer, escapes what it prints and keeps the valid spans", async () => {
  await using receiver = await startReceiver(["--settle", "100ms"]);
  // Protobuf (Deno's default protocol): 415, and a hint naming the fix.
  const protobuf = await post(
    receiver.url,
    "/v1/traces",
    "\x0a\x00",
    "application/x-protobuf",
  );
  assert.equal(protobuf.status, 415);
  await protobuf.body?.cancel();
  assert.match(receiver.stderr(), /set OTEL_EXPORTER_OTLP_PROTOCOL=http\/json/);
  // Not JSON: 400, and the bytes are not echoed.
  const garbage = await post(receiver.url, "/v1/traces", "{\x1b]0;pwned\x07");
  assert.equal(garbage.status, 400);
  assert.ok(!(await garbage.text()).includes("pwned"));
  // Metrics and logs: accepted.
  for (const path of ["/v1/metrics", "/v1/logs"]) {
    const ok = await post(receiver.url, path, "{}");
    assert.equal(ok.status, 200, path);
    await ok.body?.cancel();
  }
  const missing = await post(receiver.url, "/v2/other", "{}");
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  // A hostile span name and attribute beside a malformed span: the valid
  // span is printed, escaped; the malformed one is counted as rejected.
  const hostile = await post(
    receiver.url,
    "/v1/traces",
    JSON.stringify({
      resourceSpans: [{
        resource: {
          attributes: [{ key: "service.name", value: { stringValue: "svc" } }],
        },
        scopeSpans: [{
          spans: [
            span("evil\x1b[2J\u202e", {
              attributes: [{
                key: "k\x07",
                value: { stringValue: "v\x1b]8;;http://x\x07" },
              }],
            }),
            span("bad", { traceId: "nothex" }),
          ],
        }],
      }],
    }),
  );
  assert.equal(hostile.status, 200);
  const answer = await hostile.json();
  assert.equal(answer.partialSuccess.rejectedSpans, "1");
  await waitFor(() => receiver.stdout().includes("trace 5b8efff7"), {
    what: "the valid span to be printed",
    timeout: WAIT,
  });
  const text = receiver.stdout();
  // No raw control or bidi character reached the terminal (newlines aside).
  assert.ok(
    !/[\p{Cc}\p{Cf}]/u.test(text.replaceAll("\n", "")),
    JSON.stringify(text),
  );
  assert.match(text, /^evil\\x1b\[2J\\u202e \[server\] 2\.50 ms \(svc\)$/m);
  assert.match(text, /k\\x07=v\\x1b\]8;;http:\/\/x\\x07/);
  assert.match(receiver.stderr(), /skipped 1 span/);
  assert.equal(await receiver.interrupt(), 0);
});

Deno.test("zkrpc traces --json prints each trace as nested spans, and a late span reprints the trace whole", async () => {
  await using receiver = await startReceiver([
    "--settle",
    "100ms",
    "--parent-wait",
    "100ms",
    "--json",
  ]);
  const parent = span("call", { kind: 3 });
  const child = span("divide", {
    spanId: "00f067aa0ba902b7",
    parentSpanId: parent.spanId,
    startTimeUnixNano: "1700000000000500000",
  });
  const send = async (spans: unknown[]) => {
    const response = await post(
      receiver.url,
      "/v1/traces",
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }),
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
  };
  await send([child]);
  await waitFor(() => receiver.stdout().split("\n").length > 1, {
    what: "the first trace",
    timeout: WAIT,
  });
  await send([parent]);
  await waitFor(() => receiver.stdout().split("\n").length > 2, {
    what: "the updated trace",
    timeout: WAIT,
  });
  const [first, second] = receiver.stdout().trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  // First only the child, its parent not received: a root of its own.
  assert.equal(first.spans.length, 1);
  assert.equal(first.spans[0].name, "divide");
  assert.equal(first.spans[0].parentSpanId, parent.spanId);
  // Then the whole trace: the parent with the child under it.
  assert.equal(second.updated, 1);
  assert.equal(second.spans.length, 1);
  assert.equal(second.spans[0].name, "call");
  assert.equal(second.spans[0].kind, "client");
  assert.equal(second.spans[0].children[0].name, "divide");
  assert.equal(second.spans[0].children[0].durationMs, 2);
  assert.deepEqual(second.spans[0].children[0].attributes, {
    "rpc.method": "divide",
  });
  assert.equal(await receiver.interrupt(), 0);
});

Deno.test("zkrpc traces on a port in use exits 2 with the port and how to pick another", async () => {
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      CLI,
      "traces",
      "--port",
      String(busy.addr.port),
    ],
    stdin: "null",
    signal: AbortSignal.timeout(WAIT),
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 2, stderr);
  assert.match(
    stderr,
    new RegExp(
      `Cannot listen on 127\\.0\\.0\\.1:${busy.addr.port}: the port is in use`,
    ),
  );
  assert.match(stderr, /--port/);
});

Deno.test("zkrpc traces reads gzip bodies, refuses other compressions, and prints the traces still settling on SIGTERM", async () => {
  await using receiver = await startReceiver(["--settle", "10m"]);
  const json = JSON.stringify({
    resourceSpans: [{ scopeSpans: [{ spans: [span("gzipped")] }] }],
  });
  const gzipped = await new Response(
    new Blob([json]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  const ok = await post(receiver.url, "/v1/traces", gzipped, undefined, {
    "content-encoding": "gzip",
  });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  const broken = await post(receiver.url, "/v1/traces", "not gzip", undefined, {
    "content-encoding": "gzip",
  });
  assert.equal(broken.status, 400);
  await broken.body?.cancel();
  const other = await post(receiver.url, "/v1/traces", json, undefined, {
    "content-encoding": "br",
  });
  assert.equal(other.status, 415);
  await other.body?.cancel();
  assert.match(receiver.stderr(), /OTEL_EXPORTER_OTLP_COMPRESSION/);
  // Ten minutes of settling left: only the stop prints it.
  assert.equal(receiver.stdout(), "");
  assert.equal(await receiver.interrupt("SIGTERM"), 0);
  assert.match(receiver.stdout(), /^gzipped \[server\] 2\.50 ms$/m);
});

Deno.test("a trace whose parents form a cycle, or whose parent is missing, still prints every span once", () => {
  const base = {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    kind: "internal",
    start: 0n,
    end: 1000n,
    attributes: [],
    events: [],
  };
  const spans: ReceivedSpan[] = [
    {
      ...base,
      spanId: "000000000000000a",
      parentSpanId: "000000000000000b",
      name: "a",
    },
    {
      ...base,
      spanId: "000000000000000b",
      parentSpanId: "000000000000000a",
      name: "b",
    },
    {
      ...base,
      spanId: "000000000000000c",
      parentSpanId: "00000000000000ff",
      name: "c",
    },
    {
      ...base,
      spanId: "000000000000000d",
      parentSpanId: "000000000000000d",
      name: "d",
    },
  ];
  const lines = renderTrace(spans);
  assert.match(lines[0]!, /: 4 spans, /);
  for (const name of ["a", "b", "c", "d"]) {
    assert.equal(
      lines.filter((line) => new RegExp(`(^|── )${name} \\[`).test(line))
        .length,
      1,
      `${name} once in:\n${lines.join("\n")}`,
    );
  }
  assert.ok(
    lines.some((line) =>
      /^c \[internal\].*\(parent 00000000000000ff not received\)/.test(line)
    ),
    lines.join("\n"),
  );
  assert.ok(
    lines.some((line) =>
      /^d \[internal\].*\(parent 000000000000000d: a cycle, cut here\)/
        .test(line)
    ),
    lines.join("\n"),
  );
  assert.equal(
    lines.filter((line) => line.includes("a cycle, cut here")).length,
    2,
    "one cut for a <-> b, one for d -> d",
  );
});

Deno.test("zkrpc traces waits --parent-wait for a missing parent, so a child sent before its parent prints in one trace", async () => {
  await using receiver = await startReceiver([
    "--settle",
    "1ms",
    "--parent-wait",
    "10m",
    "--json",
  ]);
  const parent = span("call", { kind: 3 });
  const child = span("divide", {
    spanId: "00f067aa0ba902b7",
    parentSpanId: parent.spanId,
  });
  for (const spans of [[child], [parent]]) {
    const response = await post(
      receiver.url,
      "/v1/traces",
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }),
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }
  await waitFor(() => receiver.stdout().includes("\n"), {
    what: "the trace",
    timeout: WAIT,
  });
  assert.equal(await receiver.interrupt(), 0);
  const printed = receiver.stdout().trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(printed.length, 1, receiver.stdout());
  assert.equal(printed[0].spans[0].name, "call");
  assert.equal(printed[0].spans[0].children[0].name, "divide");
});

Deno.test("zkrpc traces --help prints usage, and a wrong flag or argument exits 2 naming it", async () => {
  const run = async (args: string[]) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net=127.0.0.1", CLI, "traces", ...args],
      stdin: "null",
      signal: AbortSignal.timeout(WAIT),
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return {
      code: output.code,
      text: decode(output.stdout) + decode(output.stderr),
    };
  };
  const help = await run(["--help"]);
  assert.equal(help.code, 0, help.text);
  assert.match(help.text, /Usage: zkrpc traces/);
  assert.match(help.text, /--allow-net=127\.0\.0\.1/);
  const cases: [string[], RegExp][] = [
    [["--port", "http"], /Cannot parse --port: expected a port number/],
    [["--port", "65536"], /Cannot parse --port/],
    [["--settle", "soon"], /Cannot parse --settle: expected a duration/],
    [["--parent-wait", "-1"], /Cannot (parse|run)/],
    [["--count", "0"], /Cannot parse --count/],
    [["calculator"], /it takes no arguments, got 1/],
    [["--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const { code, text } = await run(args);
    assert.equal(code, 2, `${args.join(" ")}: ${text}`);
    assert.match(text, message, args.join(" "));
  }
});

Deno.test("zkrpc traces --json escapes control and bidi characters and caps long keys and values, and stays valid JSON", async () => {
  await using receiver = await startReceiver(["--settle", "1ms", "--json"]);
  const longKey = "k".repeat(10_000);
  const response = await post(
    receiver.url,
    "/v1/traces",
    JSON.stringify({
      resourceSpans: [{
        scopeSpans: [{
          spans: [span("n\u009b2J\u202e", {
            attributes: [
              { key: longKey, value: { stringValue: "v".repeat(10_000) } },
              { key: "bidi", value: { stringValue: "a\u2066b\u2028c" } },
            ],
          })],
        }],
      }],
    }),
  );
  assert.equal(response.status, 200);
  await response.body?.cancel();
  await waitFor(() => receiver.stdout().includes("\n"), {
    what: "the trace",
    timeout: WAIT,
  });
  const line = receiver.stdout().trim();
  assert.ok(!/[\p{Cc}\p{Cf}\p{Zl}]/u.test(line), JSON.stringify(line));
  assert.ok(line.length < 2_000, `${line.length} characters printed`);
  const printed = JSON.parse(line);
  const attributes = printed.spans[0].attributes;
  assert.equal(printed.spans[0].name, "n\u009b2J\u202e");
  assert.equal(attributes.bidi, "a\u2066b\u2028c");
  const [key] = Object.keys(attributes).filter((k) => k.startsWith("kkk"));
  assert.match(key!, /… \(10000 chars\)$/);
  assert.match(attributes[key!], /… \(10000 chars\)$/);
  assert.equal(await receiver.interrupt(), 0);
});

Deno.test("a chain of 20 000 spans prints every span once, at most 32 levels deep", () => {
  const spans: ReceivedSpan[] = Array.from({ length: 20_000 }, (_, i) => ({
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: (i + 1).toString(16).padStart(16, "0"),
    ...(i === 0 ? {} : { parentSpanId: i.toString(16).padStart(16, "0") }),
    name: `s${i}`,
    kind: "internal",
    start: BigInt(i),
    end: BigInt(i + 1),
    attributes: [],
    events: [],
  }));
  const lines = renderTrace(spans);
  assert.equal(lines.length, 1 + 20_000);
  assert.ok(
    lines.every((line) => line.length < 32 * 4 + 120),
    "bounded indentation",
  );
  assert.equal(
    lines.filter((line) => line.includes("32 levels deep)")).length,
    Math.ceil(20_000 / 32) - 1,
  );
});

Deno.test("zkrpc traces stops by itself after --count traces, or after --duration", async () => {
  {
    await using receiver = await startReceiver([
      "--settle",
      "1ms",
      "--count",
      "1",
    ]);
    const response = await post(
      receiver.url,
      "/v1/traces",
      JSON.stringify({
        resourceSpans: [{ scopeSpans: [{ spans: [span("only")] }] }],
      }),
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const status = await within(receiver.status, WAIT, "--count 1 to stop");
    assert.equal(status.code, 0);
    await waitFor(() => receiver.stdout().includes("only [server]"), {
      what: "the trace printed before the exit",
      timeout: WAIT,
    });
  }
  {
    await using receiver = await startReceiver(["--duration", "300ms"]);
    const status = await within(receiver.status, WAIT, "--duration to stop");
    assert.equal(status.code, 0);
  }
});
