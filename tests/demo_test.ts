/**
 * A shortened `deno task demo`, run as a subprocess with the task's own
 * permission flags: no failed call, the kill, the join and the restart in
 * its output, and its `--chart` timeline a well-formed SVG that marks them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { descendants, parseXml, textOf } from "./_xml.ts";

const ROOT = new URL("../", import.meta.url);
/** Longer than any demo run here takes, even on a loaded machine. */
const DEMO_DEADLINE = 120_000;

/** The "demo" task's `deno run …` arguments, read from deno.json. */
async function demoTaskArgs(): Promise<string[]> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  );
  const task: string = config.tasks.demo;
  const words = task.split(/\s+/);
  assert.equal(words[0], "deno");
  return words.slice(1);
}

Deno.test("the demo survives a SIGKILL, a join and a graceful restart without a failed call", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "zkrpc-demo-chart-" });
  try {
    const chart = `${dir}/timeline.svg`;
    await demoRun(chart);
    // The same run, drawn: one demo run serves both (it is the slow part).
    await t.step(
      "--chart writes a well-formed SVG timeline that marks the kill, the join and the restart",
      async () => {
        assertTimeline(await Deno.readTextFile(chart));
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function demoRun(chart: string): Promise<void> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      ...await demoTaskArgs(),
      "--duration",
      "8",
      "--json",
      "--chart",
      chart,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    // A hang fails the test (the demo is killed) instead of the whole run.
    signal: AbortSignal.timeout(DEMO_DEADLINE),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(
    output.signal,
    null,
    `the demo did not end within ${DEMO_DEADLINE} ms:\n${stderr}\n${stdout}`,
  );
  assert.equal(output.code, 0, `demo failed:\n${stderr}\n${stdout}`);
  const summary = JSON.parse(stdout);
  assert.equal(summary.ok, true);
  assert.equal(summary.failed, 0);
  // The call rate, the longest gap and how soon a new server gets calls are
  // figures the demo reports, not pass/fail: they depend on the machine.
  assert.ok(summary.calls > 0, `calls made: ${summary.calls}`);
  assert.equal(summary.answered, summary.calls);
  assert.equal(summary.killed, true);
  assert.equal(summary.joined, true);
  assert.equal(summary.restarted, true);
  for (const server of ["server-1", "server-3", "server-4", "server-2b"]) {
    assert.ok(summary.callsPerServer[server] > 0, `${server} got calls`);
  }
  // Per-method metrics from the channel interceptor: every attempt counted.
  const divide = summary.perMethod.divide;
  assert.ok(divide.calls >= summary.calls, `divide attempts ${divide.calls}`);
  // clock-ok: the demo's own latency report is sane (ordered percentiles), no bound
  assert.ok(divide.p50Ms > 0 && divide.p99Ms >= divide.p50Ms);
  assert.match(
    stderr,
    /KILL: server-1 \(pid \d+, 127\.0\.0\.1:\d+\) killed with SIGKILL/,
  );
  assert.match(
    stderr,
    /JOIN: server-4 received its first call \d+ ms after registering/,
  );
  assert.match(stderr, /RESTART: server-2 closed gracefully/);
  assert.match(stderr, /RESTART: server-2b registered/);
  assert.match(stderr, /demo: timeline written to /);
}

/**
 * The timeline: a well-formed SVG with three panels, the series drawn, and
 * the three events marked in the order they happened.
 */
function assertTimeline(text: string): void {
  const svg = parseXml(text);
  assert.equal(svg.name, "svg");
  const elements = descendants(svg);
  const texts = elements.filter((e) => e.name === "text").map(textOf);
  for (
    const title of ["calls/s", "latency (ms): p50, p99", "errors per second"]
  ) {
    assert.ok(texts.includes(title), `panel "${title}" in ${texts}`);
  }
  assert.ok(
    elements.filter((e) => e.name === "polyline").length >= 5,
    "calls/s, p50, p99, failed attempts and failed calls are drawn",
  );
  const calls = elements.find((e) =>
    e.name === "polyline" && e.attributes.get("stroke") === "#1f77b4"
  );
  assert.ok(
    (calls?.attributes.get("points") ?? "").split(" ").length >= 8,
    "a calls/s point per half second",
  );
  const markers = elements.filter((e) =>
    e.name === "g" && e.attributes.get("class") === "event"
  );
  const labelled = new Map<string, { x: number; label: string }>();
  for (const marker of markers) {
    const line = marker.children.find((c) =>
      typeof c !== "string" && c.name === "line"
    );
    assert.ok(line && typeof line !== "string", "each marker draws a line");
    const text = marker.children.find((c) =>
      typeof c !== "string" && c.name === "text"
    );
    if (text === undefined || typeof text === "string") continue;
    labelled.set(marker.attributes.get("data-event")!, {
      x: Number(line.attributes.get("x1")),
      label: textOf(text),
    });
  }
  assert.deepEqual([...labelled.keys()], ["kill", "join", "restart"]);
  assert.match(labelled.get("kill")!.label, /kill -9 server-1/);
  assert.match(labelled.get("join")!.label, /server-4/);
  assert.match(labelled.get("restart")!.label, /restart server-2/);
  assert.ok(labelled.get("kill")!.x < labelled.get("join")!.x);
  assert.ok(labelled.get("join")!.x < labelled.get("restart")!.x);
  // Each event also crosses the other two panels.
  for (const event of ["kill", "join", "restart"]) {
    assert.equal(
      markers.filter((m) => m.attributes.get("data-event") === event).length,
      3,
      event,
    );
  }
}

Deno.test("demo --chart to a file the task may not write, or into a missing directory, stops at once with exit 2 and the way out", async () => {
  // A file the task may not write: its --allow-write is /tmp, so a checkout
  // under /tmp (a CI clone) needs a path outside it.
  const inCheckout = new URL("docs/not-written.svg", ROOT).pathname;
  const chart = inCheckout.startsWith("/tmp/")
    ? `/var/tmp/zkrpc-${crypto.randomUUID()}-not-written.svg`
    : inCheckout;
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...await demoTaskArgs(), "--chart", chart],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(DEMO_DEADLINE),
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 2, stderr);
  assert.match(stderr, /--chart: no write access to ".*not-written\.svg"/);
  assert.match(stderr, /--allow-write=/);
  await assert.rejects(Deno.stat(chart), Deno.errors.NotFound);
  // A directory that does not exist is found before the run, not after it.
  const missing = await Deno.makeTempDir({ prefix: "zkrpc-demo-chart-" });
  await Deno.remove(missing);
  const early = await new Deno.Command(Deno.execPath(), {
    args: [...await demoTaskArgs(), "--chart", `${missing}/t.svg`],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(DEMO_DEADLINE),
  }).output();
  const earlyErr = new TextDecoder().decode(early.stderr);
  assert.equal(early.code, 2, earlyErr);
  assert.match(earlyErr, /--chart: ".*" is not a directory/);
});

Deno.test("the example timeline in docs/demo.svg (shown by the README) is well-formed and marks the kill, the join and the restart", async () => {
  assertTimeline(await Deno.readTextFile(new URL("docs/demo.svg", ROOT)));
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  assert.match(readme, /!\[[^\]]+\]\(docs\/demo\.svg\)/);
});

Deno.test("the XML check refuses documents that are not well-formed", () => {
  const good = '<svg a="1"><g><text>a &amp; b</text></g><line x="2"/></svg>';
  assert.equal(textOf(parseXml(good)), "a & b");
  for (
    const bad of [
      "<svg><g></svg>",
      '<svg a="1" a="2"/>',
      "<svg a=1/>",
      "<svg>a & b</svg>",
      "<svg>a < b</svg>",
      "<svg/><svg/>",
      "text<svg/>",
      "<svg>",
      "",
    ]
  ) {
    assert.throws(() => parseXml(bad), SyntaxError, bad);
  }
});

Deno.test("the demo piped keeps one clock, and on Ctrl-C prints the real elapsed time and stops everything", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...await demoTaskArgs(), "--duration", "20"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(DEMO_DEADLINE),
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const decoder = new TextDecoderStream();
  const reader = child.stdout.pipeThrough(decoder).getReader();
  let text = "";
  while (!text.includes("load: divide at")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  assert.match(text, /load: divide at/, "the demo started its load");
  // Let the load run a little (at least one status line), then Ctrl-C.
  const loadSeenAt = performance.now();
  while (!/\d+ calls ok/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const interruptedAt = performance.now();
  child.kill("SIGINT");
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const status = await child.status;
  await stderr;
  assert.equal(status.code, 130, text);
  // Its duration was 20 s: stopping well before shows that SIGINT did it.
  // clock-ok: a hang guard for a child process: 10x its stop time
  assert.ok(performance.now() - interruptedAt < 15_000, "stopped promptly");
  assert.match(text, /Summary/);
  assert.match(text, /calls failed +0/);
  assert.match(text, /method divide +\d+ attempts, .*p50 .*p99/);
  assert.match(text, /result +INTERRUPTED/);
  // The summary gives the time the load really ran, not the planned 20 s:
  // at most the time from seeing "load" to the exit, plus a second.
  const made = /calls made +\d+ in (\d+\.\d) s of 20 s planned/.exec(text);
  assert.ok(made, text);
  const elapsed = Number(made[1]);
  const bound = (performance.now() - loadSeenAt) / 1000 + 1;
  // clock-ok: the demo reports no more than the real elapsed time: its clock is the property
  assert.ok(elapsed < bound, `reported ${elapsed} s, at most ${bound} s`);
  // One clock for every piped line: times never go back (no reset at load).
  const times = [...text.matchAll(/^\[ *(\d+\.\d)s\]/gm)].map((m) =>
    Number(m[1])
  );
  assert.ok(times.length > 5, text);
  const loadLine = text.split("\n").find((l) => l.includes("load: divide at"));
  assert.ok(
    Number(/^\[ *(\d+\.\d)s\]/.exec(loadLine!)![1]) > 0,
    `the clock does not reset to 0 at load: ${loadLine}`,
  );
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i]! >= times[i - 1]!, `time went back: ${times}`);
  }
  // Every process the demo started is gone: servers and ZooKeeper.
  const pids = [...text.matchAll(/server-\d registered: \S+ \(pid (\d+)\)/g)]
    .map((m) => Number(m[1]));
  assert.equal(pids.length, 3, text);
  const zooKeeper = /ZooKeeper ready on \S+ \(pid (\d+)\)/.exec(text);
  assert.ok(zooKeeper, text);
  pids.push(Number(zooKeeper[1]));
  for (const pid of pids) {
    assert.throws(() => Deno.kill(pid, "SIGCONT"), Deno.errors.NotFound);
  }
});
