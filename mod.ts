/**
 * zkrpc: Deno-native distributed RPC. {@linkcode serve} exposes a handler
 * object's methods over TCP and registers the server in ZooKeeper; a
 * {@linkcode DistributedChannel} finds the servers, balances calls over them
 * and fails over. {@linkcode zooKeeperDiscovery} shares one ZooKeeper session
 * between both sides; the ZooKeeper session API itself is in
 * `@zkrpc/zkrpc/zookeeper`, a throw-away ZooKeeper for tests in
 * `@zkrpc/zkrpc/testing`.
 *
 * @example Serve, and call through a fixed member list
 * ```ts
 * import { DistributedChannel, serve, StaticMembership, stub } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * const calculator = { add: (a: number, b: number) => a + b };
 * await using server = serve(calculator, { hostname: "127.0.0.1", port: 0 });
 * await using channel = new DistributedChannel({
 *   service: "calculator",
 *   membership: new StaticMembership([
 *     { host: "127.0.0.1", port: server.addr.port },
 *   ]),
 * });
 * const remote = stub<typeof calculator>(channel);
 * assert.equal(await remote.add(1, 2), 3);
 * ```
 *
 * @module
 */
export {
  type CloseOptions,
  DESCRIBE_METHOD,
  HEALTH_METHOD,
  type HealthStatus,
  type MethodDescription,
  type RpcServer,
  serve,
  type ServeOptions,
  type ServiceDescription,
  type TlsOptions,
} from "./src/server/server.ts";
export {
  type ChannelCallOptions,
  DistributedChannel,
  type DistributedChannelOptions,
  type EndpointState,
  type EndpointStatus,
} from "./src/channel/channel.ts";
export {
  ZooKeeperDiscovery,
  zooKeeperDiscovery,
  type ZooKeeperDiscoveryOptions,
} from "./src/zookeeper/discovery.ts";
export { type Caller, type Stub, stub } from "./src/channel/stub.ts";
export { type CallContext, withContext } from "./src/server/call_context.ts";
export {
  type Address,
  type CallOptions,
  Connection,
  type ConnectionOptions,
} from "./src/client/connection.ts";
export {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  type ErrorClass,
  type ErrorPayload,
  ErrorRegistry,
  MethodNotFoundError,
  NoServersError,
  ProtocolError,
  RemoteError,
  ResourceExhaustedError,
  RpcError,
  ServerClosingError,
} from "./src/errors.ts";
export type {
  Balancer,
  BalancerCandidate,
  BalancerName,
} from "./src/channel/balancer.ts";
export { StaticMembership } from "./src/discovery/static.ts";
export type {
  DiscoveryState,
  Membership,
  MembershipChange,
} from "./src/discovery/membership.ts";
export type { MemberData } from "./src/discovery/member.ts";
export type {
  RegisterContext,
  Registrar,
  Registration,
} from "./src/discovery/registrar.ts";
export {
  type Codec,
  createJsonCodec,
  jsonCodec,
  type JsonCodecOptions,
} from "./src/protocol/codec.ts";
export {
  createMsgpackCodec,
  msgpackCodec,
  type MsgpackCodecOptions,
} from "./src/protocol/msgpack_codec.ts";
export {
  MAX_METADATA_SIZE,
  RESERVED_METADATA_KEYS,
} from "./src/protocol/metadata.ts";
export type {
  ClientCall,
  ClientInterceptor,
  ServerCall,
  ServerInterceptor,
} from "./src/_interceptors.ts";
export type { ParentCall } from "./src/_call_scope.ts";
export { telemetryEnabled } from "./src/telemetry/telemetry.ts";
export type { HedgingOptions } from "./src/channel/hedging.ts";
export type { OutlierDetectionOptions } from "./src/channel/outlier_detection.ts";
export type { RetryBudgetOptions } from "./src/channel/retry_budget.ts";
