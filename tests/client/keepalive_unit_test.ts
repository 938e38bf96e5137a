/**
 * The client's keepalive (`src/client/_keepalive.ts`) on a fake clock
 * (tests/_timers.ts) and a scripted link: when a silent connection is
 * pinged (calls in flight: every interval; idle: after idleInterval, at its
 * boundary), what a pong and received bytes do, when a peer is declared
 * dead, and the bounded waits while there is evidence it is alive (our ping
 * still queued, this process frozen, a sibling connection hearing from the
 * peer), each at its boundary. Real sockets: tests/keepalive_test.ts.
 */
import assert from "node:assert/strict";
import {
  Keepalive,
  type KeepaliveLink,
  MAX_KEEPALIVE_EXTENSIONS,
} from "../../src/client/_keepalive.ts";
import { FakeClock } from "../_timers.ts";

/** A scripted connection: counts pings, checks and deaths. */
function link(inFlight = 1) {
  const state = {
    inFlight,
    /** The writer batch handed to the socket (`started()`). */
    started: Infinity,
    pings: 0,
    checks: 0,
    deaths: 0,
  };
  const l: KeepaliveLink = {
    inFlight: () => state.inFlight,
    started: () => {
      state.checks++;
      return state.started;
    },
    ping: () => ++state.pings,
    dead: () => void state.deaths++,
  };
  return { state, link: l };
}

let endpoints = 0;
/** A fresh endpoint name: the record of what it heard is per endpoint. */
const endpoint = () => `unit:${++endpoints}`;

const PERIODS = { interval: 100, timeout: 50, idleInterval: 1000 };

Deno.test("keepalive: interval 0 arms no timer and never pings", () => {
  using clock = new FakeClock();
  const { state, link: l } = link();
  const k = new Keepalive(endpoint(), l, { ...PERIODS, interval: 0 });
  clock.advance(10_000);
  assert.equal(clock.timers.length, 0);
  assert.equal(state.pings, 0);
  k.stop();
});

Deno.test("keepalive: with a call in flight, one silent interval sends a ping; no answer within timeout is death", () => {
  using clock = new FakeClock();
  const { state, link: l } = link();
  const k = new Keepalive(endpoint(), l, PERIODS);
  assert.deepEqual(clock.pending.map((t) => t.ms), [100]);
  clock.advance(99);
  assert.equal(state.pings, 0);
  clock.advance(1);
  assert.equal(state.pings, 1);
  // Next check after `timeout`.
  assert.deepEqual(clock.pending.map((t) => t.ms), [50]);
  clock.advance(49);
  assert.equal(state.deaths, 0);
  clock.advance(1);
  assert.equal(state.deaths, 1);
  assert.equal(state.checks, 1);
  // Dead: no more timers, no more pings.
  assert.equal(clock.pending.length, 0);
  clock.advance(10_000);
  assert.deepEqual([state.pings, state.deaths], [1, 1]);
  k.stop();
});

Deno.test("keepalive: a connection that receives every interval is never pinged", () => {
  using clock = new FakeClock();
  const { state, link: l } = link();
  const k = new Keepalive(endpoint(), l, PERIODS);
  for (let i = 0; i < 20; i++) {
    k.received();
    clock.advance(100);
  }
  assert.equal(state.pings, 0);
  assert.deepEqual(clock.pending.map((t) => t.ms), [100]);
  // Silent from now: pinged at the next tick.
  clock.advance(100);
  assert.equal(state.pings, 1);
  k.stop();
  assert.equal(clock.pending.length, 0);
});

Deno.test("keepalive: bytes received after a ping answer it; the next silent interval pings again", () => {
  using clock = new FakeClock();
  const { state, link: l } = link();
  const k = new Keepalive(endpoint(), l, PERIODS);
  clock.advance(100);
  assert.equal(state.pings, 1);
  k.received();
  clock.advance(50); // the check: alive, re-armed for an interval
  assert.equal(state.deaths, 0);
  assert.deepEqual(clock.pending.map((t) => t.ms), [100]);
  clock.advance(100);
  assert.equal(state.pings, 2);
  clock.advance(50);
  assert.equal(state.deaths, 1);
  k.stop();
});

Deno.test("keepalive: a pong alone ends the wait for it: no death, a new ping right away while calls wait", () => {
  using clock = new FakeClock();
  const { state, link: l } = link();
  const k = new Keepalive(endpoint(), l, PERIODS);
  clock.advance(100);
  assert.equal(state.pings, 1);
  k.pong();
  clock.advance(50);
  assert.equal(state.deaths, 0);
  assert.equal(state.pings, 2);
  assert.deepEqual(clock.pending.map((t) => t.ms), [50]);
  clock.advance(50);
  assert.equal(state.deaths, 1);
  k.stop();
});

Deno.test("keepalive: an idle connection is pinged after idleInterval of silence, not one tick before", () => {
  using clock = new FakeClock();
  const { state, link: l } = link(0);
  const k = new Keepalive(endpoint(), l, { ...PERIODS, idleInterval: 300 });
  clock.advance(200);
  assert.equal(state.pings, 0);
  clock.advance(100);
  assert.equal(state.pings, 1);
  k.received();
  clock.advance(50); // answered: the silence counts from zero again
  clock.advance(200);
  assert.equal(state.pings, 1);
  clock.advance(100);
  assert.equal(state.pings, 2);
  k.stop();
  // Bytes in between restart the count too.
  const second = link(0);
  const k2 = new Keepalive(endpoint(), second.link, {
    ...PERIODS,
    idleInterval: 250,
  });
  clock.advance(200);
  k2.received();
  clock.advance(100); // the tick that read the bytes
  clock.advance(200);
  assert.equal(second.state.pings, 0);
  clock.advance(100); // 3 silent ticks: 300 >= 250
  assert.equal(second.state.pings, 1);
  k2.stop();
});

Deno.test("keepalive: a ping still queued behind our output is waited for, at most MAX_KEEPALIVE_EXTENSIONS timeouts", () => {
  using clock = new FakeClock();
  const { state, link: l } = link();
  state.started = 0; // the ping's batch (1) never reaches the socket
  const k = new Keepalive(endpoint(), l, PERIODS);
  clock.advance(100);
  for (let i = 1; i <= MAX_KEEPALIVE_EXTENSIONS; i++) {
    clock.advance(50);
    assert.equal(state.checks, i);
    assert.equal(state.deaths, 0, `check ${i}`);
    assert.deepEqual(clock.pending.map((t) => t.ms), [50]);
  }
  clock.advance(50);
  assert.equal(state.checks, MAX_KEEPALIVE_EXTENSIONS + 1);
  assert.equal(state.deaths, 1);
  assert.equal(state.pings, 1);
  k.stop();
});

Deno.test("keepalive: a queued ping that reaches the socket and is answered keeps the connection, and the next ping gets every extension again", () => {
  using clock = new FakeClock();
  const { state, link: l } = link();
  state.started = 0;
  const k = new Keepalive(endpoint(), l, PERIODS);
  clock.advance(100 + 3 * 50);
  assert.equal(state.checks, 3);
  // The batch of ping 1 reached the socket: not "unsent" any more.
  state.started = 1;
  k.received();
  clock.advance(50);
  assert.equal(state.deaths, 0);
  // Ping 2 is queued again: all the extensions again.
  state.started = 1;
  clock.advance(100);
  assert.equal(state.pings, 2);
  clock.advance(50 * MAX_KEEPALIVE_EXTENSIONS);
  assert.equal(state.deaths, 0);
  clock.advance(50);
  assert.equal(state.deaths, 1);
  k.stop();
});

Deno.test("keepalive: a check that runs more than timeout late (this process froze) is no evidence against the peer", () => {
  for (const [lag, extended] of [[50, false], [51, true]] as const) {
    using clock = new FakeClock();
    const { state, link: l } = link();
    let extra = 0;
    const k = new Keepalive(endpoint(), l, {
      ...PERIODS,
      now: () => performance.now() + extra,
    });
    clock.advance(100);
    extra += lag; // the check reads the clock `lag` ms after its due time
    clock.advance(50);
    assert.equal(state.deaths, extended ? 0 : 1, `lag ${lag}`);
    if (extended) {
      // Bounded: late every time, dead after the last extension.
      for (let i = 0; i < MAX_KEEPALIVE_EXTENSIONS; i++) {
        extra += lag;
        clock.advance(50);
      }
      assert.equal(state.deaths, 1);
      assert.equal(state.checks, MAX_KEEPALIVE_EXTENSIONS + 1);
    }
    k.stop();
  }
});

Deno.test("keepalive: a sibling connection to the same endpoint hearing from the peer extends the wait, once per new hearing, boundedly", () => {
  using clock = new FakeClock();
  const name = endpoint();
  const silent = link();
  const sibling = link();
  const k = new Keepalive(name, silent.link, PERIODS);
  const other = new Keepalive(name, sibling.link, { ...PERIODS, interval: 0 });
  clock.advance(100);
  assert.equal(silent.state.pings, 1);
  for (let i = 1; i <= MAX_KEEPALIVE_EXTENSIONS; i++) {
    other.received();
    clock.advance(50);
    assert.equal(silent.state.deaths, 0, `check ${i}`);
  }
  other.received();
  clock.advance(50);
  assert.equal(silent.state.deaths, 1);
  assert.equal(silent.state.checks, MAX_KEEPALIVE_EXTENSIONS + 1);
  k.stop();
  other.stop();

  // One hearing is evidence for one check only.
  const once = link();
  const name2 = endpoint();
  const k2 = new Keepalive(name2, once.link, PERIODS);
  const other2 = new Keepalive(name2, link().link, { ...PERIODS, interval: 0 });
  clock.advance(100);
  other2.received();
  clock.advance(50);
  assert.equal(once.state.deaths, 0);
  clock.advance(50);
  assert.equal(once.state.deaths, 1);
  assert.equal(once.state.checks, 2);
  k2.stop();
  other2.stop();

  // Another endpoint's reads are no evidence.
  const alone = link();
  const k3 = new Keepalive(endpoint(), alone.link, PERIODS);
  const stranger = new Keepalive(endpoint(), link().link, {
    ...PERIODS,
    interval: 0,
  });
  clock.advance(100);
  stranger.received();
  clock.advance(50);
  assert.equal(alone.state.deaths, 1);
  k3.stop();
  stranger.stop();
});

Deno.test("keepalive: stop() clears the timer and is idempotent: the endpoint's record stays shared while a connection uses it", () => {
  using clock = new FakeClock();
  const name = endpoint();
  const watched = link();
  const k = new Keepalive(name, watched.link, PERIODS);
  const b = new Keepalive(name, link().link, { ...PERIODS, interval: 0 });
  b.stop();
  b.stop(); // twice: must not drop the record k still uses
  const c = new Keepalive(name, link().link, { ...PERIODS, interval: 0 });
  clock.advance(100);
  c.received(); // heard through the shared record
  clock.advance(50);
  assert.equal(watched.state.deaths, 0);
  k.stop();
  assert.equal(clock.pending.length, 0);
  clock.advance(1000);
  assert.equal(watched.state.pings, 1);
  c.stop();
  // All stopped: a new connection starts with a fresh record; what the
  // stopped ones hear is no evidence for it.
  const d = link();
  const kd = new Keepalive(name, d.link, PERIODS);
  clock.advance(100);
  c.received();
  k.received();
  clock.advance(50);
  assert.equal(d.state.deaths, 1);
  kd.stop();
});

Deno.test("keepalive: by default the clock is performance.now(): a check that runs late extends the wait", () => {
  using clock = new FakeClock();
  const { state, link: l } = link();
  const k = new Keepalive(endpoint(), l, PERIODS);
  clock.advance(100);
  assert.equal(state.pings, 1);
  // The process froze for 200 ms: the check fires that late.
  clock.now += 200;
  clock.advance(0);
  assert.equal(state.checks, 1);
  assert.equal(state.deaths, 0);
  // On time again: dead at the next check.
  clock.advance(50);
  assert.equal(state.deaths, 1);
  k.stop();
});
