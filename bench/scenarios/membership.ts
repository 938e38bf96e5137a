/**
 * Membership scale: 100 members registered (znodes with unreachable ports,
 * never called: channels connect lazily) and 20 channels each with its own
 * ZooKeeper session. Measures member data reads per member on the initial
 * sync, time for one join to reach all 20 channels, and a churn of 50 joins
 * and 50 leaves: data reads per join per channel and time to converge.
 *
 * @module
 */
import { type BenchContext, requireModule } from "../context.ts";
import { median, round } from "../stats.ts";
import {
  type ChannelView,
  dataReads,
  openChannel,
  openRegistrar,
  type RegistrationView,
  waitUntil,
} from "./_channel.ts";

const MEMBERS = 100;
const CHANNELS = 20;
const CHURN = 50;
const BASE_PORT = 40_000;

function hasExactly(channel: ChannelView, ports: Set<number>): boolean {
  const endpoints = channel.endpoints();
  if (endpoints.length !== ports.size) return false;
  return endpoints.every((e) => ports.has(Number(e.key.split(":").pop())));
}

function totalReads(channels: ChannelView[]): number[] {
  return channels.map((c) => dataReads(c) ?? NaN);
}

/**
 * Runs the membership-scale scenario.
 *
 * @param context The bench context.
 */
export async function run(context: BenchContext): Promise<void> {
  await requireModule("mod.ts", "DistributedChannel");
  const zk = await context.zookeeper();
  const service = "bench-membership";
  const registrar = await openRegistrar(zk.connectionString);
  const registrations = new Map<number, RegistrationView>();
  const channels: ChannelView[] = [];
  const live = new Set<number>();
  let nextPort = BASE_PORT;
  const join = (): Promise<string> => {
    const port = nextPort++;
    const registration = registrar.register(service, "127.0.0.1", port);
    registrations.set(port, registration);
    live.add(port);
    return registration.registered();
  };
  const leave = async (port: number): Promise<void> => {
    live.delete(port);
    await registrations.get(port)?.close();
    registrations.delete(port);
  };
  const converged = () => channels.every((c) => hasExactly(c, live));
  try {
    await Promise.all(Array.from({ length: MEMBERS }, join));
    const t0 = performance.now();
    for (let i = 0; i < CHANNELS; i++) {
      channels.push(
        await openChannel({ zookeeper: zk.connectionString, service }),
      );
    }
    if (!await waitUntil(converged, 30_000, 2)) {
      throw new Error("Channels never saw the 100 members");
    }
    const initialSyncMs = performance.now() - t0;
    const initialReads = totalReads(channels);
    const joinTimes: number[] = [];
    for (let i = 0; i < (context.quick ? 3 : 10); i++) {
      const start = performance.now();
      await join();
      if (await waitUntil(converged, 10_000)) {
        joinTimes.push(performance.now() - start);
      }
    }
    const beforeChurn = totalReads(channels);
    const joinsBefore = nextPort;
    const churnStart = performance.now();
    const oldest = [...live].slice(0, CHURN);
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < CHURN; i++) {
      ops.push(join());
      ops.push(leave(oldest[i] as number));
    }
    await Promise.all(ops);
    const churnIssuedMs = performance.now() - churnStart;
    const ok = await waitUntil(converged, 30_000);
    const churnConvergeMs = performance.now() - churnStart;
    const afterChurn = totalReads(channels);
    const joins = nextPort - joinsBefore;
    const perChannel = afterChurn.map((r, i) =>
      (r - (beforeChurn[i] ?? NaN)) / joins
    );
    const initialPerMember = initialReads.map((r) => r / MEMBERS);
    context.report.add({
      scenario: "membership",
      label: "100 servers, 20 channels, churn",
      figures: {
        members: MEMBERS,
        channels: CHANNELS,
        initial_sync_ms: round(initialSyncMs),
        initial_reads_per_member: round(Math.max(...initialPerMember), 3),
        join_converge_median_ms: round(median(joinTimes)),
        join_converge_max_ms: round(Math.max(...joinTimes)),
        churn_ops: CHURN * 2,
        churn_issue_ms: round(churnIssuedMs),
        churn_converge_ms: ok ? round(churnConvergeMs) : null,
        reads_per_join_per_channel: round(Math.max(...perChannel), 3),
      },
      vsCeiling: {},
    });
  } finally {
    await Promise.allSettled(channels.map((c) => c.close()));
    await Promise.allSettled([...registrations.values()].map((r) => r.close()));
    await registrar.keeper.close();
  }
}
