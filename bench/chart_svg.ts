/**
 * A small hand-written SVG chart: calls/s and p99 latency vs calls in
 * flight, one line per target (ceiling, zkrpc core, zkrpc channel).
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
  /** `[in flight, value]` points. */
  points: [number, number][];
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

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(
    />/g,
    "&gt;",
  );
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

function panel(
  series: ChartSeries[],
  title: string,
  x0: number,
  width: number,
  height: number,
): string {
  const left = x0 + 56;
  const right = x0 + width - 12;
  const top = 40;
  const bottom = height - 40;
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))]
    .sort((a, b) => a - b);
  const logMin = Math.log2(Math.max(1, xs[0] ?? 1));
  const logMax = Math.log2(Math.max(2, xs[xs.length - 1] ?? 64));
  const xPos = (x: number) =>
    left +
    ((Math.log2(Math.max(1, x)) - logMin) / Math.max(1e-9, logMax - logMin)) *
      (right - left);
  const yMax = niceMax(
    Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1]))),
  );
  const yPos = (y: number) => bottom - (y / yMax) * (bottom - top);
  const parts: string[] = [];
  parts.push(
    `<text x="${
      (left + right) / 2
    }" y="22" text-anchor="middle" font-weight="bold">${escape(title)}</text>`,
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
  for (const x of xs) {
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
      height - 6
    }" text-anchor="middle">calls in flight (one connection)</text>`,
  );
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
        }" r="3" fill="${s.color}"><title>${
          escape(`${s.name}: ${p[1]} at ${p[0]} in flight`)
        }</title></circle>`,
      );
    }
  }
  return parts.join("\n");
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
  const total = height + 30;
  const legend = throughput.map((s, i) => {
    const x = 70 + i * 260;
    const y = height + 18;
    return `<rect x="${x}" y="${
      y - 4
    }" width="14" height="4" fill="${s.color}"/>` +
      `<text x="${x + 20}" y="${y}">${escape(s.name)}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${total}" ` +
    `viewBox="0 0 ${width} ${total}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(throughput, "calls/s", 0, width / 2, height),
    panel(p99, "p99 latency (ms)", width / 2, width / 2, height),
    ...legend,
    `</svg>`,
    "",
  ].join("\n");
}
