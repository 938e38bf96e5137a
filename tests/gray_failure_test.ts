/**
 * Gray failures under load, against servers in their own processes: a hung
 * (SIGSTOPped) server, members that crashed but are still listed, black
 * holes (a listener that accepts and never answers, one that never
 * accepts), and a service whose members all fail. See docs/failure-modes.md.
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../src/channel.ts";
import { ConnectionError, NoServersError } from "../src/errors.ts";
import type { MemberData } from "../src/registry/member.ts";
import { StaticMembership } from "../src/registry/static.ts";
import { type ChildServer, delay, startChildServer } from "./_core_helpers.ts";
import { waitFor } from "./_discovery_helpers.ts";

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
 * Three servers, one SIGSTOPped for `hangMs` under 8 calls in flight at
 * 400/s with a 1 s deadline. Non-idempotent calls already on the hung server
 * hold their slots for the whole deadline, so the success share during the
 * hang is at most `1 - 1 s / hangMs`: the bound of 75 % needs the issue's
 * full 10 s. The hedged run, which must lose nothing, uses 5 s.
 */
async function hungServerRun(
  options: { idempotent: boolean; hangMs: number },
): Promise<{
  total: LoadResult;
  hang: LoadResult;
  ejectedAfter: number;
  usedAgainAfter: number;
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
    await delay(1000); // warm: every endpoint connected and answering
    const victimStatus = () =>
      channel.endpoints().find((e) => e.key === victimKey)!;
    const stoppedAt = performance.now();
    victim.child.kill("SIGSTOP");
    load.mark();
    await waitFor(
      () => victimStatus().state === "ejected",
      "the ejection",
      options.hangMs,
    );
    const ejectedAfter = performance.now() - stoppedAt;
    await delay(Math.max(0, options.hangMs - (performance.now() - stoppedAt)));
    const hang = load.endWindow();
    const callsBefore = victimStatus().calls;
    const resumedAt = performance.now();
    victim.child.kill("SIGCONT");
    await waitFor(
      () => victimStatus().calls > callsBefore + 5,
      "calls to the resumed server",
      10_000,
    );
    const usedAgainAfter = performance.now() - resumedAt;
    const total = await load.stop();
    return { total, hang, ejectedAfter, usedAgainAfter };
  } finally {
    await load.stop();
    await channel.close();
    await killAll(children);
  }
}

Deno.test("a hung server costs only the calls already on it, is ejected within 2 s and used again within 2 s of resuming", async () => {
  const { total, hang, ejectedAfter, usedAgainAfter } = await hungServerRun({
    idempotent: false,
    hangMs: 10_000,
  });
  const detail = JSON.stringify({
    total: { ...total, errors: Object.fromEntries(total.errors) },
    hang: { ...hang, errors: undefined },
    ejectedAfter,
    usedAgainAfter,
  });
  assert.ok(total.failed <= 24, `too many failed calls: ${detail}`);
  assert.ok(
    hang.succeeded >= 0.75 * hang.offered,
    `too few calls succeeded during the hang: ${detail}`,
  );
  assert.ok(ejectedAfter <= 2000, `ejected too late: ${detail}`);
  assert.ok(usedAgainAfter <= 2000, `used again too late: ${detail}`);
});

Deno.test("with an idempotent method and hedging a hung server costs no call", async () => {
  const { total, hang } = await hungServerRun({
    idempotent: true,
    hangMs: 5000,
  });
  const detail = JSON.stringify({
    total: { ...total, errors: Object.fromEntries(total.errors) },
    hang: { ...hang, errors: undefined },
  });
  assert.equal(total.failed, 0, detail);
  assert.ok(total.succeeded > 1000, detail);
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
    "black-hole members (accepts and never answers, never accepts) fail no idempotent call, each within the connect timeout plus normal latency",
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
    let slowest = 0;
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
          const started = performance.now();
          try {
            await channel.call("echo", [j]);
          } catch (error) {
            failed++;
            errors.push((error as Error).message);
          }
          slowest = Math.max(slowest, performance.now() - started);
        }
      }
    } finally {
      await silent.close();
      full.close();
      await killAll(children);
    }
    assert.equal(failed, 0, errors.slice(0, 3).join("\n"));
    // One connect timeout, plus generous room for a loaded machine (the call
    // deadline is 10 s: a call held by a black hole would take that long).
    assert.ok(
      slowest <= connectTimeout + 2500,
      `slowest call took ${slowest} ms`,
    );
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
    timeout: 2000,
  });
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await assert.rejects(
      channel.call("echo", [1]),
      (error: unknown) =>
        error instanceof NoServersError &&
        /all 2 members failing/.test(error.message) &&
        /Connection refused|refused/i.test(error.message),
    );
    assert.ok(performance.now() - started < 1500, "waited instead of trying");
  }
  assert.ok(channel.endpoints().every((e) => e.state === "ejected"));
  // No self-inflicted outage: with every member ejected, a call still tries,
  // and succeeds as soon as one is back.
  const revived = Deno.listen({ hostname: HOST, port: ports[0]! });
  revived.close();
  const { serve } = await import("../src/server.ts");
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
    const started = performance.now();
    await assert.rejects(
      channel.call("echo", [2]),
      (error: unknown) =>
        error instanceof ConnectionError && error.written &&
        /no answer to a ping/.test(error.message),
    );
    // keepaliveInterval + keepaliveTimeout (1 s + 2 s), not the 60 s deadline.
    assert.ok(performance.now() - started < 30_000);
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
