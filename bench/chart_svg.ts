/**
 * Small hand-written SVG charts, shared by the bench and the demo: the
 * panel (axes, grid, lines, markers), the legend and the document; and the
 * bench's chart: calls/s and p99 latency vs calls in flight, one line per
 * target (ceiling, zkrpc core, zkrpc channel). The demo's timeline is in
 * `examples/demo/chart.ts`.
 *
 * @module
 */
import type { ResultRow } from "./report.ts";

/** One line of the chart. */
export interface ChartSeries {
  /** Legend text. */
  name: string;
  /** Stroke colour. */
  color: string;
  /** `[x, value]` points: x is calls in flight in the bench chart. */
  points: [number, number][];
  /** What follows x in a point's tooltip. @default {" in flight"} */
  unit?: string;
  /** Radius of the dots. @default {3} */
  dot?: number;
}

const SERIES: {
  name: string;
  color: string;
  scenario: string;
  prefix: string;
}[] = [
  {
    name: "raw TCP echo (ceiling)",
    color: "#888888",
    scenario: "throughput",
    prefix: "ceiling",
  },
  {
    name: "zkrpc core",
    color: "#1f77b4",
    scenario: "throughput",
    prefix: "zkrpc core",
  },
  {
    name: "zkrpc channel",
    color: "#d62728",
    scenario: "full stack",
    prefix: "channel",
  },
];

/**
 * Extracts one series per target for a figure.
 *
 * @param rows All rows of the run.
 * @param figure Figure name, e.g. "calls_per_s".
 * @returns Series with at least one point.
 */
export function seriesFor(rows: ResultRow[], figure: string): ChartSeries[] {
  const out: ChartSeries[] = [];
  for (const s of SERIES) {
    const points: [number, number][] = [];
    for (const row of rows) {
      if (row.scenario !== s.scenario) continue;
      const match = row.label.match(/^(.*) (\d+) in flight$/);
      if (match === null || match[1] !== s.prefix) continue;
      const value = row.figures[figure];
      if (value != null && Number.isFinite(value)) {
        points.push([Number(match[2]), value]);
      }
    }
    points.sort((a, b) => a[0] - b[0]);
    if (points.length > 0) out.push({ name: s.name, color: s.color, points });
  }
  return out;
}

/**
 * Text safe inside an SVG element or a double-quoted attribute.
 *
 * @param text Any text.
 * @returns The text with `&`, `<`, `>` and `"` escaped.
 *
 * @example
 * ```ts
 * import { escapeXml } from "./chart_svg.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeXml('a < b & "c"'), "a &lt; b &amp; &quot;c&quot;");
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(
    />/g,
    "&gt;",
  ).replace(/"/g, "&quot;");
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

function label(value: number): string {
  if (value >= 1000) return `${Math.round(value / 100) / 10}k`;
  return String(Math.round(value * 100) / 100);
}

/**
 * A vertical line across a panel at an x value, labelled at its top.
 *
 * @example
 * ```ts
 * import type { ChartMarker } from "./chart_svg.ts";
 *
 * const kill: ChartMarker = { x: 4.2, label: "kill", event: "kill", color: "red" };
 * ```
 */
export interface ChartMarker {
  /** Where, in x units. */
  x: number;
  /** The label. */
  label: string;
  /** What it marks, written as `data-event` (e.g. `kill`). */
  event: string;
  /** Stroke colour. */
  color: string;
}

/**
 * Where and how {@linkcode panel} draws.
 *
 * @example A panel over seconds, 880 wide
 * ```ts
 * import type { PanelOptions } from "./chart_svg.ts";
 *
 * const options: PanelOptions = {
 *   title: "calls/s",
 *   x0: 0,
 *   width: 880,
 *   height: 220,
 *   xLabel: "seconds",
 *   xScale: "linear",
 * };
 * ```
 */
export interface PanelOptions {
  /** Title above the panel. */
  title: string;
  /** Left edge of the panel. */
  x0: number;
  /** Top edge of the panel. @default {0} */
  y0?: number;
  /** Width of the panel. */
  width: number;
  /** Height of the panel. */
  height: number;
  /** Label of the x axis. */
  xLabel: string;
  /**
   * `log2`: x ticks at the data points (calls in flight); `linear`: x from 0
   * to the largest x (or `xMax`), ticks at round steps.
   * @default {"log2"}
   */
  xScale?: "log2" | "linear";
  /** Right end of a linear x axis. @default {the largest x} */
  xMax?: number;
  /** Markers drawn across the panel (linear scale). @default {[]} */
  markers?: ChartMarker[];
  /** Whether marker labels are written above the plot. @default {true} */
  markerLabels?: boolean;
}

/**
 * One chart panel: title, y grid with labels from 0 to a round maximum, x
 * ticks, axes, one polyline with a dot (and a tooltip) per point for each
 * series, and vertical markers.
 *
 * @param series The lines.
 * @param options Geometry, scale and markers.
 * @returns SVG elements.
 *
 * @example One line and a marker over ten seconds
 * ```ts
 * import { panel } from "./chart_svg.ts";
 * import assert from "node:assert/strict";
 *
 * const svg = panel(
 *   [{ name: "calls/s", color: "blue", points: [[1, 50], [9, 48]] }],
 *   {
 *     title: "calls/s",
 *     x0: 0,
 *     width: 400,
 *     height: 200,
 *     xLabel: "s",
 *     xScale: "linear",
 *     markers: [{ x: 5, label: "kill", event: "kill", color: "red" }],
 *   },
 * );
 * assert.match(svg, /<polyline/);
 * assert.match(svg, /data-event="kill"/);
 * ```
 */
export function panel(series: ChartSeries[], options: PanelOptions): string {
  const { title, x0, width, height, xLabel } = options;
  const y0 = options.y0 ?? 0;
  const linear = options.xScale === "linear";
  const left = x0 + 56;
  const right = x0 + width - 12;
  const top = y0 + 40;
  const bottom = y0 + height - 40;
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))]
    .sort((a, b) => a - b);
  const logMin = Math.log2(Math.max(1, xs[0] ?? 1));
  const logMax = Math.log2(Math.max(2, xs[xs.length - 1] ?? 64));
  const linearMax = niceMax(options.xMax ?? Math.max(0, ...xs));
  const xPos = linear
    ? (x: number) => left + (x / linearMax) * (right - left)
    : (x: number) =>
      left +
      ((Math.log2(Math.max(1, x)) - logMin) /
          Math.max(1e-9, logMax - logMin)) *
        (right - left);
  const yMax = niceMax(
    Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1]))),
  );
  const yPos = (y: number) => bottom - (y / yMax) * (bottom - top);
  const parts: string[] = [];
  parts.push(
    `<text x="${(left + right) / 2}" y="${
      y0 + 22
    }" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    parts.push(
      `<line x1="${left}" x2="${right}" y1="${yPos(y)}" y2="${
        yPos(y)
      }" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${yPos(y) + 4}" text-anchor="end">${
        label(y)
      }</text>`,
    );
  }
  const ticks = linear
    ? Array.from({ length: 11 }, (_, i) => (linearMax * i) / 10)
    : xs;
  for (const x of ticks) {
    parts.push(
      `<text x="${xPos(x)}" y="${
        bottom + 18
      }" text-anchor="middle">${x}</text>`,
    );
  }
  parts.push(
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`,
    `<text x="${(left + right) / 2}" y="${
      y0 + height - 6
    }" text-anchor="middle">${escapeXml(xLabel)}</text>`,
  );
  for (const marker of options.markers ?? []) {
    const x = xPos(marker.x).toFixed(1);
    parts.push(
      `<g class="event" data-event="${escapeXml(marker.event)}">` +
        `<line x1="${x}" x2="${x}" y1="${top}" y2="${bottom}" stroke="${marker.color}" stroke-dasharray="4 3"/>` +
        (options.markerLabels === false
          ? ""
          : `<text x="${x}" y="${
            top - 4
          }" text-anchor="middle" fill="${marker.color}">${
            escapeXml(marker.label)
          }</text>`) +
        `</g>`,
    );
  }
  for (const s of series) {
    const path = s.points.map((p) =>
      `${xPos(p[0]).toFixed(1)},${yPos(p[1]).toFixed(1)}`
    );
    parts.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${
        path.join(" ")
      }"/>`,
    );
    for (const p of s.points) {
      parts.push(
        `<circle cx="${xPos(p[0]).toFixed(1)}" cy="${
          yPos(p[1]).toFixed(1)
        }" r="${s.dot ?? 3}" fill="${s.color}"><title>${
          escapeXml(`${s.name}: ${p[1]} at ${p[0]}${s.unit ?? " in flight"}`)
        }</title></circle>`,
      );
    }
  }
  return parts.join("\n");
}

/**
 * A legend row: a colour swatch and the name of each series.
 *
 * @param series The lines.
 * @param x Left edge.
 * @param y Baseline.
 * @param step Distance between entries.
 * @returns SVG elements.
 *
 * @example
 * ```ts
 * import { legend } from "./chart_svg.ts";
 * import assert from "node:assert/strict";
 *
 * const [entry] = legend([{ name: "p99", color: "orange", points: [] }], 10, 20, 100);
 * assert.match(entry!, />p99</);
 * ```
 */
export function legend(
  series: ChartSeries[],
  x: number,
  y: number,
  step: number,
): string[] {
  return series.map((s, i) =>
    `<rect x="${x + i * step}" y="${
      y - 4
    }" width="14" height="4" fill="${s.color}"/>` +
    `<text x="${x + i * step + 20}" y="${y}">${escapeXml(s.name)}</text>`
  );
}

/**
 * A standalone SVG document around elements.
 *
 * @param width Width.
 * @param height Height.
 * @param body The elements.
 * @returns The document.
 *
 * @example
 * ```ts
 * import { svgDocument } from "./chart_svg.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(svgDocument(10, 10, []), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
 * ```
 */
export function svgDocument(
  width: number,
  height: number,
  body: string[],
): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...body,
    `</svg>`,
    "",
  ].join("\n");
}

/**
 * Renders the chart for a run.
 *
 * @param rows All rows of the run.
 * @returns A standalone SVG document.
 */
export function renderChart(rows: ResultRow[]): string {
  const width = 880;
  const height = 340;
  const throughput = seriesFor(rows, "calls_per_s");
  const p99 = seriesFor(rows, "p99_ms");
  const xLabel = "calls in flight (one connection)";
  return svgDocument(width, height + 30, [
    panel(throughput, {
      title: "calls/s",
      x0: 0,
      width: width / 2,
      height,
      xLabel,
    }),
    panel(p99, {
      title: "p99 latency (ms)",
      x0: width / 2,
      width: width / 2,
      height,
      xLabel,
    }),
    ...legend(throughput, 70, height + 18, 260),
  ]);
}
