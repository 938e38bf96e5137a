/**
 * In-process access to the discovery channel and the registry modules for
 * the scenarios that time discovery, failover and membership. Loaded
 * dynamically so that a scenario can report "skipped" while a module has
 * not landed.
 *
 * @module
 */
import { requireModule } from "../context.ts";

/** The parts of an endpoint status the benches read. */
export interface EndpointView {
  /** `host:port`. */
  key: string;
  /** "idle" | "connected" | "ejected" | "draining". */
  state: string;
  /** Calls in flight. */
  inFlight: number;
  /** Calls answered. */
  calls: number;
  /** Consecutive connection failures. */
  failures: number;
}

/** The parts of `DistributedChannel` the benches use. */
export interface ChannelView {
  /** Calls a method on some endpoint. */
  call(method: string, params: unknown[]): Promise<unknown>;
  /** Snapshot of the endpoints. */
  endpoints(): EndpointView[];
  /** The membership source (ZooKeeper watcher with `dataReads`). */
  readonly membership: { readonly members: ReadonlyMap<string, unknown> };
  /** Closes the channel. */
  close(): Promise<void>;
}

/** Options passed to `zooKeeperChannel()` (a channel with its own session). */
export interface ChannelViewOptions {
  /** ZooKeeper connection string. */
  zookeeper: string;
  /** Service name. */
  service: string;
  /** Balancer name. */
  balancer?: string;
  /** Call timeout, ms. */
  timeout?: number;
  /** Methods safe to retry after a connection failure. */
  idempotent?: string[];
}

/** A registered fake or real member. */
export interface RegistrationView {
  /** Resolves with the znode path once created. */
  registered(): Promise<string>;
  /** Deletes the node. */
  close(): Promise<void>;
}

/** A ZooKeeper session shared by registrations. */
export interface KeeperView {
  /** Closes the session. */
  close(): Promise<void>;
}

async function load<T>(path: string, name: string): Promise<T> {
  await requireModule(path, name);
  const module = await import(new URL(`../../${path}`, import.meta.url).href);
  return (module as Record<string, unknown>)[name] as T;
}

/**
 * Opens a channel.
 *
 * @param options ZooKeeper, service, balancer.
 * @returns The channel.
 */
export async function openChannel(
  options: ChannelViewOptions,
): Promise<ChannelView> {
  const zooKeeperChannel = await load<(o: ChannelViewOptions) => ChannelView>(
    "zookeeper.ts",
    "zooKeeperChannel",
  );
  return zooKeeperChannel(options);
}

/**
 * Opens a ZooKeeper session keeper for registrations.
 *
 * @param zookeeper Connection string.
 * @returns The keeper and a factory of registrations on it.
 */
export async function openRegistrar(zookeeper: string): Promise<{
  keeper: KeeperView;
  register(service: string, host: string, port: number): RegistrationView;
}> {
  const Keeper = await load<new (c: string) => KeeperView>(
    "src/zookeeper/keeper.ts",
    "SessionKeeper",
  );
  const Registration = await load<
    new (
      k: KeeperView,
      path: string,
      member: { host: string; port: number },
    ) => RegistrationView
  >("src/zookeeper/registration.ts", "ZooKeeperRegistration");
  const keeper = new Keeper(zookeeper);
  return {
    keeper,
    register: (service, host, port) =>
      new Registration(keeper, `/rpc/${service}`, { host, port }),
  };
}

/**
 * Number of member data reads a channel's membership made, or null when the
 * membership does not count them.
 *
 * @param channel The channel.
 * @returns The counter.
 */
export function dataReads(channel: ChannelView): number | null {
  const value = (channel.membership as { dataReads?: unknown }).dataReads;
  return typeof value === "number" ? value : null;
}

/**
 * Sleeps.
 *
 * @param ms Milliseconds.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `predicate` every `everyMs` until it holds or `timeoutMs` passes.
 *
 * @param predicate Condition.
 * @param timeoutMs Bound.
 * @param everyMs Poll period.
 * @returns Whether it held.
 */
export async function waitUntil(
  predicate: () => boolean,
  timeoutMs: number,
  everyMs = 1,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) return false;
    await sleep(everyMs);
  }
  return true;
}
