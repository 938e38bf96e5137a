/**
 * `zkrpc traces`: a loopback OpenTelemetry receiver (OTLP over HTTP with JSON
 * bodies) that prints each trace it receives as a tree of spans, so a trace
 * can be seen without installing a collector.
 *
 * @module
 */

import { printable, printableJson } from "../_printable.ts";
import {
  CliError,
  ExitCode,
  parseCommandArgs,
  parseCount,
  parseDuration,
} from "./_shared.ts";

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
 * Largest request body accepted, in bytes, after gunzip (larger: 413).
 *
 * @example
 * ```ts
 * import { TRACES_MAX_BODY } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(TRACES_MAX_BODY, 16 * 1024 * 1024);
 * ```
 */
export const TRACES_MAX_BODY = 16 * 1024 * 1024;
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

/** OTLP span kinds, by their number in OTLP JSON. */
const KINDS = [
  "unspecified",
  "internal",
  "server",
  "client",
  "producer",
  "consumer",
];

/**
 * One span as received, checked.
 *
 * @example
 * ```ts
 * import type { ReceivedSpan } from "./traces.ts";
 *
 * const span: ReceivedSpan = {
 *   traceId: "0af7651916cd43dd8448eb211c80319c",
 *   spanId: "b7ad6b7169203331",
 *   name: "divide",
 *   kind: "server",
 *   start: 0n,
 *   end: 1_000_000n,
 *   attributes: [["rpc.method", "divide"]],
 *   events: [],
 * };
 * ```
 */
export interface ReceivedSpan {
  /** 32 hex digits. */
  traceId: string;
  /** 16 hex digits. */
  spanId: string;
  /** The parent's span id, absent for a root span. */
  parentSpanId?: string;
  /** The span's name. */
  name: string;
  /** `internal`, `server`, `client`, `producer`, `consumer` or `unspecified`. */
  kind: string;
  /** Start, in nanoseconds since the epoch. */
  start: bigint;
  /** End, in nanoseconds since the epoch. */
  end: bigint;
  /** The sending process's `service.name`, if it gave one. */
  service?: string;
  /** Attributes, sorted by key. */
  attributes: [string, unknown][];
  /** `error` with its message when the span's status is an error. */
  error?: string;
  /** Events: name, time and attributes. */
  events: { name: string; time: bigint; attributes: [string, unknown][] }[];
}

const HEX32 = /^[0-9a-fA-F]{32}$/;
const HEX16 = /^[0-9a-fA-F]{16}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nanos(value: unknown): bigint | undefined {
  if (typeof value === "string" && /^\d{1,20}$/.test(value)) {
    return BigInt(value);
  }
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) {
    return BigInt(value);
  }
  return undefined;
}

/** An OTLP `AnyValue` as a plain value (nested at most a few levels). */
function anyValue(value: unknown, depth = 0): unknown {
  if (!isRecord(value) || depth > 4) return undefined;
  if ("stringValue" in value) return String(value.stringValue);
  if ("boolValue" in value) return value.boolValue === true;
  if ("intValue" in value) {
    return typeof value.intValue === "number" ||
        typeof value.intValue === "string"
      ? String(value.intValue)
      : undefined;
  }
  if ("doubleValue" in value) return Number(value.doubleValue);
  if ("bytesValue" in value) return String(value.bytesValue);
  if (isRecord(value.arrayValue) && Array.isArray(value.arrayValue.values)) {
    return value.arrayValue.values.slice(0, 100).map((v) =>
      anyValue(v, depth + 1)
    );
  }
  if (isRecord(value.kvlistValue) && Array.isArray(value.kvlistValue.values)) {
    return Object.fromEntries(
      attributeList(value.kvlistValue.values, depth + 1),
    );
  }
  return undefined;
}

function attributeList(list: unknown, depth = 0): [string, unknown][] {
  if (!Array.isArray(list)) return [];
  const out: [string, unknown][] = [];
  for (const item of list.slice(0, 128)) {
    if (!isRecord(item) || typeof item.key !== "string") continue;
    out.push([item.key, anyValue(item.value, depth)]);
  }
  return out.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}

/**
 * The spans of one OTLP/HTTP JSON `ExportTraceServiceRequest`
 * (`resourceSpans` → `scopeSpans` → `spans`). A span without a valid trace
 * id, span id, name or times is skipped and counted.
 *
 * @param body The parsed request body.
 * @returns The checked spans and how many were skipped.
 *
 * @example Two spans, one of them malformed
 * ```ts
 * import { parseOtlpTraces } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * const span = {
 *   traceId: "0af7651916cd43dd8448eb211c80319c",
 *   spanId: "b7ad6b7169203331",
 *   name: "calculator/divide",
 *   kind: 3,
 *   startTimeUnixNano: "1000000",
 *   endTimeUnixNano: "3500000",
 *   attributes: [{ key: "rpc.method", value: { stringValue: "divide" } }],
 * };
 * const { spans, skipped } = parseOtlpTraces({
 *   resourceSpans: [{ scopeSpans: [{ spans: [span, { name: 1 }] }] }],
 * });
 * assert.equal(spans[0]?.kind, "client");
 * assert.deepEqual(spans[0]?.attributes, [["rpc.method", "divide"]]);
 * assert.equal(skipped, 1);
 * ```
 */
export function parseOtlpTraces(
  body: unknown,
): { spans: ReceivedSpan[]; skipped: number } {
  const spans: ReceivedSpan[] = [];
  let skipped = 0;
  const resources = isRecord(body) && Array.isArray(body.resourceSpans)
    ? body.resourceSpans
    : [];
  for (const resource of resources) {
    if (!isRecord(resource) || !Array.isArray(resource.scopeSpans)) continue;
    const resourceAttributes = isRecord(resource.resource)
      ? new Map(attributeList(resource.resource.attributes))
      : new Map<string, unknown>();
    const service = resourceAttributes.get("service.name");
    for (const scope of resource.scopeSpans) {
      if (!isRecord(scope) || !Array.isArray(scope.spans)) continue;
      for (const raw of scope.spans) {
        const span = checkSpan(raw, service);
        if (span === undefined) skipped++;
        else spans.push(span);
      }
    }
  }
  return { spans, skipped };
}

function checkSpan(raw: unknown, service: unknown): ReceivedSpan | undefined {
  if (!isRecord(raw)) return undefined;
  const { traceId, spanId, parentSpanId, name } = raw;
  const start = nanos(raw.startTimeUnixNano);
  const end = nanos(raw.endTimeUnixNano);
  if (
    typeof traceId !== "string" || !HEX32.test(traceId) ||
    typeof spanId !== "string" || !HEX16.test(spanId) ||
    typeof name !== "string" || start === undefined || end === undefined ||
    !(parentSpanId === undefined || parentSpanId === "" ||
      (typeof parentSpanId === "string" && HEX16.test(parentSpanId)))
  ) {
    return undefined;
  }
  const span: ReceivedSpan = {
    traceId: traceId.toLowerCase(),
    spanId: spanId.toLowerCase(),
    name,
    kind: KINDS[typeof raw.kind === "number" ? raw.kind : 0] ?? "unspecified",
    start,
    end: end < start ? start : end,
    attributes: attributeList(raw.attributes),
    events: (Array.isArray(raw.events) ? raw.events.slice(0, 32) : [])
      .filter(isRecord).map((event) => ({
        name: String(event.name ?? ""),
        time: nanos(event.timeUnixNano) ?? start,
        attributes: attributeList(event.attributes),
      })),
  };
  if (typeof parentSpanId === "string" && parentSpanId !== "") {
    span.parentSpanId = parentSpanId.toLowerCase();
  }
  if (service !== undefined) span.service = String(service);
  const status = raw.status;
  if (isRecord(status) && status.code === 2) {
    span.error = typeof status.message === "string" ? status.message : "";
  }
  return span;
}

/**
 * A duration in nanoseconds, with three significant digits: `42.1 µs`,
 * `3.50 ms`, `1.20 s`.
 *
 * @param ns Nanoseconds.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { formatNanos } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatNanos(3_500_000n), "3.50 ms");
 * assert.equal(formatNanos(42_100n), "42.1 µs");
 * ```
 */
export function formatNanos(ns: bigint): string {
  const n = Number(ns);
  const [value, unit] = n < 1e6
    ? [n / 1e3, "µs"]
    : n < 1e9
    ? [n / 1e6, "ms"]
    : [n / 1e9, "s"];
  return `${value.toPrecision(3).replace(/\.?0+e.*$/, "")} ${unit}`;
}

function attributeText(attributes: [string, unknown][]): string {
  return attributes.map(([key, value]) =>
    `${printable(key)}=${
      printable(typeof value === "string" ? value : JSON.stringify(value))
    }`
  ).join(" ");
}

/** Most levels of a printed tree. */
const TREE_DEPTH = 32;

interface Node {
  span: ReceivedSpan;
  children: Node[];
  /**
   * Why a span with a parent id is a root: its parent is absent, a cycle, or
   * the tree is deeper than {@linkcode TREE_DEPTH}.
   */
  orphan?: "missing" | "cycle" | "deep";
}

/** The spans of one trace as trees: roots are spans whose parent is absent. */
function treesOf(spans: ReceivedSpan[]): Node[] {
  const nodes = new Map<string, Node>();
  for (const span of spans) nodes.set(span.spanId, { span, children: [] });
  const roots: Node[] = [];
  for (const node of nodes.values()) {
    const parent = node.span.parentSpanId === undefined
      ? undefined
      : nodes.get(node.span.parentSpanId);
    if (parent === undefined) {
      if (node.span.parentSpanId !== undefined) node.orphan = "missing";
      roots.push(node);
    } else {
      parent.children.push(node);
    }
  }
  const byStart = (a: Node, b: Node) =>
    a.span.start < b.span.start ? -1 : a.span.start > b.span.start ? 1 : 0;
  // A cycle of parents (a hostile sender) has no root: it is cut above one
  // of its spans, which becomes a root with its children.
  const reachable = new Set<Node>();
  const mark = (from: Node) => { // iterative: a chain may be long
    const stack = [from];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (reachable.has(node)) continue;
      reachable.add(node);
      stack.push(...node.children);
    }
  };
  roots.forEach(mark);
  for (const node of nodes.values()) {
    if (reachable.has(node)) continue;
    const parent = nodes.get(node.span.parentSpanId!)!;
    parent.children = parent.children.filter((child) => child !== node);
    node.orphan = "cycle";
    roots.push(node);
    mark(node);
  }
  // Deeper than TREE_DEPTH levels, a subtree starts again at the left, as a
  // root marked so (the indentation stays readable and bounded).
  const queue: [Node, number][] = roots.map((root) => [root, 0]);
  for (let i = 0; i < queue.length; i++) {
    const [node, depth] = queue[i]!;
    if (depth + 1 < TREE_DEPTH) {
      for (const child of node.children) queue.push([child, depth + 1]);
      continue;
    }
    for (const child of node.children) {
      child.orphan = "deep";
      roots.push(child);
      queue.push([child, 0]);
    }
    node.children = [];
  }
  const sort = (list: Node[], seen = new Set<Node>()) => {
    list.sort(byStart);
    for (const node of list) {
      if (seen.has(node)) continue;
      seen.add(node);
      sort(node.children, seen);
    }
  };
  sort(roots);
  return roots;
}

/**
 * One trace as text: a header line, then one line per span (name, kind,
 * duration, start after the trace's first span, `service.name`, error
 * status), its attributes on the line below, each child indented under its
 * parent. A span whose parent was not received is a root, marked so. Every
 * received string is escaped for the terminal.
 *
 * @param spans The spans of one trace.
 * @param added How many spans are new when the trace was printed before
 * (spans of it came later, e.g. from another process); 0 the first time.
 * @returns The lines.
 *
 * @example A client span and the server span it caused
 * ```ts
 * import { renderTrace, type ReceivedSpan } from "./traces.ts";
 * import assert from "node:assert/strict";
 *
 * const base = { traceId: "0af7651916cd43dd8448eb211c80319c", events: [] };
 * const spans: ReceivedSpan[] = [
 *   { ...base, spanId: "00000000000000a1", name: "divide", kind: "client",
 *     start: 0n, end: 2_000_000n, attributes: [["rpc.method", "divide"]] },
 *   { ...base, spanId: "00000000000000b2", parentSpanId: "00000000000000a1",
 *     name: "divide", kind: "server", start: 500_000n, end: 1_000_000n,
 *     attributes: [] },
 * ];
 * assert.deepEqual(renderTrace(spans), [
 *   "trace 0af7651916cd43dd8448eb211c80319c: 2 spans, 2.00 ms",
 *   "divide [client] 2.00 ms",
 *   "│   rpc.method=divide",
 *   "└── divide [server] 500 µs +500 µs",
 * ]);
 * ```
 */
export function renderTrace(
  spans: ReceivedSpan[],
  added = 0,
): string[] {
  if (spans.length === 0) return [];
  let first = spans[0]!.start, last = spans[0]!.end;
  for (const span of spans) {
    if (span.start < first) first = span.start;
    if (span.end > last) last = span.end;
  }
  const lines = [
    `trace ${spans[0]!.traceId}${
      added > 0 ? ` (updated: ${added} more)` : ""
    }: ${spans.length} span${spans.length === 1 ? "" : "s"}, ${
      formatNanos(last - first)
    }`,
  ];
  const printed = new Set<Node>();
  const walk = (
    node: Node,
    prefix: string,
    connector: string,
    childPrefix: string,
  ) => {
    if (printed.has(node)) return;
    printed.add(node);
    const { span } = node;
    const parts = [
      `${prefix}${connector}${printable(span.name)} [${span.kind}] ${
        formatNanos(span.end - span.start)
      }`,
    ];
    if (span.start > first) parts.push(`+${formatNanos(span.start - first)}`);
    if (span.service !== undefined) parts.push(`(${printable(span.service)})`);
    if (span.error !== undefined) {
      parts.push(
        `ERROR${span.error === "" ? "" : `: ${printable(span.error)}`}`,
      );
    }
    if (node.orphan === "missing") {
      parts.push(`(parent ${span.parentSpanId} not received)`);
    } else if (node.orphan === "cycle") {
      parts.push(`(parent ${span.parentSpanId}: a cycle, cut here)`);
    } else if (node.orphan === "deep") {
      parts.push(`(parent ${span.parentSpanId}: ${TREE_DEPTH} levels deep)`);
    }
    lines.push(parts.join(" "));
    const below = childPrefix + (node.children.length > 0 ? "│   " : "    ");
    if (span.attributes.length > 0) {
      lines.push(`${below}${attributeText(span.attributes)}`.trimEnd());
    }
    for (const event of span.events) {
      lines.push(
        `${below}event ${printable(event.name)} +${
          formatNanos(event.time > first ? event.time - first : 0n)
        } ${attributeText(event.attributes)}`.trimEnd(),
      );
    }
    node.children.forEach((child, i) => {
      const lastChild = i === node.children.length - 1;
      walk(
        child,
        childPrefix,
        lastChild ? "└── " : "├── ",
        childPrefix + (lastChild ? "    " : "│   "),
      );
    });
  };
  for (const root of treesOf(spans)) walk(root, "", "", "");
  return lines;
}

/** One trace as a JSON-ready tree (for `--json`). */
function traceJson(spans: ReceivedSpan[], added: number): unknown {
  const node = (n: Node, seen: Set<Node>): unknown => {
    seen.add(n);
    const { span } = n;
    return {
      name: span.name,
      kind: span.kind,
      spanId: span.spanId,
      ...(span.parentSpanId === undefined
        ? {}
        : { parentSpanId: span.parentSpanId }),
      ...(span.service === undefined ? {} : { service: span.service }),
      startTimeUnixNano: String(span.start),
      durationMs: Number(span.end - span.start) / 1e6,
      attributes: Object.fromEntries(span.attributes),
      ...(span.error === undefined ? {} : { error: span.error }),
      events: span.events.map((e) => ({
        name: e.name,
        timeUnixNano: String(e.time),
        attributes: Object.fromEntries(e.attributes),
      })),
      children: n.children.filter((c) => !seen.has(c)).map((c) =>
        node(c, seen)
      ),
    };
  };
  const seen = new Set<Node>();
  return {
    traceId: spans[0]?.traceId,
    ...(added > 0 ? { updated: added } : {}),
    spans: treesOf(spans).map((root) => node(root, seen)),
  };
}

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
 * Reads a request body (gunzipped when it is gzip) up to
 * {@linkcode TRACES_MAX_BODY} bytes: `413` when larger, `400` when the gzip
 * stream is broken.
 */
async function readBody(
  request: Request,
  gzip: boolean,
): Promise<Uint8Array | 400 | 413> {
  if (request.body === null) return new Uint8Array();
  const stream = gzip
    ? request.body.pipeThrough(new DecompressionStream("gzip"))
    : request.body;
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += chunk.length;
      if (size > TRACES_MAX_BODY) return 413;
      chunks.push(chunk);
    }
  } catch {
    return 400;
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
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
    count: { type: "string" },
    duration: { type: "string" },
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
  const count = values.count === undefined
    ? Infinity
    : parseCount("count", values.count as string);
  const duration = values.duration === undefined
    ? undefined
    : parseDuration("duration", values.duration as string);
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
    : setTimeout(onSignal, duration);
  try {
    await server.finished;
    settler.flushAll();
    return ExitCode.Ok;
  } finally {
    clearTimeout(timer);
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
}
