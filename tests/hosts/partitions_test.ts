/**
 * Partitions under load on simulated hosts (Jepsen-style, one machine): a
 * 3-member ZooKeeper ensemble on three hosts, three servers on three more
 * (bound to `0.0.0.0`, advertising their host address), and a load client on
 * a seventh. Each scenario cuts the network with `iptables` DROP rules (no
 * RST, silence), holds the partition, heals it, and reports calls, failures
 * by class, the longest gap between successes, and the convergence time.
 *
 * Run with `deno task test:hosts` (root, `ip`, `iptables`); the figures are
 * in docs/partitions.md. Timing knobs: {@linkcode TIMING}.
 *
 * @module
 */
import assert from "node:assert/strict";
import { delay } from "../_core_helpers.ts";
import { waitFor } from "../_discovery_helpers.ts";
import { fourLetterWord } from "../../src/testing/four_letter_word.ts";
import { Cluster, type LoadClient, TIMING } from "./_cluster.ts";
import type { LoadStatus } from "./_load_client.ts";
import { hostsSkipReason } from "./_network.ts";

const skip = hostsSkipReason();
if (skip !== undefined) console.warn(`tests/hosts: ignored: ${skip}`);

/** What one scenario measured. */
interface Report {
  scenario: string;
  calls: number;
  ok: number;
  failedIdempotent: Record<string, number>;
  failedOther: Record<string, number>;
  longestGapMs: number;
  /** From the cut until the fault was detected/handled, ms. */
  detectMs?: number;
  /** From the heal until the cluster converged, ms. */
  convergenceMs?: number;
  /** Slowest failed non-idempotent call, ms. */
  slowestFailureMs?: number;
}

const reports: Report[] = [];

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

function report(
  scenario: string,
  client: LoadClient,
  extra: Partial<Report>,
): Report {
  const window = client.status!.window;
  const failures = client.failures.filter((f) => !f.idempotent);
  const entry: Report = {
    scenario,
    calls: window.started,
    ok: window.ok,
    failedIdempotent: window.failed.idempotent,
    failedOther: window.failed.other,
    longestGapMs: Math.round(window.longestGap),
    ...(failures.length === 0
      ? {}
      : { slowestFailureMs: Math.max(...failures.map((f) => f.ms)) }),
    ...extra,
  };
  reports.push(entry);
  console.log(`hosts-report ${JSON.stringify(entry)}`);
  return entry;
}

function endpointOf(status: LoadStatus, host: string) {
  return status.endpoints.find((e) => e.host === host);
}

/** Heals, waits until 3 members are registered and used, opens a new window. */
async function settle(cluster: Cluster, client: LoadClient): Promise<void> {
  await cluster.net.heal();
  await cluster.waitForMembers(3, 60_000);
  const hosts = ["s1", "s2", "s3"].map((h) => cluster.net.host(h).address);
  await client.until(
    (s) =>
      s.state === "fresh" && s.endpoints.length === 3 &&
      hosts.every((h) => (endpointOf(s, h)?.calls ?? 0) > 0),
    "the client to use all three servers",
    60_000,
  );
  await client.reset();
}

/**
 * Idempotent calls: none failed. Non-idempotent calls: only "may have run"
 * failures (calls in flight on the cut connection), each ended by keepalive
 * before the call's deadline.
 */
function assertOnlyCutPathFailures(r: Report): void {
  assert.equal(total(r.failedIdempotent), 0);
  assert.deepEqual(
    Object.keys(r.failedOther).filter((k) =>
      k !== "ConnectionError:may-have-run"
    ),
    [],
    "non-idempotent calls fail only as may-have-run (in flight on the cut path)",
  );
  assert.ok(
    (r.slowestFailureMs ?? 0) < TIMING.callTimeout,
    "by keepalive, not the deadline",
  );
}

const CONVERGENCE_BOUND = TIMING.sessionTimeout + TIMING.margin;

Deno.test({
  name: "Partitions under load: 0 failed idempotent calls, bounded convergence",
  ignore: skip !== undefined,
  async fn(t) {
    await using cluster = await Cluster.start(["s4"]);
    const { net } = cluster;
    const client = await cluster.startClient("c1");
    const zks = ["zk1", "zk2", "zk3"];

    await t.step(
      "1. server ↔ ZooKeeper: the node expires, clients move away, one re-registration on heal",
      async () => {
        await settle(cluster, client);
        const address = net.host("s1").address;
        const before = (await cluster.members()).find((m) =>
          m.host === address
        )!;
        const cutAt = performance.now();
        for (const zk of zks) await net.cut("s1", zk);
        await waitFor(
          async () =>
            !(await cluster.members()).some((m) => m.node === before.node),
          "s1's node to expire",
          CONVERGENCE_BOUND,
        );
        const detectMs = Math.round(performance.now() - cutAt);
        await client.until(
          (s) => endpointOf(s, address) === undefined,
          "the client to drop s1",
          5000,
        );
        // sleep-ok: a partition or heal held for its scenario time
        await delay(
          Math.max(0, TIMING.partition - (performance.now() - cutAt)),
        );
        await net.heal();
        const healedAt = performance.now();
        await client.until(
          (s) => (endpointOf(s, address)?.calls ?? 0) > 0,
          "the client to call s1 again",
          CONVERGENCE_BOUND,
        );
        const convergenceMs = Math.round(performance.now() - healedAt);
        const after = (await cluster.members()).filter((m) =>
          m.host === address
        );
        assert.equal(after.length, 1, "s1 registered once, no duplicate");
        assert.equal(after[0]!.pid, before.pid, "the same server process");
        assert.notEqual(after[0]!.node, before.node, "under a new node");
        const r = report("1 server<->zk", client, { detectMs, convergenceMs });
        assert.equal(total(r.failedIdempotent), 0);
        assert.equal(total(r.failedOther), 0, "no call was on a cut path");
        // clock-ok: convergence within the session timeout plus a margin is the property this host-level suite (run on request) measures
        assert.ok(convergenceMs <= CONVERGENCE_BOUND);
      },
    );

    await t.step(
      "2. server ↔ client: calls fail over within the keepalive bound; the endpoint is re-admitted on heal",
      async () => {
        await settle(cluster, client);
        const address = net.host("s2").address;
        await net.cut("s2", "c1");
        // sleep-ok: the partition lasts this long: its length is the scenario
        await delay(TIMING.partition);
        const callsAtHeal = endpointOf(client.status!, address)?.calls ?? 0;
        await net.heal();
        const healedAt = performance.now();
        await client.until(
          (s) => (endpointOf(s, address)?.calls ?? 0) > callsAtHeal,
          "the client to call s2 again",
          CONVERGENCE_BOUND,
        );
        const convergenceMs = Math.round(performance.now() - healedAt);
        const r = report("2 server<->client", client, { convergenceMs });
        assertOnlyCutPathFailures(r);
        // clock-ok: convergence within the session timeout plus a margin is the property this host-level suite (run on request) measures
        assert.ok(convergenceMs <= CONVERGENCE_BOUND);
      },
    );

    await t.step(
      "3. client ↔ ZooKeeper: the client keeps calling its cached endpoints, 0 failed, resyncs on heal",
      async () => {
        await settle(cluster, client);
        const cutAt = performance.now();
        for (const zk of zks) await net.cut("c1", zk);
        await client.until(
          (s) => s.state !== "fresh",
          "the client's discovery to leave fresh",
          CONVERGENCE_BOUND,
        );
        const detectMs = Math.round(performance.now() - cutAt);
        const cached = client.status!.state;
        // sleep-ok: a partition or heal held for its scenario time
        await delay(
          Math.max(0, TIMING.partition - (performance.now() - cutAt)),
        );
        assert.equal(
          client.status!.endpoints.length,
          3,
          "the cached list is kept",
        );
        await net.heal();
        const healedAt = performance.now();
        await client.until(
          (s) => s.state === "fresh",
          "resync",
          CONVERGENCE_BOUND,
        );
        const convergenceMs = Math.round(performance.now() - healedAt);
        const r = report("3 client<->zk", client, { detectMs, convergenceMs });
        assert.equal(cached, "disconnected", "state says cached");
        assert.equal(total(r.failedIdempotent), 0);
        assert.equal(total(r.failedOther), 0);
        // clock-ok: convergence within the session timeout plus a margin is the property this host-level suite (run on request) measures
        assert.ok(convergenceMs <= CONVERGENCE_BOUND);
      },
    );

    await t.step(
      "4. ZooKeeper minority: sessions on the cut member move to the majority, 0 failed",
      async () => {
        await settle(cluster, client);
        const attached = async (zk: string) => {
          const answer = await fourLetterWord(
            { hostname: net.host(zk).address, port: 2181 },
            "cons",
            { timeout: 1000 },
          ).catch(() => "");
          return ["s1", "s2", "s3", "c1"].filter((h) =>
            answer.includes(`/${net.host(h).address}:`)
          );
        };
        const counts = await Promise.all(zks.map(attached));
        const index = counts.reduce(
          (best, c, i) => c.length > counts[best]!.length ? i : best,
          0,
        );
        const minority = zks[index]!;
        const moving = counts[index]!;
        const nodes = (await cluster.members()).map((m) => m.node).sort();
        const cutAt = performance.now();
        for (const zk of zks) if (zk !== minority) await net.cut(minority, zk);
        const majority = zks.filter((zk) => zk !== minority);
        await waitFor(
          async () => {
            const now = (await Promise.all(majority.map(attached))).flat();
            return moving.every((h) => now.includes(h));
          },
          `sessions of ${moving} to move off ${minority}`,
          CONVERGENCE_BOUND,
        );
        const detectMs = Math.round(performance.now() - cutAt);
        // sleep-ok: a partition or heal held for its scenario time
        await delay(
          Math.max(0, TIMING.partition - (performance.now() - cutAt)),
        );
        await net.heal();
        const healedAt = performance.now();
        const member = cluster.ensemble.members[index]!;
        await waitFor(
          async () => (await member.mode()) !== undefined,
          `${minority} to rejoin`,
          60_000,
        );
        const convergenceMs = Math.round(performance.now() - healedAt);
        const r = report(
          `4 zk minority (${minority}, moved ${moving.join(",")})`,
          client,
          {
            detectMs,
            convergenceMs,
          },
        );
        assert.deepEqual(
          (await cluster.members()).map((m) => m.node).sort(),
          nodes,
          "no session expired: every node is still there",
        );
        assert.equal(total(r.failedIdempotent), 0);
        assert.equal(total(r.failedOther), 0);
      },
    );

    await t.step(
      "5. a server host isolated mid-call: in-flight non-idempotent calls fail as may-have-run, idempotent 0 failed",
      async () => {
        await settle(cluster, client);
        const address = net.host("s3").address;
        const cutAt = performance.now();
        await net.isolate("s3");
        await client.until(
          (s) =>
            endpointOf(s, address) === undefined ||
            endpointOf(s, address)!.state === "ejected",
          "the client to eject s3",
          CONVERGENCE_BOUND,
        );
        const detectMs = Math.round(performance.now() - cutAt);
        // sleep-ok: a partition or heal held for its scenario time
        await delay(
          Math.max(0, TIMING.partition - (performance.now() - cutAt)),
        );
        await net.heal();
        const healedAt = performance.now();
        await client.until(
          (s) =>
            (endpointOf(s, address)?.calls ?? 0) > 0 &&
            s.endpoints.length === 3,
          "the client to call s3 again",
          CONVERGENCE_BOUND,
        );
        const convergenceMs = Math.round(performance.now() - healedAt);
        const r = report("5 server host isolated", client, {
          detectMs,
          convergenceMs,
        });
        assertOnlyCutPathFailures(r);
        // clock-ok: convergence within the session timeout plus a margin is the property this host-level suite (run on request) measures
        assert.ok(convergenceMs <= CONVERGENCE_BOUND);
      },
    );

    await t.step(
      "6. advertised address: a server on a host with two interfaces advertises the one facing ZooKeeper (or the configured one) and is reached from another host",
      async () => {
        await settle(cluster, client);
        const lan = net.host("s4").address;
        // The unreachable interface is listed first, so "the first address"
        // would be the wrong one.
        const other = await net.addInterface("s4", { first: true });
        const listed = await net.exec("s4", [
          Deno.execPath(),
          "eval",
          `console.log(Deno.networkInterfaces().filter((i) => i.family === "IPv4" && i.name !== "lo").map((i) => i.address).join(" "))`,
        ]);
        assert.deepEqual(listed.trim().split(" "), [other, lan]);
        // Automatic: 0.0.0.0 advertises the address on ZooKeeper's network.
        const auto = await cluster.startServer("s4");
        await cluster.waitForMembers(4, 30_000);
        assert.ok((await cluster.members()).some((m) => m.host === lan));
        await client.until(
          (s) => (endpointOf(s, lan)?.calls ?? 0) > 0,
          "the client to call s4 at its advertised address",
          CONVERGENCE_BOUND,
        );
        await auto.stop();
        await cluster.waitForMembers(3, 30_000);
        // Configured: --advertised-host wins over the interfaces.
        const configured = await cluster.startServer("s4", [
          "--advertised-host",
          lan,
        ]);
        await cluster.waitForMembers(4, 30_000);
        const hosts = (await cluster.members()).map((m) => m.host);
        assert.ok(hosts.includes(lan) && !hosts.includes(other));
        await client.until(
          (s) => (endpointOf(s, lan)?.calls ?? 0) > 0,
          "the client to call s4 at its configured address",
          CONVERGENCE_BOUND,
        );
        await configured.stop();
        await cluster.waitForMembers(3, 30_000);
        const r = report("6 advertised address", client, {});
        assert.equal(total(r.failedIdempotent), 0);
        assert.equal(total(r.failedOther), 0);
      },
    );

    await client.stop();
    console.table(reports.map((r) => ({
      scenario: r.scenario,
      calls: r.calls,
      ok: r.ok,
      "failed idem": total(r.failedIdempotent),
      "failed other": JSON.stringify(r.failedOther),
      "gap ms": r.longestGapMs,
      "detect ms": r.detectMs ?? "",
      "converge ms": r.convergenceMs ?? "",
      "slowest fail ms": r.slowestFailureMs ?? "",
    })));
  },
});
