/**
 * Load driver for the channel without discovery: a `DistributedChannel` over
 * a `StaticMembership` of the endpoints. The same calls as the channel
 * driver, in a process that never loads the ZooKeeper client; the two side
 * by side show what the ZooKeeper client's share of the heap costs
 * (docs/performance.md, "Seventh round").
 *
 * @module
 */
import { DistributedChannel, StaticMembership } from "../../mod.ts";
import type { BalancerName } from "../../src/channel/balancer.ts";
import type { DriverConfig, LoadDriver } from "./types.ts";
import { callParams } from "./params.ts";

/**
 * Opens a channel over `config.endpoints` and returns the driver.
 *
 * @param config Endpoints, balancer and payload.
 * @returns The driver.
 */
export function createDriver(config: DriverConfig): Promise<LoadDriver> {
  const channel = new DistributedChannel({
    membership: new StaticMembership(
      config.endpoints.map(({ hostname, port }) => ({ host: hostname, port })),
    ),
    balancer: (config.balancer ?? "random") as BalancerName,
    timeout: config.timeoutMs ?? 10_000,
  });
  const method = config.payload.method;
  const params = callParams(config.payload);
  return Promise.resolve({
    // The channel's own promise, not one more around it.
    call: (): Promise<unknown> => channel.call(method, params),
    async close(): Promise<void> {
      await channel.close();
    },
  });
}
