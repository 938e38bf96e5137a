/**
 * Every default the docs give is the one the code uses: the defaults are
 * defined once in code (`src/_defaults.ts`, `SERVER_DEFAULTS` and a few
 * named constants), and this test compares with them
 *
 * - each row of every table in README.md and `docs/*.md` that has a
 *   "default" column, and of the tables of fixed limits (every row must be
 *   listed in {@linkcode TABLE_ROWS}),
 * - each sentence giving a figure as a default ("`idleTimeout` (default
 *   120 s…") — every such phrase must be matched by an entry of
 *   {@linkcode PROSE},
 * - each numeric `@default` tag of an exported option (read from
 *   `deno doc --json` of every entry point; each must be listed in
 *   {@linkcode DEFAULT_TAGS}).
 *
 * So a doc table, a sentence or a tag that disagrees with the code fails,
 * and so does a new default nobody mapped. Last, every test that
 * docs/testing.md's "Documented promises → tests" table names must exist.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CHANNEL_DEFAULTS,
  CONNECTION_DEFAULTS,
  OUTLIER_DETECTION_DEFAULTS,
  REGISTRAR_DEFAULTS,
  RETRY_BUDGET_DEFAULTS,
  ZOOKEEPER_SESSION_DEFAULTS,
} from "../src/_defaults.ts";
import { SERVER_DEFAULTS } from "../src/server/_server_connection.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  MAX_PING_PAYLOAD,
} from "../src/protocol/frame.ts";
import {
  DEFAULT_MAX_BIGINT_DIGITS,
  MAX_NESTING,
} from "../src/protocol/_values.ts";
import { DEFAULT_CONNECT_TIMEOUT } from "../src/client/_connect.ts";
import { DEFAULT_STREAM_WINDOW } from "../src/protocol/stream_frames.ts";
import { DEFAULT_ZOOKEEPER_HOSTS } from "../src/zookeeper/config.ts";
import { denoDoc } from "./_deno_doc.ts";
import {
  TRACES_DEFAULT_PARENT_WAIT,
  TRACES_DEFAULT_PORT,
  TRACES_DEFAULT_SETTLE,
} from "../src/cli/traces.ts";

const ROOT = new URL("../", import.meta.url);

/** A documented value: a number, several numbers, a string or a boolean. */
type Expected = number | readonly number[] | string | boolean;

/** README.md and every page under docs/, by path relative to the root. */
async function docs(): Promise<Map<string, string>> {
  const pages = new Map<string, string>();
  pages.set("README.md", await Deno.readTextFile(new URL("README.md", ROOT)));
  for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
    if (!entry.isFile || !entry.name.endsWith(".md")) continue;
    const path = `docs/${entry.name}`;
    pages.set(path, await Deno.readTextFile(new URL(path, ROOT)));
  }
  return pages;
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  KiB: 1024,
  MiB: 1 << 20,
};

/**
 * The figures of a documented value, in ms and bytes: `"10 000 ms"` ->
 * `[10000]`, `"4 MiB (4194304)"` -> `[4194304]`, `"100 ms / 2 000 ms"` ->
 * `[100, 2000]`. What follows `(` or `=` only restates the figure.
 */
function figures(text: string): number[] {
  const head = text.split(/[(=]/)[0]!;
  const found: number[] = [];
  const pattern =
    /(\d+(?:[ \u00a0\u202f]\d{3})*(?:\.\d+)?)\s*(ms|s|KiB|MiB)?(?![\w^])/g;
  for (const match of head.matchAll(pattern)) {
    const value = Number(match[1]!.replace(/[ \u00a0\u202f]/g, ""));
    found.push(value * (UNITS[match[2] ?? "ms"] ?? 1));
  }
  return found;
}

function assertValue(where: string, text: string, expected: Expected): void {
  if (typeof expected === "string") {
    assert.ok(
      text.includes(expected),
      `${where}: "${text}" does not give ${expected}`,
    );
  } else if (typeof expected === "boolean") {
    assert.match(text, new RegExp(`\\b${expected}\\b`), `${where}: "${text}"`);
  } else {
    const want = typeof expected === "number" ? [expected] : [...expected];
    assert.deepEqual(
      figures(text),
      want,
      `${where}: "${text}" (the code says ${want.join(" / ")})`,
    );
  }
}

Deno.test("figures() reads the docs' ways of writing a default", () => {
  assert.deepEqual(figures("10 000 ms"), [10_000]);
  assert.deepEqual(figures("4 MiB (4194304)"), [4_194_304]);
  assert.deepEqual(figures("4 MiB = 4 194 304"), [4_194_304]);
  assert.deepEqual(figures("100 ms / 2 000 ms"), [100, 2000]);
  assert.deepEqual(figures("250 ms doubling to 5 s"), [250, 5000]);
  assert.deepEqual(figures("0 (off)"), [0]);
  assert.deepEqual(figures("1024"), [1024]);
  assert.deepEqual(figures("120 s"), [120_000]);
  assert.deepEqual(figures("–"), []);
});

// ---------------------------------------------------------------- tables

/** A table row giving a default: page, heading above the table, first cell. */
interface TableRow {
  doc: string;
  heading: string;
  /** The row's first cell, as written (backticks included). */
  row: string;
  expected: Expected;
}

const SERVER_TABLE = "Server (`serve()` options)";
const CLIENT_TABLE =
  "Client (`Connection.connect()` / channel `connection` options)";
const ZK_TABLE = "Configuration limits and defaults (ZooKeeper side)";
const KNOBS_TABLE = "The cluster and the knobs";

/** Every row of every table with a "default" column, mapped to the code. */
const TABLE_ROWS: readonly TableRow[] = [
  ...([
    ["maxConnections", SERVER_DEFAULTS.maxConnections],
    ["maxConnectionsPerAddress", SERVER_DEFAULTS.maxConnectionsPerAddress],
    ["handshakeTimeout", SERVER_DEFAULTS.handshakeTimeout],
    ["idleTimeout", SERVER_DEFAULTS.idleTimeout],
    ["frameTimeout", SERVER_DEFAULTS.frameTimeout],
    ["maxPingsPerMinute", SERVER_DEFAULTS.maxPingsPerMinute],
    ["maxConnectionAge", SERVER_DEFAULTS.maxConnectionAge],
    ["maxFrameSize", DEFAULT_MAX_FRAME_SIZE],
    ["maxInFlightPerConnection", SERVER_DEFAULTS.maxInFlightPerConnection],
    ["closeTimeout", SERVER_DEFAULTS.closeTimeout],
    ["exposeStack", false],
  ] as const).map(([name, expected]) => ({
    doc: "docs/security.md",
    heading: SERVER_TABLE,
    row: `\`${name}\``,
    expected,
  })),
  // The fixed limits below the server's options.
  ...([
    ["ping / pong payload", MAX_PING_PAYLOAD],
    // WRITE_HIGH_WATER in src/server/_responder.ts (a _ file of another folder).
    ["queued output per connection", 1 << 20],
    ["receive buffer growth", "doubles, capped"],
    [
      "result / error size",
      "the smaller of the client's `maxFrameSize` and the server's",
    ],
    // OUTPUT_BUDGET in src/server/_responder.ts (not exported).
    ["answers waiting for a client that does not read", 16 << 20],
    // The request header's u8 method length (src/protocol/frame.ts).
    ["method name", 255],
  ] as const).map(([row, expected]) => ({
    doc: "docs/security.md",
    heading: SERVER_TABLE,
    row,
    expected,
  })),
  ...([
    ["`maxBigIntDigits` (both codecs)", DEFAULT_MAX_BIGINT_DIGITS],
    ["nesting (`MAX_NESTING`, fixed)", MAX_NESTING],
    // Set by the format or the frame limit, not figures of the code.
    ["64-bit bigints (`uint 64`/`int 64`)", "64 bits"],
    ["object keys / array elements", "none"],
    ["strings", "valid UTF-8"],
  ] as const).map(([row, expected]) => ({
    doc: "docs/security.md",
    heading: "Codecs (`createMsgpackCodec()`, `createJsonCodec()`)",
    row,
    expected,
  })),
  ...([
    ["`--zookeeper HOSTS`", DEFAULT_ZOOKEEPER_HOSTS],
    // Literals of src/cli/_shared.ts's option table.
    ["`--root PATH`", "/rpc"],
    ["`--timeout DURATION`", 5000],
    ["`--json`", "off"],
    ["`--ca FILE`", "none"],
    ["`--cert FILE`, `--key FILE`", "—"],
  ] as const).map(([row, expected]) => ({
    doc: "docs/cli.md",
    heading: "Global options",
    row,
    expected,
  })),
  ...([
    ["connectTimeout", DEFAULT_CONNECT_TIMEOUT],
    ["maxFrameSize", DEFAULT_MAX_FRAME_SIZE],
    ["maxInFlight", CONNECTION_DEFAULTS.maxInFlight],
    ["keepaliveInterval", CONNECTION_DEFAULTS.keepaliveInterval],
    ["keepaliveTimeout", CONNECTION_DEFAULTS.keepaliveTimeout],
    ["idleKeepaliveInterval", CONNECTION_DEFAULTS.idleKeepaliveInterval],
  ] as const).map(([name, expected]) => ({
    doc: "docs/security.md",
    heading: CLIENT_TABLE,
    row: `\`${name}\``,
    expected,
  })),
  // A fixed limit, not an option (PONG_HIGH_WATER in src/client/connection.ts).
  {
    doc: "docs/security.md",
    heading: CLIENT_TABLE,
    row: "queued pongs",
    expected: 1 << 20,
  },
  ...([
    ["connection string", DEFAULT_ZOOKEEPER_HOSTS],
    ["`connectTimeout`, `sessionTimeout`, `operationTimeout`", [
      ZOOKEEPER_SESSION_DEFAULTS.connectTimeout,
    ]],
    ["`retryDelay` / `maxRetryDelay` (session keeper)", [
      ZOOKEEPER_SESSION_DEFAULTS.retryDelay,
      ZOOKEEPER_SESSION_DEFAULTS.maxRetryDelay,
    ]],
    ["`acl`", '"open"'],
    ["registration retry after a transient failure", [
      REGISTRAR_DEFAULTS.retryDelay,
      REGISTRAR_DEFAULTS.maxRetryDelay,
    ]],
    [
      '`warnAfter` (log "serving but not registered" once)',
      REGISTRAR_DEFAULTS.warnAfter,
    ],
    // Not figures: what the server bound, no credentials, no pattern.
    ["`advertisedHost` / `advertisedPort`", "bound host / bound port"],
    ["`auth`", "none"],
    ["service name", "—"],
  ] as const).map(([row, expected]) => ({
    doc: "docs/security.md",
    heading: ZK_TABLE,
    row,
    expected,
  })),
  ...([
    [
      "session timeout (servers and clients)",
      ZOOKEEPER_SESSION_DEFAULTS.sessionTimeout,
    ],
    ["connect timeout (ZooKeeper / endpoints)", [
      ZOOKEEPER_SESSION_DEFAULTS.connectTimeout,
      DEFAULT_CONNECT_TIMEOUT,
    ]],
    [
      "`keepaliveInterval` (ping after silence with calls in flight)",
      CONNECTION_DEFAULTS.keepaliveInterval,
    ],
    [
      "`keepaliveTimeout` (dead after a ping)",
      CONNECTION_DEFAULTS.keepaliveTimeout,
    ],
    ["`maxEjectionTime`", OUTLIER_DETECTION_DEFAULTS.maxEjectionTime],
    ["call timeout (retries included)", CHANNEL_DEFAULTS.timeout],
    // ZooKeeper's own settings and the suite's load: no library default.
    [
      "ZooKeeper `syncLimit` (a member cut from the leader stops serving after)",
      "–",
    ],
    ["ZooKeeper `tickTime`", "–"],
    ["server delay per call (calls in flight)", "–"],
    ["load: pairs of calls per second (idem + not)", "–"],
    ["partition held", "–"],
  ] as const).map(([row, expected]) => ({
    doc: "docs/partitions.md",
    heading: KNOBS_TABLE,
    row,
    expected,
  })),
];

interface ParsedRow {
  doc: string;
  heading: string;
  row: string;
  /** The cell of the column named "default" (or "Library default"). */
  value: string;
}

function cells(line: string): string[] {
  return line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
}

/** Rows of every table whose header has a column named "… default". */
function defaultRows(doc: string, text: string): ParsedRow[] {
  const rows: ParsedRow[] = [];
  const lines = text.split("\n");
  let heading = "";
  let inCode = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("```")) inCode = !inCode;
    if (inCode) continue;
    const h = /^#+\s+(.*)$/.exec(line);
    if (h) heading = h[1]!.trim();
    if (!line.startsWith("|") || !/^\|[\s:|-]+\|$/.test(lines[i + 1] ?? "")) {
      continue;
    }
    // A "default" column; in a table of limits, the "value" column.
    const header = cells(line);
    let column = header.findIndex((c) => /\bdefault$/i.test(c));
    if (column === -1 && header[0] === "limit") {
      column = header.findIndex((c) => c === "value");
    }
    i++; // the separator
    while (lines[i + 1]?.startsWith("|")) {
      i++;
      if (column === -1) continue;
      const row = cells(lines[i]!);
      rows.push({ doc, heading, row: row[0]!, value: row[column] ?? "" });
    }
  }
  return rows;
}

Deno.test("every default in a docs table is the code's default", async () => {
  const found: ParsedRow[] = [];
  for (const [doc, text] of await docs()) found.push(...defaultRows(doc, text));
  const key = (r: { doc: string; heading: string; row: string }) =>
    `${r.doc} § ${r.heading} | ${r.row}`;
  const expected = new Map(TABLE_ROWS.map((r) => [key(r), r]));
  const unmapped = found.filter((r) => !expected.has(key(r))).map(key);
  assert.deepEqual(
    unmapped,
    [],
    "table rows giving a default that TABLE_ROWS does not map to the code",
  );
  const seen = new Set(found.map(key));
  const missing = TABLE_ROWS.filter((r) => !seen.has(key(r))).map(key);
  assert.deepEqual(
    missing,
    [],
    "TABLE_ROWS entries whose row is gone: update the list",
  );
  for (const row of found) {
    assertValue(key(row), row.value, expected.get(key(row))!.expected);
  }
});

// ----------------------------------------------------------------- prose

/**
 * A sentence giving a default: `pattern` (run on the page with its
 * whitespace collapsed) captures the figure.
 */
interface Prose {
  doc: string;
  pattern: RegExp;
  expected: Expected;
}

function option(name: string, qualifier = ""): RegExp {
  return new RegExp(`\`${name}\` \\(${qualifier}default ([^;,)]+)`);
}

const PROSE: readonly Prose[] = [
  {
    doc: "docs/streaming.md",
    pattern: option("streamWindow"),
    expected: DEFAULT_STREAM_WINDOW,
  },
  {
    doc: "docs/interceptors-and-telemetry.md",
    pattern: /`--settle` \(default `([^`]+)`\)/,
    expected: TRACES_DEFAULT_SETTLE,
  },
  {
    doc: "docs/interceptors-and-telemetry.md",
    pattern: /`--parent-wait` \(default `([^`]+)`/,
    expected: TRACES_DEFAULT_PARENT_WAIT,
  },
  {
    doc: "docs/interceptors-and-telemetry.md",
    pattern: /`--port` \(default `(\d+)`/,
    expected: TRACES_DEFAULT_PORT,
  },
  {
    doc: "docs/testing.md",
    pattern: /a real quorum on loopback \(`size`, default (\d+)\)/,
    expected: 3,
  },
  {
    doc: "docs/api-tour.md",
    pattern: /the channel's `timeout`, default ([^,]+)/,
    expected: CHANNEL_DEFAULTS.timeout,
  },
  {
    doc: "docs/architecture.md",
    pattern: option("maxInFlight"),
    expected: CONNECTION_DEFAULTS.maxInFlight,
  },
  {
    doc: "docs/architecture.md",
    pattern: option("maxAttempts"),
    expected: CHANNEL_DEFAULTS.maxAttempts,
  },
  ...([
    [option("handshakeTimeout", "server, "), SERVER_DEFAULTS.handshakeTimeout],
    [option("connectTimeout", "client, "), DEFAULT_CONNECT_TIMEOUT],
    [option("maxFrameSize"), DEFAULT_MAX_FRAME_SIZE],
    [
      option("maxInFlightPerConnection"),
      SERVER_DEFAULTS.maxInFlightPerConnection,
    ],
    [option("maxInFlight"), CONNECTION_DEFAULTS.maxInFlight],
    [option("keepaliveInterval"), CONNECTION_DEFAULTS.keepaliveInterval],
    [
      option("idleKeepaliveInterval"),
      CONNECTION_DEFAULTS.idleKeepaliveInterval,
    ],
    [option("keepaliveTimeout"), CONNECTION_DEFAULTS.keepaliveTimeout],
    [option("idleTimeout"), SERVER_DEFAULTS.idleTimeout],
    [option("maxPingsPerMinute"), SERVER_DEFAULTS.maxPingsPerMinute],
    [option("maxConnectionAge", "ms, "), SERVER_DEFAULTS.maxConnectionAge],
    [option("frameTimeout"), SERVER_DEFAULTS.frameTimeout],
    [/\(default `closeTimeout`, ([^)]+)\)/, SERVER_DEFAULTS.closeTimeout],
    [option("maxConnections"), SERVER_DEFAULTS.maxConnections],
    [
      option("maxConnectionsPerAddress"),
      SERVER_DEFAULTS.maxConnectionsPerAddress,
    ],
    [/`maxBigIntDigits` digits \(default ([^,]+)/, DEFAULT_MAX_BIGINT_DIGITS],
  ] as const).map(([pattern, expected]) => ({
    doc: "docs/protocol.md",
    pattern,
    expected,
  })),
  {
    doc: "docs/security.md",
    pattern: /port 1\.\.65535, default (\d+)\)/,
    expected: Number(DEFAULT_ZOOKEEPER_HOSTS.split(":")[1]),
  },
  {
    doc: "docs/permissions.md",
    pattern: /without it the default is `([^`]+)`/,
    expected: DEFAULT_ZOOKEEPER_HOSTS,
  },
  {
    doc: "docs/api-tour.md",
    pattern: /`zookeeper` defaults to `([^`]+)`/,
    expected: "$ZOOKEEPER_HOSTS",
  },
  {
    // Deno's default, not zkrpc's.
    doc: "docs/interceptors-and-telemetry.md",
    pattern: /`OTEL_EXPORTER_OTLP_ENDPOINT`, default `([^`]+)`/,
    expected: "http://localhost:4318",
  },
  {
    doc: "docs/protocol.md",
    pattern: /`maxBigIntDigits` decimal digits, default ([^,]+),/,
    expected: DEFAULT_MAX_BIGINT_DIGITS,
  },
  {
    doc: "docs/protocol.md",
    pattern: /`createMsgpackCodec\(\{ maxBigIntDigits \}\)`, default ([^)]+)\)/,
    expected: DEFAULT_MAX_BIGINT_DIGITS,
  },
  {
    doc: "docs/errors.md",
    pattern: /or the registry's, default `([^`]+)`/,
    expected: "console.warn",
  },
  // The summary at the top of failure-modes.md.
  ...([
    [/Defaults: call `timeout` ([^,]+),/, CHANNEL_DEFAULTS.timeout],
    [/`connection\.connectTimeout` ([^,]+),/, DEFAULT_CONNECT_TIMEOUT],
    [/keepalive (\S+ s \+ \S+ s)/, [
      CONNECTION_DEFAULTS.keepaliveInterval,
      CONNECTION_DEFAULTS.keepaliveTimeout,
    ]],
    [/`ejectionTime` (\S+ ms)/, OUTLIER_DETECTION_DEFAULTS.ejectionTime],
    [
      /at most `maxEjectionTime` ([^)]+)\)/,
      OUTLIER_DETECTION_DEFAULTS.maxEjectionTime,
    ],
    [
      /`probeInterval` ([^,]+),/,
      OUTLIER_DETECTION_DEFAULTS.probeInterval,
    ],
    [
      /`consecutiveFailures` (\d+),/,
      OUTLIER_DETECTION_DEFAULTS.consecutiveFailures,
    ],
    [
      /`maxEjectionPercent` (\d+)\./,
      OUTLIER_DETECTION_DEFAULTS.maxEjectionPercent,
    ],
    [/`maxAttempts` (\d+),/, CHANNEL_DEFAULTS.maxAttempts],
    [/`discoveryTimeout` ([^;]+);/, CHANNEL_DEFAULTS.discoveryTimeout],
  ] as const).map(([pattern, expected]) => ({
    doc: "docs/failure-modes.md",
    pattern,
    expected,
  })),
];

Deno.test("every default given in a docs sentence is the code's default", async () => {
  const pages = await docs();
  const covered = new Map<string, [number, number][]>();
  for (const { doc, pattern, expected } of PROSE) {
    const text = (pages.get(doc) ?? "").replace(/\s+/g, " ");
    const match = pattern.exec(text);
    assert.ok(match, `${doc}: no sentence matches ${pattern}: update PROSE`);
    assertValue(`${doc} ${pattern}`, match[1]!, expected);
    const spans = covered.get(doc) ?? [];
    spans.push([match.index, match.index + match[0].length]);
    covered.set(doc, spans);
  }
  // A new sentence "(default 42 …" or "(default `x`" must be added to PROSE.
  const unmapped: string[] = [];
  for (const [doc, raw] of pages) {
    const text = raw.replace(/\s+/g, " ");
    const phrases = /default (?:`\w+`, )?\d|defaults? (?:is |to )?`[^`]/g;
    for (const m of text.matchAll(phrases)) {
      const at = m.index + m[0].length - 1;
      const spans = covered.get(doc) ?? [];
      if (!spans.some(([from, to]) => from <= at && at < to)) {
        unmapped.push(`${doc}: …${text.slice(Math.max(0, at - 60), at + 20)}…`);
      }
    }
  }
  assert.deepEqual(
    unmapped,
    [],
    "sentences giving a default that PROSE does not map to the code",
  );
});

// ------------------------------------------------------------ @default tags

/** `Interface.property` -> the code's default, for every numeric `@default`. */
const DEFAULT_TAGS: Readonly<Record<string, number>> = {
  "ConnectionOptions.connectTimeout": DEFAULT_CONNECT_TIMEOUT,
  "ConnectionOptions.maxFrameSize": DEFAULT_MAX_FRAME_SIZE,
  "ConnectionOptions.maxInFlight": CONNECTION_DEFAULTS.maxInFlight,
  "ConnectionOptions.streamWindow": DEFAULT_STREAM_WINDOW,
  "ServeOptions.streamWindow": DEFAULT_STREAM_WINDOW,
  "ConnectionOptions.keepaliveInterval": CONNECTION_DEFAULTS.keepaliveInterval,
  "ConnectionOptions.keepaliveTimeout": CONNECTION_DEFAULTS.keepaliveTimeout,
  "ConnectionOptions.idleKeepaliveInterval":
    CONNECTION_DEFAULTS.idleKeepaliveInterval,
  "DistributedChannelOptions.timeout": CHANNEL_DEFAULTS.timeout,
  "DistributedChannelOptions.maxAttempts": CHANNEL_DEFAULTS.maxAttempts,
  "OutlierDetectionOptions.ejectionTime":
    OUTLIER_DETECTION_DEFAULTS.ejectionTime,
  "OutlierDetectionOptions.maxEjectionTime":
    OUTLIER_DETECTION_DEFAULTS.maxEjectionTime,
  "DistributedChannelOptions.discoveryTimeout":
    CHANNEL_DEFAULTS.discoveryTimeout,
  "HedgingOptions.maxHedges": CHANNEL_DEFAULTS.maxHedges,
  "HedgingOptions.delay.percentile": CHANNEL_DEFAULTS.hedgePercentile,
  "DistributedChannelOptions.retryBudget.maxTokens":
    RETRY_BUDGET_DEFAULTS.maxTokens,
  "DistributedChannelOptions.retryBudget.tokenRatio":
    RETRY_BUDGET_DEFAULTS.tokenRatio,
  "OutlierDetectionOptions.consecutiveFailures":
    OUTLIER_DETECTION_DEFAULTS.consecutiveFailures,
  "OutlierDetectionOptions.failureRate": OUTLIER_DETECTION_DEFAULTS.failureRate,
  "OutlierDetectionOptions.minimumCalls":
    OUTLIER_DETECTION_DEFAULTS.minimumCalls,
  "OutlierDetectionOptions.maxEjectionPercent":
    OUTLIER_DETECTION_DEFAULTS.maxEjectionPercent,
  "OutlierDetectionOptions.probeInterval":
    OUTLIER_DETECTION_DEFAULTS.probeInterval,
  "OutlierDetectionOptions.probeTimeout":
    OUTLIER_DETECTION_DEFAULTS.probeTimeout,
  "RetryBudgetOptions.maxTokens": RETRY_BUDGET_DEFAULTS.maxTokens,
  "RetryBudgetOptions.tokenRatio": RETRY_BUDGET_DEFAULTS.tokenRatio,
  "ServeOptions.port": 0,
  "ServeOptions.maxFrameSize": DEFAULT_MAX_FRAME_SIZE,
  "ServeOptions.maxConnections": SERVER_DEFAULTS.maxConnections,
  "ServeOptions.maxInFlightPerConnection":
    SERVER_DEFAULTS.maxInFlightPerConnection,
  "ServeOptions.handshakeTimeout": SERVER_DEFAULTS.handshakeTimeout,
  "ServeOptions.maxConnectionsPerAddress":
    SERVER_DEFAULTS.maxConnectionsPerAddress,
  "ServeOptions.idleTimeout": SERVER_DEFAULTS.idleTimeout,
  "ServeOptions.maxPingsPerMinute": SERVER_DEFAULTS.maxPingsPerMinute,
  "ServeOptions.maxConnectionAge": SERVER_DEFAULTS.maxConnectionAge,
  "ServeOptions.frameTimeout": SERVER_DEFAULTS.frameTimeout,
  "ServeOptions.closeTimeout": SERVER_DEFAULTS.closeTimeout,
  "ZooKeeperSessionOptions.connectTimeout":
    ZOOKEEPER_SESSION_DEFAULTS.connectTimeout,
  "ZooKeeperSessionOptions.sessionTimeout":
    ZOOKEEPER_SESSION_DEFAULTS.sessionTimeout,
  "ZooKeeperSessionOptions.operationTimeout":
    ZOOKEEPER_SESSION_DEFAULTS.operationTimeout,
  "SessionKeeperOptions.retryDelay": ZOOKEEPER_SESSION_DEFAULTS.retryDelay,
  "SessionKeeperOptions.maxRetryDelay":
    ZOOKEEPER_SESSION_DEFAULTS.maxRetryDelay,
  "ZooKeeperRegistrarOptions.weight": REGISTRAR_DEFAULTS.weight,
  "ZooKeeperRegistrarOptions.warnAfter": REGISTRAR_DEFAULTS.warnAfter,
  "MemberData.weight": REGISTRAR_DEFAULTS.weight,
  "JsonCodecOptions.maxBigIntDigits": DEFAULT_MAX_BIGINT_DIGITS,
  "MsgpackCodecOptions.maxBigIntDigits": DEFAULT_MAX_BIGINT_DIGITS,
  // The test launchers' own options, defaulted where src/testing/
  // destructures them (no doc table repeats them).
  "StartZooKeeperOptions.port": 0,
  "StartZooKeeperOptions.startupTimeout": 30_000,
  "StartZooKeeperEnsembleOptions.size": 3,
  "StartZooKeeperEnsembleOptions.observers": 0,
  "StartZooKeeperEnsembleOptions.startupTimeout": 60_000,
  "ZooKeeperJvmOptions.tickTime": 500,
  "ExpireSessionOptions.timeout": 10_000,
};

/**
 * `Interface.property` -> `@default` text, over every entry point, and the
 * properties whose `@default` deno doc cannot read (inline in the text, or
 * without braces): JSR shows no default for those.
 */
async function defaultTags(): Promise<
  { tags: Map<string, string>; unreadable: string[] }
> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  ) as { exports: Record<string, string> };
  const doc = await denoDoc(Object.values(config.exports));
  const tags = new Map<string, string>();
  const unreadable: string[] = [];
  for (const module of Object.values(doc.nodes)) {
    for (const symbol of module.symbols) {
      for (const declaration of symbol.declarations ?? []) {
        for (const property of declaration.def?.properties ?? []) {
          const name = `${symbol.name}.${property.name}`;
          if (property.jsDoc?.doc?.includes("@default")) unreadable.push(name);
          for (const tag of property.jsDoc?.tags ?? []) {
            if (tag.value?.startsWith("@default")) unreadable.push(name);
            // deno doc ends the value at the first "}": `{{ a: 1 }}` loses
            // its end, so an object default is written `{a: 1}`.
            const value = tag.kind === "default" ? tag.value ?? "" : "";
            if (
              value.split("{").length !== value.split("}").length ||
              value.split("[").length !== value.split("]").length
            ) unreadable.push(name);
            if (tag.kind !== "default") continue;
            tags.set(name, tag.value ?? "");
          }
        }
      }
    }
  }
  return { tags, unreadable };
}

Deno.test("every numeric @default tag of an exported option is the code's default", async () => {
  const { tags, unreadable } = await defaultTags();
  assert.deepEqual(
    unreadable,
    [],
    "write these as a `@default {value}` line of their own, no braces inside",
  );
  assert.ok(tags.size > 40, `only ${tags.size} @default tags found`);
  const numeric = [...tags].filter(([, value]) =>
    /^\{?\s*-?\d[\d_.]*\s*\}?$/.test(value.trim())
  );
  // Figures inside an object default: `{ maxTokens: 100, tokenRatio: 0.1 }`.
  for (const [name, value] of tags) {
    for (
      const [, key, figure] of value.matchAll(
        /\b([A-Za-z]\w*):\s*(-?\d[\d_.]*)/g,
      )
    ) {
      numeric.push([`${name}.${key}`, figure!]);
    }
  }
  const unmapped = numeric.filter(([name]) => !(name in DEFAULT_TAGS))
    .map(([name, value]) => `${name} @default ${value}`);
  assert.deepEqual(
    unmapped,
    [],
    "numeric @default tags that DEFAULT_TAGS does not map to the code",
  );
  for (const [name, value] of numeric) {
    assert.equal(
      Number(value.replace(/[{}_\s]/g, "")),
      DEFAULT_TAGS[name],
      `${name} @default ${value}`,
    );
  }
  for (
    const name of ["ZooKeeperDiscoveryOptions", "ZooKeeperRegistrarOptions"]
  ) {
    const tag = tags.get(`${name}.zookeeper`) ?? "";
    assert.ok(
      tag.includes(DEFAULT_ZOOKEEPER_HOSTS),
      `${name}.zookeeper @default ${tag}`,
    );
  }
  const stale = Object.keys(DEFAULT_TAGS).filter((name) =>
    !numeric.some(([tag]) => tag === name)
  );
  assert.deepEqual(
    stale,
    [],
    "DEFAULT_TAGS entries whose tag is gone: update the list",
  );
});

// ------------------------------------------------ promises -> tests table

Deno.test("every test docs/testing.md names for a documented promise exists", async () => {
  const doc = await Deno.readTextFile(new URL("docs/testing.md", ROOT));
  const start = doc.indexOf("## Documented promises → tests");
  assert.ok(start >= 0, "docs/testing.md has the promises table");
  const section = doc.slice(start, doc.indexOf("\n## ", start + 1));
  const named = [...section.matchAll(/`(tests\/[\w/]+\.ts)` "([^"]+)"/g)];
  assert.ok(named.length > 40, `only ${named.length} tests named`);
  const missing: string[] = [];
  for (const [, file, name] of named) {
    const source = await Deno.readTextFile(new URL(file!, ROOT));
    // A literal name, or a template name with `${…}` parts.
    const templates = [...source.matchAll(/Deno\.test\(\s*`([^`]*)`/g)].map(
      ([, t]) =>
        new RegExp(
          `^${
            t!.split(/\$\{[^}]*\}/).map((part) =>
              part.replace(/[.*+?^$()[\]{}|\\]/g, "\\$&")
            ).join(".+")
          }$`,
        ),
    );
    if (
      !source.includes(`"${name}"`) && !source.includes(`\`${name}\``) &&
      !templates.some((template) => template.test(name!))
    ) {
      missing.push(`${file}: "${name}"`);
    }
  }
  assert.deepEqual(
    missing,
    [],
    "docs/testing.md names tests that do not exist",
  );
});
