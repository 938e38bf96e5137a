/**
 * Gray failures under load, against servers in their own processes: a hung
 * (SIGSTOPped) server, members that crashed but are still listed, black
 * holes (a listener that accepts and never answers, one that never
 * accepts), and a service whose members all fail. See docs/failure-modes.md.
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../mod.ts";
import { ConnectionError, NoServersError } from "../src/errors.ts";
import type { MemberData } from "../src/discovery/member.ts";
import { StaticMembership } from "../src/discovery/static.ts";
import { type ChildServer, startChildServer } from "./_core_helpers.ts";
import { waitFor } from "./_discovery_helpers.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";

function member(port: number): MemberData {
  return { host: HOST, port };
}

async function startChildren(n: number): Promise<ChildServer[]> {
  return await Promise.all(Array.from({ length: n }, () => startChildServer()));
}

async function killAll(children: ChildServer[]): Promise<void> {
  await Promise.all(children.map((child) => child.kill()));
}

/** Outcome counts of an open-loop load run. */
interface LoadResult {
  /** Calls the schedule asked for (including those the cap did not allow). */
  offered: number;
  succeeded: number;
  failed: number;
  errors: Map<string, number>;
}

/**
 * Offers `rate` calls per second, at most `maxInFlight` at once, until
 * `stop` is aborted; `window()` counts the outcomes of calls offered between
 * two marks.
 */
function openLoop(
  channel: DistributedChannel,
  rate: number,
  maxInFlight: number,
  timeout: number,
) {
  const total: LoadResult = {
    offered: 0,
    succeeded: 0,
    failed: 0,
    errors: new Map(),
  };
  let windowResult: LoadResult | undefined;
  let inFlight = 0;
  const calls = new Set<Promise<void>>();
  const started = performance.now();
  let issued = 0;
  const tick = () => {
    const due = Math.floor((performance.now() - started) * rate / 1000);
    while (issued < due) {
      issued++;
      total.offered++;
      const window = windowResult;
      if (window) window.offered++;
      if (inFlight >= maxInFlight) continue;
      inFlight++;
      const call = channel.call("echo", [issued], { timeout }).then(() => {
        total.succeeded++;
        if (window) window.succeeded++;
      }, (error: Error) => {
        total.failed++;
        if (window) window.failed++;
        const name = `${error.name}: ${error.message.slice(0, 90)}`;
        total.errors.set(name, (total.errors.get(name) ?? 0) + 1);
      }).finally(() => {
        inFlight--;
        calls.delete(call);
      });
      calls.add(call);
    }
  };
  const timer = setInterval(tick, 5);
  return {
    total,
    mark(): void {
      windowResult = { offered: 0, succeeded: 0, failed: 0, errors: new Map() };
    },
    /** The window being counted (since the last `mark()`). */
    get window(): LoadResult | undefined {
      return windowResult;
    },
    endWindow(): LoadResult {
      const result = windowResult!;
      windowResult = undefined;
      return result;
    },
    async stop(): Promise<LoadResult> {
      clearInterval(timer);
      await Promise.all(calls);
      return total;
    },
  };
}

/**
 * Three servers, one SIGSTOPped under 8 calls in flight at 400/s with a 1 s
 * deadline, until the channel has ejected it and answered `afterEjection`
 * more calls; then resumed until it gets calls again. Counts by event, never
 * by time: calls are sorted by when they were issued (before the ejection,
 * after it, after the resume), which is what the tests assert on.
 */
async function hungServerRun(
  options: { idempotent: boolean; afterEjection: number },
): Promise<{
  total: LoadResult;
  beforeEjection: LoadResult;
  afterEjection: LoadResult;
  afterResume: LoadResult;
}> {
  const children = await startChildren(3);
  const victim = children[0]!;
  const victimKey = `${HOST}:${victim.port}`;
  await using channel = new DistributedChannel({
    membership: new StaticMembership(children.map((c) => member(c.port))),
    timeout: 1000,
    ...(options.idempotent
      ? { idempotent: ["echo"], hedging: { delay: 50 } }
      : {}),
  });
  const load = openLoop(channel, 400, 8, 1000);
  try {
    const status = (port: number) =>
      channel.endpoints().find((e) => e.key === `${HOST}:${port}`);
    await waitFor(
      () => children.every((c) => (status(c.port)?.calls ?? 0) > 0),
      "every endpoint answering",
      30_000,
    );
    const victimStatus = () =>
      channel.endpoints().find((e) => e.key === victimKey)!;
    victim.child.kill("SIGSTOP");
    load.mark();
    await waitFor(
      () => victimStatus().state === "ejected",
      "the ejection",
      30_000,
    );
    const beforeEjection = load.endWindow();
    load.mark();
    await waitFor(
      () => load.window!.succeeded >= options.afterEjection,
      `${options.afterEjection} calls answered after the ejection`,
      60_000,
    );
    const afterEjection = load.endWindow();
    load.mark();
    const callsBefore = victimStatus().calls;
    victim.child.kill("SIGCONT");
    await waitFor(
      () => victimStatus().calls > callsBefore + 5,
      "calls to the resumed server",
      10_000,
    );
    const afterResume = load.endWindow();
    const total = await load.stop();
    return { total, beforeEjection, afterEjection, afterResume };
  } finally {
    await load.stop();
    await channel.close();
    await killAll(children);
  }
}

function detailOf(run: Awaited<ReturnType<typeof hungServerRun>>): string {
  const counts = (r: LoadResult) => ({ ...r, errors: undefined });
  return JSON.stringify({
    total: { ...run.total, errors: Object.fromEntries(run.total.errors) },
    beforeEjection: counts(run.beforeEjection),
    afterEjection: counts(run.afterEjection),
    afterResume: counts(run.afterResume),
  });
}

Deno.test("a hung server costs only the calls sent before its ejection, is ejected while hung and used again once resumed", async () => {
  const run = await hungServerRun({ idempotent: false, afterEjection: 400 });
  const detail = detailOf(run);
  // Every call issued after the ejection went to a healthy server.
  assert.equal(run.afterEjection.failed, 0, detail);
  assert.equal(run.afterResume.failed, 0, detail);
  // The failures are calls the hung server held (issued before the ejection).
  assert.ok(run.total.failed > 0, `the hang cost nothing: ${detail}`);
});

Deno.test("with an idempotent method and hedging a hung server costs no call", async () => {
  const run = await hungServerRun({ idempotent: true, afterEjection: 400 });
  const detail = detailOf(run);
  assert.equal(run.total.failed, 0, detail);
  assert.ok(run.beforeEjection.succeeded > 0, detail);
  assert.ok(run.afterEjection.succeeded >= 400, detail);
});

Deno.test("2 live and 4 crashed but still listed members: 40 fresh channels fail no call", async () => {
  const children = await startChildren(6);
  const crashed = children.slice(2);
  await killAll(crashed); // their ports now refuse, but the list keeps them
  const membership = new StaticMembership(children.map((c) => member(c.port)));
  let failed = 0;
  let succeeded = 0;
  const errors: string[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      await using channel = new DistributedChannel({ membership });
      await Promise.all(Array.from({ length: 5 }, async (_, j) => {
        try {
          assert.equal(await channel.call("echo", [j]), j);
          succeeded++;
        } catch (error) {
          failed++;
          errors.push((error as Error).message);
        }
      }));
    }
  } finally {
    await killAll(children);
  }
  assert.equal(failed, 0, errors.slice(0, 3).join("\n"));
  assert.equal(succeeded, 200);
});

/** A listener that accepts connections and never answers. */
function silentListener() {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  return {
    port: listener.addr.port,
    async close(): Promise<void> {
      listener.close();
      await accepting;
      for (const conn of accepted) conn.close();
    },
  };
}

/**
 * A listener that never accepts, its accept queue filled, so that the kernel
 * drops further SYNs: a connect to it never completes.
 */
async function fullBacklogListener() {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  const fillers: Deno.Conn[] = [];
  while (true) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = Deno.connect({ hostname: HOST, port });
    const conn = await Promise.race([
      connecting,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), 300);
      }),
    ]);
    clearTimeout(timer);
    if (conn === undefined) {
      connecting.then((c) => c.close(), () => {});
      break;
    }
    fillers.push(conn);
  }
  return {
    port,
    close(): void {
      for (const conn of fillers) conn.close();
      listener.close();
    },
  };
}

Deno.test({
  name:
    "black-hole members (accepts and never answers, never accepts) fail no idempotent call: none waits for its deadline",
  // Deno.connect cannot be cancelled: a connect to the full backlog stays
  // pending in the kernel's SYN retries after the test, so ops are not
  // sanitized here (sockets and timers still are).
  sanitizeOps: false,
  async fn() {
    const children = await startChildren(2);
    const silent = silentListener();
    const full = await fullBacklogListener();
    const connectTimeout = 500;
    const membership = new StaticMembership([
      member(silent.port),
      member(full.port),
      ...children.map((c) => member(c.port)),
    ]);
    let failed = 0;
    const errors: string[] = [];
    try {
      // Fresh channels: each meets the black holes anew.
      for (let i = 0; i < 4; i++) {
        await using channel = new DistributedChannel({
          membership,
          idempotent: ["echo"],
          balancer: "round-robin",
          connection: { connectTimeout },
        });
        for (let j = 0; j < 8; j++) {
          try {
            await channel.call("echo", [j]);
          } catch (error) {
            failed++;
            errors.push((error as Error).message);
          }
        }
      }
    } finally {
      await silent.close();
      full.close();
      await killAll(children);
    }
    // A call held by a black hole would fail at its deadline (10 s): none
    // does, so each moved on after the connect timeout.
    assert.equal(failed, 0, errors.slice(0, 3).join("\n"));
  },
});

Deno.test("when every member fails calls still try them and fail with the all-members-failing error", async () => {
  const ports = await Promise.all([0, 1].map(async () => {
    const child = await startChildServer();
    await child.kill();
    return child.port;
  }));
  await using channel = new DistributedChannel({
    membership: new StaticMembership(ports.map(member)),
    service: "calculator",
    // No deadline: a call that waited instead of trying would never end.
    timeout: Infinity,
  });
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      within(channel.call("echo", [1]), 10_000, "the call to try and fail"),
      (error: unknown) =>
        error instanceof NoServersError &&
        /all 2 members failing/.test(error.message) &&
        /Connection refused|refused/i.test(error.message),
    );
  }
  assert.ok(channel.endpoints().every((e) => e.state === "ejected"));
  // No self-inflicted outage: with every member ejected, a call still tries,
  // and succeeds as soon as one is back.
  const revived = Deno.listen({ hostname: HOST, port: ports[0]! });
  revived.close();
  const { serve } = await import("../src/server/server.ts");
  const server = serve({ echo: (x: unknown) => x }, {
    hostname: HOST,
    port: ports[0]!,
  });
  try {
    assert.equal(await channel.call("echo", [7]), 7);
  } finally {
    await channel.close();
    await server.close();
  }
});

Deno.test("keepalive detects a hung server within seconds even when calls have long deadlines", async () => {
  const [hung, healthy] = await startChildren(2) as [ChildServer, ChildServer];
  try {
    await using channel = new DistributedChannel({
      membership: new StaticMembership([member(hung.port)]),
      timeout: 60_000,
    });
    assert.equal(await channel.call("echo", [1]), 1); // connected
    hung.child.kill("SIGSTOP");
    // keepaliveInterval + keepaliveTimeout (1 s + 2 s) end it, not the 60 s
    // deadline: the error says so.
    await assert.rejects(
      within(channel.call("echo", [2]), 30_000, "keepalive to end the call"),
      (error: unknown) =>
        error instanceof ConnectionError && error.written &&
        /no answer to a ping/.test(error.message),
    );
    await waitFor(
      () => channel.endpoints()[0]?.state === "ejected",
      "the ejection",
    );
    // The call was not idempotent; an idempotent one moves on instead.
    (channel.membership as StaticMembership).set([
      member(hung.port),
      member(healthy.port),
    ]);
    assert.equal(await channel.call("echo", [3], { idempotent: true }), 3);
    hung.child.kill("SIGCONT");
    await channel.close();
  } finally {
    await killAll([hung, healthy]);
  }
});
