/**
 * The OTLP/HTTP JSON side of `zkrpc traces`: reading a request body (gzip
 * or not, bounded) and checking the spans of an export request.
 *
 * @module
 */

/**
 * Largest request body accepted, in bytes, after gunzip (larger: 413).
 *
 * @example
 * ```ts
 * import { TRACES_MAX_BODY } from "./_otlp.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(TRACES_MAX_BODY, 16 * 1024 * 1024);
 * ```
 */
export const TRACES_MAX_BODY = 16 * 1024 * 1024;

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
 * import type { ReceivedSpan } from "./_otlp.ts";
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
 * (`resourceSpans` -> `scopeSpans` -> `spans`). A span without a valid trace
 * id, span id, name or times is skipped and counted.
 *
 * @param body The parsed request body.
 * @returns The checked spans and how many were skipped.
 *
 * @example Two spans, one of them malformed
 * ```ts
 * import { parseOtlpTraces } from "./_otlp.ts";
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
 * Reads a request body (gunzipped when it is gzip) up to
 * {@linkcode TRACES_MAX_BODY} bytes: `413` when larger, `400` when the gzip
 * stream is broken.
 */
export async function readBody(
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
  // Body chunks are backed by plain ArrayBuffers, as BlobPart asks.
  return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
}
