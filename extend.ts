/**
 * For code that extends zkrpc rather than only serving and calling (a library,
 * a platform team's wrapper): what you implement or plug in, a
 * {@linkcode Balancer} that picks an endpoint, a {@linkcode Membership} that
 * says where the servers are (with its {@linkcode MemberData}), a
 * {@linkcode Registrar} that announces a server, client and server
 * interceptors, the option types of the channel's retry budget, hedging and
 * outlier detection, the {@linkcode ErrorClass} shape of an error class revived
 * from the wire, and {@linkcode telemetryEnabled}. An application that only
 * serves and calls needs none of it: `@zkrpc/zkrpc` is enough.
 *
 * @example A balancer of your own and a client interceptor
 * ```ts
 * import { DistributedChannel, serve, StaticMembership } from "@zkrpc/zkrpc";
 * import type { Balancer, ClientInterceptor } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const leastLoaded: Balancer = {
 *   pick: (candidates) =>
 *     candidates.reduce((best, c) => c.inFlight < best.inFlight ? c : best),
 * };
 * const methods: string[] = [];
 * const record: ClientInterceptor = (call, next) => {
 *   methods.push(call.method);
 *   return next();
 * };
 *
 * await using server = serve({ add: (a: number, b: number) => a + b }, {
 *   hostname: "127.0.0.1",
 * });
 * await using channel = new DistributedChannel({
 *   service: "calculator",
 *   membership: new StaticMembership([
 *     { host: "127.0.0.1", port: server.addr.port },
 *   ]),
 *   balancer: leastLoaded,
 *   interceptors: [record],
 * });
 * assert.equal(await channel.call("add", [1, 2]), 3);
 * assert.deepEqual(methods, ["add"]);
 * ```
 *
 * @module
 */
export type {
  Balancer,
  BalancerCandidate,
  BalancerName,
} from "./src/channel/balancer.ts";
export type {
  DiscoveryState,
  Membership,
  MembershipChange,
} from "./src/discovery/membership.ts";
export type {
  Discovery,
  MembershipOptions,
} from "./src/discovery/discovery.ts";
export type { MemberData } from "./src/discovery/member.ts";
export type {
  RegisterContext,
  Registrar,
  Registration,
} from "./src/discovery/registrar.ts";
export type {
  ClientCall,
  ClientInterceptor,
  ServerCall,
  ServerInterceptor,
} from "./src/_interceptors.ts";
export type { ParentCall } from "./src/_call_scope.ts";
export type { ChannelTlsOptions } from "./src/channel/options.ts";
export type { Deadline } from "./src/_deadline.ts";
export type { HedgingOptions } from "./src/channel/hedging.ts";
export type { OutlierDetectionOptions } from "./src/channel/outlier_detection.ts";
export type { RetryBudgetOptions } from "./src/channel/retry_budget.ts";
export type { ErrorClass } from "./src/errors.ts";
export { telemetryEnabled } from "./src/telemetry/telemetry.ts";
