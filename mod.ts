/**
 * zkrpc: Deno-native distributed RPC. Serve a handler object's methods, call
 * them through a channel that finds the servers, balances and fails over:
 *
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
 * {@linkcode serve} exposes a handler object's methods over TCP and registers
 * the server in ZooKeeper; a {@linkcode DistributedChannel} finds the
 * servers, balances calls over them and fails over; {@linkcode stub} makes
 * remote calls look local. {@linkcode zooKeeperDiscovery} shares one
 * ZooKeeper session between both sides (the example above uses a fixed
 * member list instead, so it runs without ZooKeeper); {@linkcode Connection}
 * talks to one server; the error classes say what went wrong.
 *
 * This entry point holds what an application needs. The others:
 * `@zkrpc/zkrpc/protocol` (codecs, metadata limits, the health and describe
 * methods), `@zkrpc/zkrpc/extend` (what you implement or plug in: balancers,
 * memberships, registrars, interceptors, policy option types),
 * `@zkrpc/zkrpc/zookeeper` (the ZooKeeper session API),
 * `@zkrpc/zkrpc/testing` (a throw-away ZooKeeper for tests) and
 * `@zkrpc/zkrpc/cli` (the `zkrpc` command line).
 *
 * @module
 */
export {
  type CloseOptions,
  type RpcServer,
  serve,
  type ServeOptions,
  type TlsOptions,
} from "./src/server/server.ts";
export {
  type ChannelCallOptions,
  DistributedChannel,
  type DistributedChannelOptions,
  type EndpointState,
  type EndpointStatus,
} from "./src/channel/channel.ts";
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
export { StaticMembership } from "./src/discovery/static.ts";
