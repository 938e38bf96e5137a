/**
 * zkrpc: Deno-native distributed RPC. Servers built on `Deno.listen` expose a
 * handler object's methods over TCP and register in ZooKeeper; clients discover
 * them through a {@linkcode DistributedChannel}, balance, and fail over.
 *
 * @module
 */
export * from "./src/errors.ts";
export * from "./src/protocol/codec.ts";
export { type CallContext, withContext } from "./src/call_context.ts";
export * from "./src/server.ts";
export * from "./src/connection.ts";
export * from "./src/balancer.ts";
export * from "./src/stub.ts";
export * from "./src/retry_budget.ts";
export * from "./src/channel.ts";
export * from "./src/registry/member.ts";
export * from "./src/registry/membership.ts";
export * from "./src/registry/static.ts";
export * from "./src/registry/zookeeper_session.ts";
export * from "./src/registry/session_keeper.ts";
export * from "./src/registry/zookeeper_membership.ts";
export * from "./src/registry/zookeeper_registration.ts";
export * from "./src/registry/zookeeper_registrar.ts";
