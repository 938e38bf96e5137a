/**
 * The scenarios in run order.
 *
 * @module
 */
import type { Scenario } from "../context.ts";
import { run as throughput } from "./throughput.ts";

/** Scenario id -> entry point, in run order. */
export const SCENARIOS: Record<string, Scenario> = {
  throughput,
};
