/**
 * Discovery at fleet scale (issue #26): what one membership change costs each
 * watching channel, measured from ZooKeeper's side of every connection
 * (`ss -tin`: the `bytes_sent` of each of ZooKeeper's client sockets), for N
 * members (named and filled like the registrar's: ~54-byte names, ~120 B of
 * JSON) and M channels, each channel on its own session or all M on one
 * `zooKeeperDiscovery()`. Reports bytes and member reads per add and per
 * remove per channel, the time until every channel saw the change, and a
 * rolling restart (one member leaves and one joins, R times). One more case
 * per N measures the same with child watches (M = 20, a session each), as a
 * ZooKeeper before 3.6 gets them and as every channel did before.
 *
 * Run alone: `deno task bench --only=scale` (`--quick`: N ∈ {10, 1000},
 * M ∈ {1, 20}; else N ∈ {10, 1000, 3000}, M ∈ {1, 20, 100}).
 *
 * @module
 */
import type { BenchContext } from "../context.ts";
import { median, round } from "../stats.ts";
import type { DistributedChannel } from "../../src/channel/channel.ts";
import "../../src/zookeeper/discovery.ts"; // installs the ZooKeeper connector
import {
  type ZooKeeperDiscovery,
  zooKeeperDiscovery,
} from "../../src/zookeeper/discovery.ts";
import {
  ZooKeeperError,
  ZooKeeperSession,
} from "../../src/zookeeper/session.ts";
import type { ZooKeeperMembership } from "../../src/zookeeper/membership.ts";
import { waitUntil } from "./_channel.ts";
import { zooKeeperChannel } from "../../zookeeper.ts";

/** ZooKeeper's client port from a `host:port` connection string. */
function portOf(connectionString: string): number {
  return Number(connectionString.slice(connectionString.lastIndexOf(":") + 1));
}

/**
 * Bytes ZooKeeper has sent on each of its client connections, by the
 * client's port, read with `ss -tin` (TCP info of every socket whose local
 * port is ZooKeeper's).
 */
async function bytesSent(zkPort: number): Promise<Map<number, number>> {
  const output = await new Deno.Command("ss", {
    args: ["-tinH", "state", "established", `( sport = :${zkPort} )`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`ss failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  const sent = new Map<number, number>();
  let peer: number | undefined;
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    const socket = /\s\S+:\d+\s+\S+:(\d+)\s*$/.exec(line);
    if (socket) {
      peer = Number(socket[1]);
      continue;
    }
    const bytes = /bytes_sent:(\d+)/.exec(line);
    if (bytes && peer !== undefined) {
      sent.set(peer, Number(bytes[1]));
      peer = undefined;
    }
  }
  return sent;
}

/** Bytes sent since `before` on the connections not in `exclude`. */
function sentSince(
  before: Map<number, number>,
  after: Map<number, number>,
  exclude: Set<number>,
): number {
  let total = 0;
  for (const [port, bytes] of after) {
    if (exclude.has(port)) continue;
    total += bytes - (before.get(port) ?? 0);
  }
  return total;
}

/** A member's data as the registrar writes it (~120 B of JSON). */
function memberData(port: number): string {
  return JSON.stringify({
    host: "127.0.0.1",
    port,
    weight: 1,
    protocol: 3,
    startedAt: "2026-12-07T06:00:00.000Z",
    tls: false,
    pid: 100_000 + port,
  });
}

/** A member's name prefix as the registrar writes it (`server-<uuid>-`). */
function memberPrefix(path: string): string {
  return `${path}/server-${crypto.randomUUID()}-`;
}

interface Case {
  members: number;
  channels: number;
  shared: boolean;
  /**
   * Child watches instead of the persistent watch (what a ZooKeeper before
   * 3.6 gets, and what every channel did before): each session's `addWatch`
   * answers `UNIMPLEMENTED`, as ZooKeeper 3.5 would.
   */
  legacy: boolean;
}

/** Makes `session` answer `addWatch` as a ZooKeeper before 3.6 does. */
function withoutAddWatch(session: ZooKeeperSession): void {
  session.addWatch = (path) =>
    Promise.reject(
      new ZooKeeperError("UNIMPLEMENTED", `Cannot watch "${path}"`),
    );
}

/**
 * Runs the scale scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  const zk = await context.zookeeper();
  const zkPort = portOf(zk.connectionString);
  await bytesSent(zkPort); // fails early without `ss`
  const sizes = context.quick ? [10, 1000] : [10, 1000, 3000];
  const fanouts = context.quick ? [1, 20] : [1, 20, 100];
  await using admin = await ZooKeeperSession.connect(zk.connectionString, {
    operationTimeout: 30_000,
    sessionTimeout: 30_000,
  });
  // The admin's own connection is not a watching channel's.
  const adminPorts = new Set((await bytesSent(zkPort)).keys());
  for (const members of sizes) {
    const path = `/rpc/bench-scale-${members}`;
    await admin.mkdirp(path);
    for (let i = 0; i < members; i += 200) {
      const batch = Math.min(200, members - i);
      await Promise.all(
        Array.from(
          { length: batch },
          (_, j) =>
            admin.create(memberPrefix(path), memberData(20_000 + i + j), {
              mode: "persistent_sequential",
            }),
        ),
      );
    }
    for (const channels of fanouts) {
      for (const shared of channels === 1 ? [false] : [false, true]) {
        await measure(context, admin, adminPorts, zk.connectionString, path, {
          members,
          channels,
          shared,
          legacy: false,
        });
      }
    }
    // The same change with child watches, for comparison.
    await measure(context, admin, adminPorts, zk.connectionString, path, {
      members,
      channels: 20,
      shared: false,
      legacy: true,
    });
  }
}

async function measure(
  context: BenchContext,
  admin: ZooKeeperSession,
  adminPorts: Set<number>,
  connectionString: string,
  path: string,
  { members, channels, shared, legacy }: Case,
): Promise<void> {
  const zkPort = portOf(connectionString);
  const service = path.slice("/rpc/".length);
  const discovery = shared
    ? zooKeeperDiscovery({ zookeeper: connectionString })
    : undefined;
  const legacySessions: ZooKeeperDiscovery[] = [];
  const opened: DistributedChannel[] = [];
  let count = members;
  const converged = () =>
    opened.every((c) => c.membership.members.size === count);
  const reads = () =>
    opened.reduce(
      (sum, c) =>
        sum + ((c.membership as ZooKeeperMembership).dataReads ?? 0) /
          (shared ? channels : 1),
      0,
    );
  try {
    const start = performance.now();
    for (let i = 0; i < channels; i++) {
      if (legacy) {
        const own = zooKeeperDiscovery({ zookeeper: connectionString });
        legacySessions.push(own);
        withoutAddWatch(await own.keeper.current());
        opened.push(own.channel(service));
        continue;
      }
      opened.push(
        discovery?.channel(service) ??
          zooKeeperChannel({ zookeeper: connectionString, service }),
      );
    }
    if (!await waitUntil(converged, 120_000, 5)) {
      throw new Error(`channels never saw the ${members} members`);
    }
    const initialSyncMs = performance.now() - start;
    const mode = (opened[0]?.membership as ZooKeeperMembership).watchMode;
    const trials = context.quick ? 3 : 5;
    const adds: number[] = [];
    const removes: number[] = [];
    const addReads: number[] = [];
    const removeReads: number[] = [];
    const addMs: number[] = [];
    const removeMs: number[] = [];
    const change = async (
      apply: () => Promise<void>,
      bytes: number[],
      readCounts: number[],
      times: number[],
    ) => {
      const before = await bytesSent(zkPort);
      const readsBefore = reads();
      const started = performance.now();
      await apply();
      if (!await waitUntil(converged, 60_000)) {
        throw new Error("channels never converged after a change");
      }
      times.push(performance.now() - started);
      const after = await bytesSent(zkPort);
      bytes.push(sentSince(before, after, adminPorts) / channels);
      readCounts.push((reads() - readsBefore) / channels);
    };
    for (let i = 0; i < trials; i++) {
      let created = "";
      await change(
        async () => {
          count++;
          created = await admin.create(memberPrefix(path), memberData(30_000), {
            mode: "persistent_sequential",
          });
        },
        adds,
        addReads,
        addMs,
      );
      await change(
        async () => {
          count--;
          await admin.delete(created);
        },
        removes,
        removeReads,
        removeMs,
      );
    }
    // Rolling restart: R members leave and join again, one after another.
    const restarts = Math.min(context.quick ? 10 : 100, members);
    const names = (await admin.getChildren(path)).slice(0, restarts);
    const before = await bytesSent(zkPort);
    const rollStart = performance.now();
    for (const name of names) {
      await admin.delete(`${path}/${name}`);
      await admin.create(memberPrefix(path), memberData(40_000), {
        mode: "persistent_sequential",
      });
    }
    if (!await waitUntil(converged, 120_000)) {
      throw new Error("channels never converged after the rolling restart");
    }
    const rollMs = performance.now() - rollStart;
    const rollBytes = sentSince(before, await bytesSent(zkPort), adminPorts);
    context.report.add({
      scenario: "scale",
      label: `N=${members} M=${channels} ${
        shared ? "one shared session" : "a session per channel"
      }, ${mode ?? "unknown"} watch`,
      figures: {
        members,
        channels,
        shared_session: shared ? 1 : 0,
        child_watches: legacy ? 1 : 0,
        persistent_watch: mode === "persistent" ? 1 : 0,
        initial_sync_ms: round(initialSyncMs),
        bytes_per_add_per_channel: round(median(adds)),
        bytes_per_remove_per_channel: round(median(removes)),
        reads_per_add_per_channel: round(median(addReads), 3),
        reads_per_remove_per_channel: round(median(removeReads), 3),
        add_converge_ms: round(median(addMs)),
        remove_converge_ms: round(median(removeMs)),
        rolling_restart_members: restarts,
        rolling_restart_bytes_per_channel: round(rollBytes / channels),
        rolling_restart_ms: round(rollMs),
      },
      vsCeiling: {},
    });
  } finally {
    await Promise.allSettled(opened.map((c) => c.close()));
    await discovery?.close();
    await Promise.allSettled(legacySessions.map((d) => d.close()));
  }
}
