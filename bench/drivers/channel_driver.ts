/**
 * Load driver for the full stack: a `DistributedChannel` that discovers the
 * servers in ZooKeeper and balances calls over them.
 *
 * @module
 */
import type { DistributedChannel } from "../../mod.ts";
import type { BalancerName } from "../../src/channel/balancer.ts";
import type { DriverConfig, LoadDriver } from "./types.ts";
import { callParams } from "./params.ts";
import { zooKeeperChannel } from "../../zookeeper.ts";

/**
 * Opens a channel and waits until it knows `config.endpoints.length`
 * members (at least one).
 *
 * @param config ZooKeeper, service, balancer and payload.
 * @returns The driver.
 */
export async function createDriver(config: DriverConfig): Promise<LoadDriver> {
  if (config.zookeeper === undefined || config.service === undefined) {
    throw new TypeError(
      "Cannot create channel driver: zookeeper and service are required",
    );
  }
  const channel = zooKeeperChannel({
    zookeeper: config.zookeeper,
    service: config.service,
    balancer: (config.balancer ?? "random") as BalancerName,
    timeout: config.timeoutMs ?? 10_000,
  });
  try {
    await waitForMembers(channel, Math.max(1, config.endpoints.length), 20_000);
  } catch (error) {
    await channel.close();
    throw error;
  }
  const method = config.payload.method;
  const params = callParams(config.payload);
  return {
    async call(): Promise<void> {
      await channel.call(method, params);
    },
    async close(): Promise<void> {
      await channel.close();
    },
  };
}

/**
 * Waits until the channel lists at least `count` endpoints.
 *
 * @param channel The channel.
 * @param count Members expected.
 * @param timeoutMs Give up after this long.
 */
export async function waitForMembers(
  channel: DistributedChannel,
  count: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (channel.endpoints().length < count) {
    if (performance.now() > deadline) {
      throw new Error(
        `Timed out waiting for ${count} members: channel sees ${channel.endpoints().length}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
