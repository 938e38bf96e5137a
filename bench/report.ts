/**
 * Collects every figure of a bench run, prints the terminal table and
 * serializes the JSON report.
 *
 * @module
 */

/** One measured case: named figures plus their ratio to the ceiling. */
export interface ResultRow {
  /** Scenario id, e.g. "throughput". */
  scenario: string;
  /** Case label, e.g. "zkrpc 64 in flight". */
  label: string;
  /** Figures by name (unit in the name: `_ms`, `_us`, `_mib`, `per_s`). */
  figures: Record<string, number | null>;
  /** Ratio of each figure to the ceiling figure of the same run. */
  vsCeiling: Record<string, number | null>;
}

/** A scenario that did not run, and why. */
export interface SkippedScenario {
  /** Scenario id. */
  scenario: string;
  /** Why it was skipped. */
  reason: string;
}

/** The whole run, as written to `bench/results/<date>.json`. */
export interface BenchReport {
  /** ISO time of the run's start. */
  startedAt: string;
  /** "quick" or "full". */
  mode: string;
  /** The command that reproduces the run. */
  command: string;
  /** Machine description. */
  machine: Record<string, string | number>;
  /** All measured rows. */
  rows: ResultRow[];
  /** Scenarios that did not run. */
  skipped: SkippedScenario[];
  /** Target checks: name -> met / missed / not measured. */
  targets: TargetCheck[];
  /** Total wall time in seconds. */
  durationS: number;
}

/** One of the issue's targets, evaluated on this run. */
export interface TargetCheck {
  /** What is required. */
  target: string;
  /** The figure measured. */
  measured: number | null;
  /** The limit. */
  limit: number;
  /** "met", "missed" or "not measured". */
  status: "met" | "missed" | "not measured";
}

/** Accumulates rows and skipped scenarios. */
export class Report {
  #rows: ResultRow[] = [];
  #skipped: SkippedScenario[] = [];

  /** All rows so far. */
  get rows(): ResultRow[] {
    return this.#rows;
  }

  /** All skipped scenarios so far. */
  get skipped(): SkippedScenario[] {
    return this.#skipped;
  }

  /**
   * Adds a row and prints it.
   *
   * @param row The row.
   */
  add(row: ResultRow): void {
    this.#rows.push(row);
    console.log(formatRow(row));
  }

  /**
   * Records and prints a skipped scenario.
   *
   * @param scenario Scenario id.
   * @param reason Why.
   */
  skip(scenario: string, reason: string): void {
    this.#skipped.push({ scenario, reason });
    console.log(`${scenario}: skipped: ${reason}`);
  }

  /**
   * Finds a row.
   *
   * @param scenario Scenario id.
   * @param label Case label.
   * @returns The row or undefined.
   */
  find(scenario: string, label: string): ResultRow | undefined {
    return this.#rows.find((r) => r.scenario === scenario && r.label === label);
  }
}

function formatValue(value: number | null | undefined): string {
  if (value == null) return "-";
  if (Number.isInteger(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toString();
  return value.toPrecision(3);
}

/**
 * Formats one row for the terminal: `scenario  label  name=value (xratio)`.
 *
 * @param row The row.
 * @returns One line.
 */
export function formatRow(row: ResultRow): string {
  const parts = Object.entries(row.figures).map(([name, value]) => {
    const r = row.vsCeiling[name];
    return `${name}=${formatValue(value)}${r == null ? "" : ` (${r}x)`}`;
  });
  return `${row.scenario.padEnd(12)} ${row.label.padEnd(28)} ${
    parts.join("  ")
  }`;
}

/**
 * Renders the final table: one block per scenario, one column per figure.
 *
 * @param rows All rows.
 * @returns The table text.
 */
export function formatTable(rows: ResultRow[]): string {
  const lines: string[] = [];
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  for (const scenario of scenarios) {
    const group = rows.filter((r) => r.scenario === scenario);
    const names = [...new Set(group.flatMap((r) => Object.keys(r.figures)))];
    const header = ["case", ...names];
    const body = group.map((r) => [
      r.label,
      ...names.map((n) => {
        const ratio = r.vsCeiling[n];
        return formatValue(r.figures[n]) +
          (ratio == null ? "" : ` (${ratio}x)`);
      }),
    ]);
    const widths = header.map((h, i) =>
      Math.max(h.length, ...body.map((b) => (b[i] ?? "").length))
    );
    const fmt = (cells: string[]) =>
      "| " + cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ") + " |";
    lines.push(`\n### ${scenario}\n`);
    lines.push(fmt(header));
    lines.push("| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |");
    for (const b of body) lines.push(fmt(b));
  }
  return lines.join("\n");
}
