/**
 * Load driver for the raw echo ceiling: an {@linkcode EchoLoop}, one lane
 * per endpoint, which runs its own closed loop and allocates nothing per
 * call.
 *
 * @module
 */
import { EchoLoop } from "../frame_echo.ts";
import type { DriverConfig, LoadDriver } from "./types.ts";

/**
 * Connects to every endpoint and returns the driver.
 *
 * @param config Endpoints, the frame size and the calls in flight.
 * @returns The driver.
 */
export async function createDriver(config: DriverConfig): Promise<LoadDriver> {
  const loop = await EchoLoop.connect(
    config.endpoints,
    config.payload.frameBytes,
    Math.max(1, config.inFlight ?? 64),
  );
  return {
    run: (inFlight, maxCalls, maxMs) => loop.run(inFlight, maxCalls, maxMs),
    close: () => loop.close(),
  };
}
