/**
 * The demo's timeline (`deno task demo --chart FILE`): calls/s, latency
 * percentiles and errors in half-second steps, with the kill, the join and
 * the restart marked, drawn as an SVG with the bench's chart code.
 *
 * @module
 */
import {
  type ChartMarker,
  type ChartSeries,
  escapeXml,
  legend,
  panel,
  svgDocument,
} from "../../bench/chart_svg.ts";
import { percentile } from "./stats.ts";

/**
 * The events the script marks on the timeline.
 *
 * @example
 * ```ts
 * import type { TimelineEvent } from "./chart.ts";
 *
 * const events: TimelineEvent[] = ["kill", "join", "restart"];
 * ```
 */
export type TimelineEvent = "kill" | "join" | "restart";

/** Colour of each event's marker. */
const EVENT_COLORS: Record<TimelineEvent, string> = {
  kill: "#d62728",
  join: "#2ca02c",
  restart: "#9467bd",
};

/** One step of the timeline. */
interface Step {
  latencies: number[];
  failed: number;
  failedAttempts: number;
}

/**
 * What happened during the load, in steps of `step` ms from its start (a
 * `performance.now()` value, given to the constructor or to
 * {@linkcode Timeline.start}): answered calls and their latency, failed
 * calls, failed attempts (retried or not), and the script's events. What
 * happens before the start is not recorded.
 *
 * @example Two steps and a kill
 * ```ts
 * import { renderTimeline, Timeline } from "./chart.ts";
 * import assert from "node:assert/strict";
 *
 * const timeline = new Timeline(0, 500);
 * timeline.ok(100, 2);
 * timeline.ok(700, 3);
 * timeline.attemptFailed(650);
 * timeline.mark(600, "kill", "kill -9 server-1");
 * const svg = renderTimeline(timeline, { title: "demo" });
 * assert.match(svg, /data-event="kill"/);
 * assert.match(svg, /kill -9 server-1/);
 * ```
 */
export class Timeline {
  #origin: number;
  readonly #step: number;
  #steps: Step[] = [];
  #events: { at: number; event: TimelineEvent; label: string }[] = [];
  #end = 0;

  /**
   * @param origin Time 0 of the chart (`performance.now()`); not started
   * when absent.
   * @param step Length of one step, in ms.
   */
  constructor(origin = NaN, step = 500) {
    this.#origin = origin;
    this.#step = step;
  }

  /**
   * Starts the timeline.
   *
   * @param origin Time 0 of the chart (`performance.now()`).
   */
  start(origin: number): void {
    this.#origin = origin;
  }

  #at(at: number): Step {
    if (!(at >= this.#origin)) {
      return { latencies: [], failed: 0, failedAttempts: 0 };
    }
    const index = Math.max(0, Math.floor((at - this.#origin) / this.#step));
    this.#end = Math.max(this.#end, at - this.#origin);
    while (this.#steps.length <= index) {
      this.#steps.push({ latencies: [], failed: 0, failedAttempts: 0 });
    }
    return this.#steps[index]!;
  }

  /**
   * An answered call.
   *
   * @param at When it finished.
   * @param latency How long it took, in ms.
   */
  ok(at: number, latency: number): void {
    this.#at(at).latencies.push(latency);
  }

  /**
   * A failed call.
   *
   * @param at When it failed.
   */
  failed(at: number): void {
    this.#at(at).failed++;
  }

  /**
   * A failed attempt (the channel may have retried it).
   *
   * @param at When it failed.
   */
  attemptFailed(at: number): void {
    this.#at(at).failedAttempts++;
  }

  /**
   * Marks an event.
   *
   * @param at When it happened.
   * @param event Which of the script's events.
   * @param label Its label on the chart.
   */
  mark(at: number, event: TimelineEvent, label: string): void {
    if (!(at >= this.#origin)) return;
    this.#end = Math.max(this.#end, at - this.#origin);
    this.#events.push({ at, event, label });
  }

  /** Extends the timeline to `at` (the end of the load). */
  end(at: number): void {
    this.#at(at);
  }

  /**
   * The series and markers, x in seconds (the middle of each step).
   *
   * @returns Calls/s, p50 and p99 latency (ms), failed calls/s and failed
   * attempts/s, and the markers.
   */
  series(): {
    rate: [number, number][];
    p50: [number, number][];
    p99: [number, number][];
    failed: [number, number][];
    failedAttempts: [number, number][];
    markers: ChartMarker[];
    seconds: number;
  } {
    const perSecond = 1000 / this.#step;
    const x = (i: number) => ((i + 0.5) * this.#step) / 1000;
    const out = {
      rate: [] as [number, number][],
      p50: [] as [number, number][],
      p99: [] as [number, number][],
      failed: [] as [number, number][],
      failedAttempts: [] as [number, number][],
    };
    this.#steps.forEach((step, i) => {
      out.rate.push([x(i), step.latencies.length * perSecond]);
      out.failed.push([x(i), step.failed * perSecond]);
      out.failedAttempts.push([x(i), step.failedAttempts * perSecond]);
      if (step.latencies.length > 0) {
        const sorted = step.latencies.toSorted((a, b) => a - b);
        out.p50.push([x(i), round(percentile(sorted, 50))]);
        out.p99.push([x(i), round(percentile(sorted, 99))]);
      }
    });
    return {
      ...out,
      markers: this.#events.map(({ at, event, label }) => ({
        x: round((at - this.#origin) / 1000),
        label,
        event,
        color: EVENT_COLORS[event],
      })),
      seconds: this.#end / 1000,
    };
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/**
 * The timeline as a standalone SVG: three panels over the same seconds
 * (calls/s; p50 and p99 latency; failed calls and failed attempts per
 * second), each event a dashed line across all three, labelled on the first
 * (`<g class="event" data-event="kill">`).
 *
 * @param timeline What happened.
 * @param options The chart's title.
 * @returns The SVG document.
 *
 * @example An empty timeline still draws its axes
 * ```ts
 * import { renderTimeline, Timeline } from "./chart.ts";
 * import assert from "node:assert/strict";
 *
 * const svg = renderTimeline(new Timeline(0), { title: "nothing yet" });
 * assert.ok(svg.startsWith("<svg"));
 * assert.match(svg, /nothing yet/);
 * ```
 */
export function renderTimeline(
  timeline: Timeline,
  options: { title: string },
): string {
  const width = 880;
  const height = 220;
  const top = 30;
  const s = timeline.series();
  const dot = { unit: " s", dot: 2 };
  const xLabel = "seconds since the load started";
  const common = {
    x0: 0,
    width,
    height,
    xLabel,
    xScale: "linear" as const,
    xMax: s.seconds,
  };
  const rate: ChartSeries[] = [
    { name: "answered calls/s", color: "#1f77b4", points: s.rate, ...dot },
  ];
  const latency: ChartSeries[] = [
    { name: "p50 latency (ms)", color: "#17becf", points: s.p50, ...dot },
    { name: "p99 latency (ms)", color: "#ff7f0e", points: s.p99, ...dot },
  ];
  const errors: ChartSeries[] = [
    {
      name: "failed attempts/s (retried)",
      color: "#8c564b",
      points: s.failedAttempts,
      ...dot,
    },
    { name: "failed calls/s", color: "#d62728", points: s.failed, ...dot },
  ];
  const total = top + 3 * height + 30;
  return svgDocument(width, total, [
    `<text x="${
      width / 2
    }" y="20" text-anchor="middle" font-size="14" font-weight="bold">${
      escapeXml(options.title)
    }</text>`,
    panel(rate, {
      ...common,
      y0: top,
      title: "calls/s",
      markers: s.markers,
    }),
    panel(latency, {
      ...common,
      y0: top + height,
      title: "latency (ms): p50, p99",
      markers: s.markers,
      markerLabels: false,
    }),
    panel(errors, {
      ...common,
      y0: top + 2 * height,
      title: "errors per second",
      markers: s.markers,
      markerLabels: false,
    }),
    ...legend([...rate, ...latency, ...errors], 20, total - 12, 175),
  ]);
}
