/**
 * The scenarios in run order.
 *
 * @module
 */
import type { Scenario } from "../context.ts";
import { run as throughput } from "./throughput.ts";
import { run as payloads } from "./payloads.ts";
import { run as fullStack } from "./full_stack.ts";
import { run as slowServer } from "./slow_server.ts";
import { run as discovery } from "./discovery.ts";
import { run as failover } from "./failover.ts";
import { run as membership } from "./membership.ts";
import { run as interceptors } from "./interceptors.ts";
import { run as scale } from "./scale.ts";

/** Scenario id -> entry point, in run order. */
export const SCENARIOS: Record<string, Scenario> = {
  throughput,
  payloads,
  "full-stack": fullStack,
  "slow-server": slowServer,
  discovery,
  failover,
  membership,
  interceptors,
  scale,
};
