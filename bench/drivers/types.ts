/**
 * The interface every load driver (ceiling echo, zkrpc connection, zkrpc
 * channel) implements, and the configuration it gets.
 *
 * @module
 */
import type { LoopRun } from "../frame_echo.ts";

/** A TCP endpoint on loopback. */
export interface BenchEndpoint {
  /** Host, always 127.0.0.1 in the benches. */
  hostname: string;
  /** Port. */
  port: number;
}

/** What each call sends. */
export interface PayloadSpec {
  /** `divide(10, 2)` or `echo(bytes)`. */
  method: "divide" | "divideAsync" | "echo";
  /** Payload size for `echo`, in bytes. @default 0 */
  bytes?: number;
  /** Total ceiling frame size (header included) matching one zkrpc request. */
  frameBytes: number;
}

/** Configuration shared by all drivers. */
export interface DriverConfig {
  /** Servers to connect to directly (ceiling, rpc). */
  endpoints: BenchEndpoint[];
  /** What to send. */
  payload: PayloadSpec;
  /** Per-call timeout in ms. @default 10000 */
  timeoutMs?: number;
  /** ZooKeeper connection string (channel driver). */
  zookeeper?: string;
  /** Service name (channel driver). */
  service?: string;
  /** Balancer name (channel driver). */
  balancer?: string;
  /** The most calls in flight a run will use. @default 64 */
  inFlight?: number;
}

/** One way of making calls against a target. */
export interface LoadDriver {
  /**
   * Makes one call; resolves on success, rejects on failure. The load
   * client's closed loop awaits it (a promise per call).
   */
  call?(): Promise<unknown>;
  /**
   * Runs the closed loop itself (the ceiling: nothing allocated per call);
   * used instead of `call` when present.
   */
  run?(inFlight: number, maxCalls: number, maxMs: number): Promise<LoopRun>;
  /** Closes every connection the driver opened. */
  close(): Promise<void>;
}

/** Creates a driver from its configuration. */
export type DriverFactory = (config: DriverConfig) => Promise<LoadDriver>;
