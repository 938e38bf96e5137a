/**
 * zkrpc: Deno-native distributed RPC. Servers built on `Deno.listen` expose a
 * handler object's methods over TCP and register in ZooKeeper; clients discover
 * them through a {@linkcode DistributedChannel}, balance, and fail over.
 *
 * @module
 */
export * from "./src/errors.ts";
export * from "./src/protocol/codec.ts";
export * from "./src/server.ts";
export * from "./src/connection.ts";
