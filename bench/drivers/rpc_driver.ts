/**
 * Load driver for the zkrpc core: one `Connection` per endpoint (no
 * discovery, no balancer), calls spread round-robin.
 *
 * @module
 */
import { Connection } from "../../src/client/connection.ts";
import type { DriverConfig, LoadDriver } from "./types.ts";
import { callParams } from "./params.ts";

/**
 * Connects to every endpoint and returns the driver.
 *
 * @param config Endpoints and the payload.
 * @returns The driver.
 */
export async function createDriver(config: DriverConfig): Promise<LoadDriver> {
  const connections = await Promise.all(
    config.endpoints.map((e) =>
      Connection.connect({ hostname: e.hostname, port: e.port })
    ),
  );
  const method = config.payload.method;
  const params = callParams(config.payload);
  const options = { timeout: config.timeoutMs ?? 10_000 };
  let next = 0;
  return {
    // The connection's own promise, not one more around it.
    call(): Promise<unknown> {
      const connection = connections[next++ % connections.length] as Connection;
      return connection.call(method, params, options);
    },
    async close(): Promise<void> {
      for (const connection of connections) connection.close();
      await Promise.all(connections.map((connection) => connection.closed));
    },
  };
}
