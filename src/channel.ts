/**
 * The discovery channel (membership → subchannel pool → balancer → attempt
 * policy); the pieces live in `src/channel/`.
 *
 * @module
 */

export * from "./channel/channel.ts";
export type { HedgingOptions } from "./channel/hedging.ts";
export type { OutlierDetectionOptions } from "./channel/outlier_detection.ts";
