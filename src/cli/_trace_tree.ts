/**
 * The rendering side of `zkrpc traces`: one trace as an indented tree of
 * spans, or as a JSON-ready tree for `--json`.
 *
 * @module
 */

import { printable } from "../_printable.ts";
import type { ReceivedSpan } from "./_otlp.ts";

/**
 * A duration in nanoseconds, with three significant digits: 42.1 microseconds,
 * `3.50 ms`, `1.20 s`.
 *
 * @param ns Nanoseconds.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { formatNanos } from "./_trace_tree.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatNanos(3_500_000n), "3.50 ms");
 * assert.equal(formatNanos(42_100n), "42.1 \u00b5s");
 * ```
 */
export function formatNanos(ns: bigint): string {
  const n = Number(ns);
  const [value, unit] = n < 1e6
    ? [n / 1e3, "\u00b5s"]
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
 * import { renderTrace } from "./_trace_tree.ts";
 * import type { ReceivedSpan } from "./_otlp.ts";
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
 *   "\u2502   rpc.method=divide",
 *   "\u2514\u2500\u2500 divide [server] 500 \u00b5s +500 \u00b5s",
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
    const below = childPrefix +
      (node.children.length > 0 ? "\u2502   " : "    ");
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
        lastChild ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ",
        childPrefix + (lastChild ? "    " : "\u2502   "),
      );
    });
  };
  for (const root of treesOf(spans)) walk(root, "", "", "");
  return lines;
}

/** One trace as a JSON-ready tree (for `--json`). */
export function traceJson(spans: ReceivedSpan[], added: number): unknown {
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
