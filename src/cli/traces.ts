/**
 * `zkrpc traces`: a loopback OpenTelemetry receiver (OTLP over HTTP with JSON
 * bodies) that prints each trace it receives as a tree of spans, so a trace
 * can be seen without installing a collector.
 *
 * @module
 */

import { printableJson } from "../_printable.ts";
import { setLongTimeout } from "../_async.ts";
import {
  CliError,
  ExitCode,
  parseCommandArgs,
  parseDuration,
  parseStopFlags,
  STOP_FLAGS,
} from "./_shared.ts";
import {
  parseOtlpTraces,
  readBody,
  type ReceivedSpan,
  TRACES_MAX_BODY,
} from "./_otlp.ts";
import { formatNanos, renderTrace, traceJson } from "./_trace_tree.ts";

export { formatNanos, parseOtlpTraces, renderTrace, TRACES_MAX_BODY };
export type { ReceivedSpan };

/**
 * Help of `zkrpc traces`.
 *
 * @example
 * ```ts
 * import { TRACES_HELP } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(TRACES_HELP, /--allow-net=127\.0\.0\.1/);
 * ```
 */
export const TRACES_HELP = `Usage: zkrpc traces [options]

Receives OpenTelemetry traces over OTLP/HTTP with JSON bodies on 127.0.0.1 and
prints each trace as a tree of spans: name, kind, duration, start after the
trace's first span, the sending process (service.name), status and
attributes. A trace is printed once no span of it arrived for --settle; when
more of its spans arrive later (another process exports them in its next
batch, or when it exits) the whole trace is printed again, marked "updated".
Bodies may be gzip-compressed. Metrics and logs are accepted and ignored.
Runs until Ctrl-C or SIGTERM (pending traces are printed), --count or
--duration. No ZooKeeper is involved.

In another terminal, run any Deno program with:
  OTEL_DENO=true OTEL_EXPORTER_OTLP_PROTOCOL=http/json \\
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 deno task demo
(OTEL_BSP_SCHEDULE_DELAY=200 as well: spans exported every 200 ms, not in the
default batches every few seconds)

Options:
  --port N             port on 127.0.0.1 (default 4318; 0 picks a free one)
  --settle DURATION    quiet time before a trace is printed (default 1s)
  --parent-wait DURATION
                       quiet time when a span's parent has not arrived (it is
                       likely in another process's next batch; default 6s)
  --count N            stop after printing N traces (an update counts)
  --duration DURATION  stop after this long: 30s, 5m
  --json               one JSON object per trace, spans nested under parents
  -h, --help           show help

Permissions: deno run --allow-net=127.0.0.1 cli.ts traces

Exit codes:
  0  ok (stopped by Ctrl-C, --count or --duration)
  2  wrong flag, or the port is in use`;

/**
 * Default port: the OTLP/HTTP port.
 *
 * @example
 * ```ts
 * import { TRACES_DEFAULT_PORT } from "./traces.ts";
 *
 * const endpoint = `http://127.0.0.1:${TRACES_DEFAULT_PORT}`; // OTEL_EXPORTER_OTLP_ENDPOINT
 * ```
 */
export const TRACES_DEFAULT_PORT = 4318;
/**
 * Default quiet time before a trace is printed, in ms (`--settle`).
 *
 * @example
 * ```ts
 * import { TRACES_DEFAULT_SETTLE } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(TRACES_DEFAULT_SETTLE, 1000);
 * ```
 */
export const TRACES_DEFAULT_SETTLE = 1000;
/**
 * Default wait for a missing parent span, in ms (`--parent-wait`): longer
 * than the 5 s between two batch exports of a process (OpenTelemetry's
 * default).
 *
 * @example
 * ```ts
 * import { TRACES_DEFAULT_PARENT_WAIT } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(TRACES_DEFAULT_PARENT_WAIT > 5000);
 * ```
 */
export const TRACES_DEFAULT_PARENT_WAIT = 6000;
/**
 * Most spans kept, pending or printed (printed traces are kept so that late
 * spans complete them): beyond it the oldest pending trace is printed early
 * and the oldest printed trace forgotten.
 *
 * @example
 * ```ts
 * import { TRACES_MAX_SPANS } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(TRACES_MAX_SPANS, 50_000);
 * ```
 */
export const TRACES_MAX_SPANS = 50_000;

/**
 * Groups spans by trace and hands a trace over once no span of it arrived
 * for `settle` ms. Spans of a trace already handed over (another process
 * exports later) are added to it and the whole trace is handed over again,
 * with the number of new spans. Printed traces are kept for that, the oldest
 * forgotten beyond {@linkcode TRACES_MAX_SPANS} spans.
 */
class Settler {
  #pending = new Map<
    string,
    { spans: ReceivedSpan[]; timer: ReturnType<typeof setTimeout> | undefined }
  >();
  /** Spans of traces handed over, oldest trace first. */
  #done = new Map<string, ReceivedSpan[]>();
  #held = 0;
  #settle: number;
  #parentWait: number;
  #emit: (spans: ReceivedSpan[], added: number) => void;

  constructor(
    settle: number,
    parentWait: number,
    emit: (spans: ReceivedSpan[], added: number) => void,
  ) {
    this.#settle = settle;
    this.#parentWait = parentWait;
    this.#emit = emit;
  }

  add(spans: ReceivedSpan[]): void {
    const touched = new Set<string>();
    for (const span of spans) {
      let entry = this.#pending.get(span.traceId);
      if (entry === undefined) {
        entry = { spans: [], timer: undefined };
        this.#pending.set(span.traceId, entry);
      }
      entry.spans.push(span);
      this.#held++;
      touched.add(span.traceId);
    }
    for (const traceId of touched) {
      const entry = this.#pending.get(traceId)!;
      clearTimeout(entry.timer);
      // A span whose parent has not arrived: the parent is likely in another
      // process's next batch, so wait for it longer.
      const ids = new Set(
        [...entry.spans, ...this.#done.get(traceId) ?? []].map((s) => s.spanId),
      );
      const orphan = entry.spans.some((s) =>
        s.parentSpanId !== undefined && !ids.has(s.parentSpanId)
      );
      entry.timer = setTimeout(
        () => this.#flush(traceId),
        orphan ? Math.max(this.#settle, this.#parentWait) : this.#settle,
      );
    }
    // Bounded memory: the oldest pending traces are printed early, the
    // oldest printed ones forgotten.
    while (this.#held > TRACES_MAX_SPANS && this.#pending.size > 0) {
      this.#flush(this.#pending.keys().next().value as string);
    }
  }

  #flush(traceId: string): void {
    const entry = this.#pending.get(traceId);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.#pending.delete(traceId);
    const before = this.#done.get(traceId) ?? [];
    this.#done.delete(traceId); // re-inserted as the newest
    const ids = new Set(before.map((span) => span.spanId));
    const added = entry.spans.filter((span) => {
      if (ids.has(span.spanId)) return false; // sent twice
      ids.add(span.spanId);
      return true;
    });
    this.#held -= entry.spans.length - added.length;
    const all = [...before, ...added];
    this.#done.set(traceId, all);
    while (this.#held > TRACES_MAX_SPANS && this.#done.size > 1) {
      const [oldest, spans] = this.#done.entries().next().value!;
      this.#done.delete(oldest);
      this.#held -= spans.length;
    }
    if (added.length > 0) {
      this.#emit(all, before.length === 0 ? 0 : added.length);
    }
  }

  flushAll(): void {
    for (const traceId of [...this.#pending.keys()]) this.#flush(traceId);
  }
}

/**
 * Runs `zkrpc traces`: serves until Ctrl-C, SIGTERM, `--count` or
 * `--duration`.
 *
 * @param args The arguments after `traces`.
 * @returns The exit code.
 *
 * @example Show the help (returns at once)
 * ```ts
 * import { traces } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await traces(["--help"]), 0);
 * ```
 */
export async function traces(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("traces", args, {
    port: { type: "string" },
    settle: { type: "string" },
    "parent-wait": { type: "string" },
    ...STOP_FLAGS,
  });
  if (values.help) {
    console.log(TRACES_HELP);
    return ExitCode.Ok;
  }
  if (positionals.length > 0) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot run "zkrpc traces": it takes no arguments, got ${positionals.length}`,
      'Run "zkrpc traces --help" for usage.',
    );
  }
  const portText = (values.port as string | undefined) ??
    String(TRACES_DEFAULT_PORT);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot parse --port: expected a port number 0..65535, got "${portText}"`,
    );
  }
  const settle = values.settle === undefined
    ? TRACES_DEFAULT_SETTLE
    : parseDuration("settle", values.settle as string);
  const parentWait = values["parent-wait"] === undefined
    ? TRACES_DEFAULT_PARENT_WAIT
    : parseDuration("parent-wait", values["parent-wait"] as string);
  const { count, duration } = parseStopFlags(values);
  const json = values.json === true;

  const stop = new AbortController();
  let printedTraces = 0;
  const settler = new Settler(settle, parentWait, (spans, added) => {
    if (printedTraces >= count) return;
    printedTraces++;
    if (json) console.log(printableJson(traceJson(spans, added)));
    else console.log(renderTrace(spans, added).join("\n") + "\n");
    if (printedTraces >= count) stop.abort();
  });
  const hinted = new Set<string>();
  const note = (key: string, message: string) => {
    if (hinted.has(key)) return;
    hinted.add(key);
    console.error(`zkrpc traces: ${message}`);
  };

  const handler = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const known = path === "/v1/traces" || path === "/v1/metrics" ||
      path === "/v1/logs";
    if (!known) return new Response("not found\n", { status: 404 });
    if (request.method !== "POST") {
      return new Response("POST only\n", { status: 405 });
    }
    const type = request.headers.get("content-type") ?? "";
    if (!type.toLowerCase().startsWith("application/json")) {
      await request.body?.cancel();
      note(
        "protobuf",
        `refused a ${
          type.includes("protobuf") ? "protobuf" : "non-JSON"
        } export to ${path}: set OTEL_EXPORTER_OTLP_PROTOCOL=http/json in the sending process`,
      );
      return new Response("send OTLP/HTTP with JSON bodies\n", {
        status: 415,
      });
    }
    const encoding = (request.headers.get("content-encoding") ?? "identity")
      .trim().toLowerCase();
    if (encoding !== "identity" && encoding !== "gzip") {
      await request.body?.cancel();
      note(
        "encoding",
        `refused an export to ${path} compressed with something else than gzip: set OTEL_EXPORTER_OTLP_COMPRESSION=gzip or none in the sending process`,
      );
      return new Response("send gzip or uncompressed bodies\n", {
        status: 415,
      });
    }
    const body = await readBody(request, encoding === "gzip");
    if (body === 413) {
      note(
        "size",
        `refused a request larger than ${TRACES_MAX_BODY} bytes to ${path}`,
      );
      return new Response("request too large\n", { status: 413 });
    }
    if (body === 400) {
      note("gzip", `skipped a request to ${path} whose gzip body is broken`);
      return new Response("broken gzip body\n", { status: 400 });
    }
    if (path !== "/v1/traces") return Response.json({});
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(body));
    } catch {
      note("json", "skipped a request to /v1/traces that is not valid JSON");
      return new Response("invalid JSON\n", { status: 400 });
    }
    const { spans, skipped } = parseOtlpTraces(parsed);
    settler.add(spans);
    if (skipped === 0) return Response.json({});
    note(
      "skipped",
      `skipped ${skipped} span(s) without a valid traceId, spanId, name or times (noted once)`,
    );
    return Response.json({
      partialSuccess: {
        rejectedSpans: String(skipped),
        errorMessage: "spans need traceId, spanId, name and times",
      },
    });
  };

  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      signal: stop.signal,
      onListen: ({ port }) => {
        const url = `http://127.0.0.1:${port}`;
        console.error(
          `zkrpc traces: receiving OTLP/HTTP JSON on ${url} (Ctrl-C to stop)\n` +
            `zkrpc traces: send with OTEL_DENO=true OTEL_EXPORTER_OTLP_PROTOCOL=http/json OTEL_EXPORTER_OTLP_ENDPOINT=${url}`,
        );
      },
    }, handler);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new CliError(
        ExitCode.Usage,
        `Cannot listen on 127.0.0.1:${port}: the port is in use`,
        "Pick another with --port (0 picks a free one) and use it in OTEL_EXPORTER_OTLP_ENDPOINT.",
      );
    }
    throw error;
  }
  const onSignal = () => stop.abort();
  // Ctrl-C and `kill` print the pending traces before stopping.
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  const timer = duration === undefined
    ? undefined
    : setLongTimeout(onSignal, duration); // a --duration of 30 days too
  try {
    await server.finished;
    settler.flushAll();
    return ExitCode.Ok;
  } finally {
    timer?.clear();
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
}
