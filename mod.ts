/**
 * zkrpc: Deno-native distributed RPC. Servers built on `Deno.listen` expose a
 * handler object's methods over TCP and register in ZooKeeper; clients discover
 * them through a {@linkcode DistributedChannel}, balance, and fail over.
 *
 * @module
 */
export * from "./src/errors.ts";
export * from "./src/protocol/codec.ts";
export { type CallContext, withContext } from "./src/server/call_context.ts";
export * from "./src/server/server.ts";
export * from "./src/client/connection.ts";
export * from "./src/channel/balancer.ts";
export * from "./src/channel/stub.ts";
export * from "./src/channel/retry_budget.ts";
export * from "./src/channel.ts";
export * from "./src/discovery/member.ts";
export * from "./src/discovery/membership.ts";
export * from "./src/discovery/static.ts";
export * from "./src/zookeeper/session.ts";
export * from "./src/zookeeper/keeper.ts";
export * from "./src/zookeeper/membership.ts";
export * from "./src/zookeeper/registration.ts";
export * from "./src/zookeeper/registrar.ts";
