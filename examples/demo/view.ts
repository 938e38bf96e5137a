/**
 * The demo's output: a live view redrawn with ANSI escapes on a terminal,
 * plain log lines otherwise.
 *
 * @module
 */

/** One endpoint row of the live view. */
export interface EndpointRow {
  /** `host:port`. */
  key: string;
  /** The demo's name for the server behind it. */
  name: string;
  /** The channel's view of it. */
  state: string;
  /** Calls in flight. */
  inFlight: number;
  /** Calls it answered. */
  calls: number;
}

/** What the view shows at one moment. */
export interface Frame {
  /** Seconds since the load started. */
  t: number;
  /** Planned seconds of load. */
  duration: number;
  /** Target calls per second. */
  targetRate: number;
  /** Calls per second over the last second. */
  rate: number;
  /** Calls answered so far. */
  ok: number;
  /** Calls failed so far. */
  failed: number;
  /** Latency over the last second, ms. */
  p50: number;
  /** Latency over the last second, ms. */
  p99: number;
  /** Longest gap between successful calls so far, ms. */
  longestGap: number;
  /** The channel's discovery state. */
  discovery: string;
  /** The endpoints the channel knows. */
  endpoints: EndpointRow[];
}

const ms = (value: number): string =>
  Number.isNaN(value) ? "-" : `${value.toFixed(value < 10 ? 2 : 0)} ms`;

/** Writes the demo's progress to stdout (or stderr with `--json`). */
export class View {
  #live: boolean;
  #write: (text: string) => void;
  #title: string;
  #events: string[] = [];
  #drawn = 0;
  #lastLog = -Infinity;
  /** Event times count from here, once for the whole run (never reset). */
  #start = performance.now();

  /**
   * @param options `live`: redraw on a terminal; `toStderr`: keep stdout for
   * the JSON summary; `title`: the first line of the live view.
   */
  constructor(options: { live: boolean; toStderr: boolean; title: string }) {
    this.#live = options.live;
    this.#title = options.title;
    const encoder = new TextEncoder();
    const stream = options.toStderr ? Deno.stderr : Deno.stdout;
    this.#write = (text) => void stream.writeSync(encoder.encode(text));
    if (this.#live) this.#write("\x1b[?25l"); // hide the cursor
  }

  /**
   * Reports an event (a kill, a join…): a log line, or a line in the live
   * view's event list.
   *
   * @param text What happened.
   */
  event(text: string): void {
    const t = (performance.now() - this.#start) / 1000;
    const line = `[${t.toFixed(1).padStart(5)}s] ${text}`;
    if (this.#live) {
      this.#events.push(line);
      if (this.#events.length > 12) this.#events.shift();
    } else {
      this.#write(`${line}\n`);
    }
  }

  /**
   * Shows a frame: redraws the live view, or logs a status line every 2 s.
   *
   * @param frame The figures.
   * @param force Log even if the last status line is recent.
   */
  frame(frame: Frame, force = false): void {
    if (!this.#live) {
      if (!force && frame.t - this.#lastLog < 2) return;
      this.#lastLog = frame.t;
      const servers = frame.endpoints.map((e) =>
        `${e.name} ${e.state} ${e.calls}`
      ).join(", ");
      this.event(
        `${frame.ok} calls ok, ${frame.failed} failed, ${frame.rate}/s, p50 ${
          ms(frame.p50)
        }, p99 ${ms(frame.p99)} | ${servers}`,
      );
      return;
    }
    const lines = [
      this.#title,
      `t ${
        frame.t.toFixed(1)
      } s of ${frame.duration} s   target ${frame.targetRate}/s   discovery ${frame.discovery}`,
      "",
      `calls/s ${String(frame.rate).padEnd(6)} ok ${
        String(frame.ok).padEnd(7)
      } errors ${String(frame.failed).padEnd(4)} p50 ${
        ms(frame.p50).padEnd(9)
      } p99 ${ms(frame.p99).padEnd(9)} longest gap ${ms(frame.longestGap)}`,
      "",
      `${"SERVER".padEnd(12)}${"ENDPOINT".padEnd(18)}${"STATE".padEnd(11)}${
        "IN-FLIGHT".padEnd(11)
      }CALLS`,
      ...frame.endpoints.map((e) =>
        `${e.name.padEnd(12)}${e.key.padEnd(18)}${e.state.padEnd(11)}${
          String(e.inFlight).padEnd(11)
        }${e.calls}`
      ),
      "",
      "events:",
      ...this.#events.map((e) => `  ${e}`),
    ];
    // Lines longer than the terminal would wrap and break the redraw.
    let columns = 100;
    try {
      columns = Deno.consoleSize().columns;
    } catch {
      // Not a console after all.
    }
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A\x1b[0J` : "";
    text +=
      lines.map((line) =>
        `${
          line.length >= columns ? `${line.slice(0, columns - 2)}…` : line
        }\x1b[K`
      ).join("\n") + "\n";
    this.#write(text);
    this.#drawn = lines.length;
  }

  /**
   * Prints a line below the live view (or as is), e.g. the summary.
   *
   * @param text The line.
   */
  print(text: string): void {
    this.#write(`${text}\n`);
  }

  /** Shows the cursor again. Idempotent. */
  close(): void {
    if (this.#live) this.#write("\x1b[?25h");
    this.#live = false;
  }
}
