/**
 * A channel's readiness (`src/channel/readiness.ts`) as a unit, with its
 * timers and clock replaced and a scripted membership (no server, no
 * ZooKeeper): the exact reason no server can take a call for each state,
 * how long `ready()` and `waitForPick()` wait (the caller's deadline, a
 * confirmed-empty service at once, an unreachable registry
 * `discoveryTimeout` after its state changed, `waitForReady` until the
 * deadline), waking on a change, and a cancelled wait.
 */
import assert from "node:assert/strict";
import { Readiness } from "../../src/channel/readiness.ts";
import { SubchannelPool } from "../../src/channel/pool.ts";
import { Picker } from "../../src/channel/picker.ts";
import { createBalancer } from "../../src/channel/balancer.ts";
import type { ChannelCall } from "../../src/channel/call.ts";
import type { DiscoveryState } from "../../src/discovery/membership.ts";
import { CancelledError, NoServersError } from "../../src/errors.ts";
import { countedSignal } from "../_core_helpers.ts";
import { type FakeTimer, withFakeTimers } from "../_timers.ts";

const HOST = "127.0.0.1";
const SERVICE = 'service "calc"';

/** A membership whose state, source and last error the test sets. */
class ScriptedMembership extends EventTarget {
  members = new Map();
  state: DiscoveryState = "fresh";
  lastConfirmed: Date | undefined = undefined;
  source?: string;
  lastError: Error | undefined = undefined;
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A readiness over an empty pool (never connected) and `membership`. */
function setup(
  options: { closed?: (what: string) => Error | undefined } = {},
) {
  const membership = new ScriptedMembership();
  const pool = new SubchannelPool({}, {
    onBroken() {},
    onGoaway() {},
    onReregistered() {},
    onRetired() {},
  });
  const picker = new Picker(pool, createBalancer("round-robin"));
  const readiness = new Readiness({
    service: "calc",
    membership,
    pool,
    discoveryTimeout: 500,
    closedError: options.closed ?? (() => undefined),
  });
  const add = (...ports: number[]) =>
    pool.apply({
      added: new Map(ports.map((port) => [`m${port}`, { host: HOST, port }])),
      removed: [],
    }, () => true);
  return {
    membership,
    pool,
    picker,
    readiness,
    add,
    [Symbol.asyncDispose]: () => pool.close(picker.retired),
  };
}

/** Lets queued promise reactions run (the timers are fake). */
async function settled(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** The outcome of `promise` once queued reactions ran, or `"pending"`. */
async function outcome(promise: Promise<unknown>): Promise<unknown> {
  let result: unknown = "pending";
  promise.then((value) => result = { value }, (error) => result = { error });
  await settled();
  return result;
}

/** The live (not cleared) timers' delays. */
function armed(timers: FakeTimer[]): number[] {
  return timers.filter((t) => !t.cleared).map((t) => t.ms);
}

/** A call as `waitForPick()` reads it. */
function callOf(
  deadline: number,
  extra: Partial<Pick<ChannelCall, "waitForReady" | "signal">> = {},
): ChannelCall {
  return {
    method: "divide",
    deadline,
    waitForReady: false,
    signal: undefined,
    tried: undefined,
    ...extra,
  } as unknown as ChannelCall;
}

Deno.test("unavailable(): a confirmed-empty service, with and without when it was confirmed", async () => {
  await using rig = setup();
  assert.equal(
    rig.readiness.unavailable(undefined),
    `no servers for ${SERVICE}: it has no registered members`,
  );
  rig.membership.lastConfirmed = new Date(0);
  assert.equal(
    rig.readiness.unavailable(new Error("ignored")),
    `no servers for ${SERVICE}: it has no registered members (list confirmed at 1970-01-01T00:00:00.000Z)`,
  );
});

Deno.test("unavailable(): closed discovery, with its last error if any", async () => {
  await using rig = setup();
  rig.membership.state = "closed";
  assert.equal(
    rig.readiness.unavailable(undefined),
    `no servers for ${SERVICE}: discovery closed`,
  );
  rig.membership.lastError = new Error("session expired");
  assert.equal(
    rig.readiness.unavailable(undefined),
    `no servers for ${SERVICE}: discovery closed (session expired)`,
  );
});

Deno.test("unavailable(): an unreachable registry, named, since when and how long ago, with its last attempt", async () => {
  await withFakeTimers(async (_timers, clock) => {
    clock.now = Date.UTC(2026, 11, 7, 10, 0, 0);
    await using rig = setup();
    rig.membership.state = "connecting";
    clock.now += 2500;
    assert.equal(
      rig.readiness.unavailable(undefined),
      `no servers for ${SERVICE}: the membership source unreachable (discovery connecting since 2026-12-07T10:00:00.000Z, 2.5 s ago)`,
    );
    rig.membership.state = "disconnected";
    rig.membership.source = "ZooKeeper 127.0.0.1:2181";
    rig.readiness.stateChanged();
    clock.now += 1049;
    rig.membership.lastError = new Error("ECONNREFUSED");
    assert.equal(
      rig.readiness.unavailable(undefined),
      `no servers for ${SERVICE}: ZooKeeper 127.0.0.1:2181 unreachable (discovery disconnected since 2026-12-07T10:00:02.500Z, 1.0 s ago; last attempt: ECONNREFUSED)`,
    );
  });
});

Deno.test("unavailable(): members all skipped, one or several, naming the first reason", async () => {
  await using rig = setup();
  rig.readiness.excluded.set("a", "h:1: no TLS");
  assert.equal(
    rig.readiness.unavailable(undefined),
    `no usable servers for ${SERVICE}: all 1 member is skipped (h:1: no TLS)`,
  );
  rig.readiness.excluded.set("b", "h:2: filtered");
  assert.equal(
    rig.readiness.unavailable(undefined),
    `no usable servers for ${SERVICE}: all 2 members are skipped (h:1: no TLS)`,
  );
});

Deno.test("unavailable(): known members all failing, one or several, with the last error", async () => {
  await using rig = setup();
  rig.readiness.excluded.set("a", "skipped");
  rig.add(1);
  assert.equal(
    rig.readiness.unavailable(undefined),
    `no live servers for ${SERVICE}: all 1 member failing`,
  );
  rig.add(2);
  assert.equal(
    rig.readiness.unavailable(new Error("refused")),
    `no live servers for ${SERVICE}: all 2 members failing (last error: refused)`,
  );
});

Deno.test("ready(): an invalid timeout is a RangeError; a known member resolves at once; a closed channel throws its error", async () => {
  let isClosed = false;
  await using rig = setup({
    closed: (what) => isClosed ? new Error(`closed: ${what}`) : undefined,
  });
  await assert.rejects(rig.readiness.ready({ timeout: -1 }, 1000), {
    name: "RangeError",
    message:
      "Cannot wait for servers: timeout must be a number of ms >= 0 or Infinity, got -1",
  });
  isClosed = true;
  await assert.rejects(rig.readiness.ready({ timeout: 10 }, 1000), {
    message: "closed: wait for servers",
  });
  const call = callOf(Date.now() + 1000);
  await assert.rejects(
    rig.readiness.waitForPick(call, undefined, rig.picker),
    { message: 'closed: call method "divide"' },
  );
  rig.add(1);
  // Known members: ready even when closed (nothing to wait for).
  await rig.readiness.ready({ timeout: 0 }, 1000);
  await rig.readiness.ready({}, 0);
});

Deno.test("ready(): a confirmed-empty service waits out the timeout (the channel's without one), to the millisecond", async () => {
  await withFakeTimers(async (timers, clock) => {
    await using rig = setup();
    const waiting = rig.readiness.ready({ timeout: 100 }, 60_000);
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [100]);
    // A timer firing a millisecond early: armed again for what is left.
    clock.now += 99;
    timers[0]!.fire();
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [1]);
    clock.now += 1;
    timers[1]!.fire();
    const result = await outcome(waiting) as { error: NoServersError };
    assert.ok(result.error instanceof NoServersError);
    assert.equal(result.error.service, "calc");
    assert.equal(
      result.error.message,
      `Cannot find servers: no servers for ${SERVICE}: it has no registered members`,
    );
    // No timeout: the channel's.
    const channels = rig.readiness.ready({}, 700);
    assert.equal(await outcome(channels), "pending");
    assert.deepEqual(armed(timers), [700]);
    clock.now += 700;
    timers[2]!.fire();
    assert.ok((await outcome(channels) as { error: unknown }).error);
    // A timeout of 0: at once, no timer.
    await assert.rejects(
      rig.readiness.ready({ timeout: 0 }, 700),
      NoServersError,
    );
    assert.equal(timers.length, 3);
  });
});

Deno.test("ready(): an unreachable registry fails after discoveryTimeout from its last state change, unless a timeout is given", async () => {
  await withFakeTimers(async (timers, clock) => {
    await using rig = setup();
    rig.membership.state = "connecting";
    clock.now += 200;
    const waiting = rig.readiness.ready({}, 60_000);
    assert.equal(await outcome(waiting), "pending");
    // discoveryTimeout (500) counted from the readiness's start.
    assert.deepEqual(armed(timers), [300]);
    // The state changes: waiters wake, the 500 ms start again.
    clock.now += 100;
    rig.membership.state = "disconnected";
    rig.readiness.stateChanged();
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [500]);
    clock.now += 500;
    timers.at(-1)!.fire();
    const result = await outcome(waiting) as { error: Error };
    assert.match(result.error.message, /^Cannot find servers: .*unreachable/);
    // The channel's timeout, when shorter, comes first.
    rig.readiness.stateChanged();
    const short = rig.readiness.ready({}, 50);
    assert.equal(await outcome(short), "pending");
    assert.deepEqual(armed(timers), [50]);
    clock.now += 50;
    timers.at(-1)!.fire();
    assert.ok((await outcome(short) as { error: unknown }).error);
    // An explicit timeout is waited out whatever the registry does.
    const explicit = rig.readiness.ready({ timeout: 2000 }, 50);
    assert.equal(await outcome(explicit), "pending");
    assert.deepEqual(armed(timers), [2000]);
    rig.readiness.wake();
    assert.equal(await outcome(explicit), "pending");
    rig.add(1);
    rig.readiness.wake();
    assert.deepEqual(await outcome(explicit), { value: undefined });
    assert.deepEqual(armed(timers), []);
  });
});

Deno.test("ready(): closed discovery fails at once; skipped members wait out the deadline", async () => {
  await withFakeTimers(async (timers) => {
    await using rig = setup();
    rig.membership.state = "closed";
    await assert.rejects(rig.readiness.ready({}, 60_000), /discovery closed/);
    assert.equal(timers.length, 0);
    rig.membership.state = "connecting";
    rig.readiness.excluded.set("a", "h:1: filtered");
    const { controller, listeners } = countedSignal();
    const waiting = rig.readiness.ready({ signal: controller.signal }, 900);
    assert.equal(listeners(), 1);
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [900]);
    rig.readiness.excluded.clear();
    rig.add(1);
    rig.readiness.wake();
    assert.deepEqual(await outcome(waiting), { value: undefined });
    assert.equal(listeners(), 0, "the caller's signal is let go");
  });
});

Deno.test("ready(): a cancelled wait rejects with CancelledError carrying the reason and lets go of its timer", async () => {
  await withFakeTimers(async (timers) => {
    await using rig = setup();
    const controller = new AbortController();
    const waiting = rig.readiness.ready({ signal: controller.signal }, 5000);
    assert.equal(await outcome(waiting), "pending");
    const reason = new Error("user gave up");
    controller.abort(reason);
    const result = await outcome(waiting) as { error: CancelledError };
    assert.ok(result.error instanceof CancelledError);
    assert.equal(result.error.message, "Cannot wait for servers: cancelled");
    assert.equal(result.error.cause, reason);
    assert.deepEqual(armed(timers), []);
    // Woken after the cancel: nothing happens twice.
    rig.readiness.wake();
  });
});

Deno.test("ready(): a wait closed by the channel rejects with the channel's error when woken", async () => {
  await withFakeTimers(async () => {
    const closed = new Error("closed channel");
    let isClosed = false;
    await using rig = setup({ closed: () => isClosed ? closed : undefined });
    const waiting = rig.readiness.ready({ timeout: 5000 }, 5000);
    assert.equal(await outcome(waiting), "pending");
    isClosed = true;
    rig.readiness.wake();
    assert.deepEqual(await outcome(waiting), { error: closed });
  });
});

Deno.test("waitForPick(): without waitForReady a confirmed-empty service fails at once, with the last error as cause", async () => {
  await withFakeTimers(async (timers, clock) => {
    await using rig = setup();
    const lastError = new Error("refused");
    const call = callOf(clock.now + 5000);
    const result = await outcome(
      rig.readiness.waitForPick(call, lastError, rig.picker),
    ) as { error: NoServersError };
    assert.ok(result.error instanceof NoServersError);
    assert.equal(
      result.error.message,
      `Cannot call method "divide": no servers for ${SERVICE}: it has no registered members`,
    );
    assert.equal(result.error.cause, lastError);
    const plain = await outcome(
      rig.readiness.waitForPick(call, undefined, rig.picker),
    ) as { error: NoServersError };
    assert.equal("cause" in plain.error, false, "no cause without an error");
    assert.equal(timers.length, 0);
  });
});

Deno.test("waitForPick(): waitForReady waits until the deadline, then names the failing members", async () => {
  await withFakeTimers(async (timers, clock) => {
    await using rig = setup();
    const call = callOf(clock.now + 300, { waitForReady: true });
    const waiting = rig.readiness.waitForPick(call, undefined, rig.picker);
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [300]);
    clock.now += 299;
    timers[0]!.fire();
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [1]);
    clock.now += 1;
    timers[1]!.fire();
    const result = await outcome(waiting) as { error: NoServersError };
    assert.equal(
      result.error.message,
      `Cannot call method "divide": no servers for ${SERVICE}: it has no registered members`,
    );
  });
});

Deno.test("waitForPick(): a member that appears is picked; a wake with nothing to pick waits on", async () => {
  await withFakeTimers(async (timers, clock) => {
    await using rig = setup();
    const call = callOf(clock.now + 1000, { waitForReady: true });
    const waiting = rig.readiness.waitForPick(call, undefined, rig.picker);
    assert.equal(await outcome(waiting), "pending");
    rig.readiness.wake();
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [1000]);
    rig.add(7);
    rig.readiness.wake();
    const result = await outcome(waiting) as {
      value: { subchannel: { key: string }; onCallEnded(o: string): void };
    };
    assert.equal(result.value.subchannel.key, `${HOST}:7`);
    result.value.onCallEnded("ok");
    assert.deepEqual(armed(timers), []);
  });
});

Deno.test("waitForPick(): an unreachable registry gives up discoveryTimeout after its state changed; waitForReady waits on", async () => {
  await withFakeTimers(async (timers, clock) => {
    await using rig = setup();
    rig.membership.state = "resyncing";
    rig.readiness.stateChanged();
    const call = callOf(clock.now + 60_000);
    const waiting = rig.readiness.waitForPick(call, undefined, rig.picker);
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [500]);
    clock.now += 500;
    timers[0]!.fire();
    const result = await outcome(waiting) as { error: Error };
    assert.match(
      result.error.message,
      /unreachable \(discovery resyncing since/,
    );
    const patient = rig.readiness.waitForPick(
      callOf(clock.now + 60_000, { waitForReady: true }),
      undefined,
      rig.picker,
    );
    assert.equal(await outcome(patient), "pending");
    assert.deepEqual(armed(timers), [60_000]);
    // Closed discovery ends even a waitForReady wait.
    rig.membership.state = "closed";
    rig.readiness.stateChanged();
    assert.match(
      String((await outcome(patient) as { error: Error }).error),
      /discovery closed/,
    );
  });
});

Deno.test("waitForPick(): a known pool with nothing to pick waits until the deadline even without waitForReady", async () => {
  await withFakeTimers(async (timers, clock) => {
    await using rig = setup();
    rig.add(1);
    // Its only endpoint draining: nothing to pick.
    for (const subchannel of rig.pool.subchannels()) subchannel.draining = true;
    rig.pool.changed();
    const call = callOf(clock.now + 400);
    const waiting = rig.readiness.waitForPick(call, new Error("x"), rig.picker);
    assert.equal(await outcome(waiting), "pending");
    assert.deepEqual(armed(timers), [400]);
    clock.now += 400;
    timers[0]!.fire();
    const result = await outcome(waiting) as { error: Error };
    assert.equal(
      result.error.message,
      `Cannot call method "divide": no live servers for ${SERVICE}: all 1 member failing (last error: x)`,
    );
  });
});

Deno.test("waitForPick(): cancelled or closed while waiting", async () => {
  await withFakeTimers(async (timers, clock) => {
    const closed = new Error("closed channel");
    let isClosed = false;
    await using rig = setup({ closed: () => isClosed ? closed : undefined });
    const controller = new AbortController();
    const call = callOf(clock.now + 1000, {
      waitForReady: true,
      signal: controller.signal,
    });
    const waiting = rig.readiness.waitForPick(call, undefined, rig.picker);
    assert.equal(await outcome(waiting), "pending");
    controller.abort(new Error("stop"));
    const result = await outcome(waiting) as { error: CancelledError };
    assert.ok(result.error instanceof CancelledError);
    assert.equal(
      result.error.message,
      'Cannot call method "divide": cancelled',
    );
    assert.deepEqual(armed(timers), []);
    const other = rig.readiness.waitForPick(
      callOf(clock.now + 1000, { waitForReady: true }),
      undefined,
      rig.picker,
    );
    isClosed = true;
    rig.readiness.wake();
    assert.deepEqual(await outcome(other), { error: closed });
    await assert.rejects(
      rig.readiness.waitForPick(
        callOf(clock.now + 1000),
        undefined,
        rig.picker,
      ),
      (e) => e === closed,
    );
  });
});
