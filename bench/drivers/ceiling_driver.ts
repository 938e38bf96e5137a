/**
 * Load driver for the raw echo ceiling: one {@linkcode EchoClient} per
 * endpoint, calls spread round-robin.
 *
 * @module
 */
import { EchoClient, makeFrame } from "../frame_echo.ts";
import type { DriverConfig, LoadDriver } from "./types.ts";

/**
 * Connects to every endpoint and returns the driver.
 *
 * @param config Endpoints and the frame size.
 * @returns The driver.
 */
export async function createDriver(config: DriverConfig): Promise<LoadDriver> {
  const clients = await Promise.all(
    config.endpoints.map((e) => EchoClient.connect(e.hostname, e.port)),
  );
  const frame = makeFrame(config.payload.frameBytes);
  let next = 0;
  return {
    call(): Promise<void> {
      const client = clients[next++ % clients.length] as EchoClient;
      return client.call(frame);
    },
    async close(): Promise<void> {
      await Promise.all(clients.map((client) => client.close()));
    },
  };
}
