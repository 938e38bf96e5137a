/**
 * zkrpc: Deno-native distributed RPC. Serve a handler object's methods, call
 * them through a channel that finds the servers, balances and fails over.
 * For applications that serve or call zkrpc services: this entry point is
 * all they need.
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
 * Read in this order: {@linkcode serve} exposes a handler object's methods
 * over TCP and registers the server in ZooKeeper; a
 * {@linkcode DistributedChannel} finds the servers, balances calls over them
 * and fails over; {@linkcode stub} makes remote calls look local;
 * `zooKeeperDiscovery()` from `@zkrpc/zkrpc/zookeeper` connects both sides to
 * ZooKeeper (the example above uses a fixed {@linkcode StaticMembership}
 * instead, so it runs without ZooKeeper). Then {@linkcode withContext} (a
 * handler's deadline, metadata and signal), {@linkcode Connection} (one
 * server, no discovery) and last the error classes, which say what went
 * wrong ({@linkcode RpcError} is their base).
 *
 * The other entry points, each for a narrower reader:
 * `@zkrpc/zkrpc/protocol` (code that looks below a call: codecs, metadata
 * limits, the health and describe methods), `@zkrpc/zkrpc/extend` (code that
 * plugs in: balancers, memberships, registrars, interceptors, policy option
 * types), `@zkrpc/zkrpc/zookeeper` (the ZooKeeper session API, for more than
 * discovery), `@zkrpc/zkrpc/testing` (a throw-away ZooKeeper for your test
 * suites) and `@zkrpc/zkrpc/cli` (the `zkrpc` command line, for a shell or a
 * script).
 *
 * @module
 */
// Exported in the order a newcomer needs them: serve, the channel, stub,
// static membership; then context, a single connection, and the errors last.
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
export { StaticMembership } from "./src/discovery/static.ts";
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
