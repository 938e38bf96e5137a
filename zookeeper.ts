/**
 * For applications that find their servers in ZooKeeper, and for code that
 * needs more of ZooKeeper (its own nodes, watches or ACLs, its own registry
 * layout): {@linkcode zooKeeperDiscovery} (the `Discovery` a channel and a
 * server registrar take), a promise-based
 * {@linkcode ZooKeeperSession} (nodes, watches, ACLs), the
 * {@linkcode SessionKeeper} that keeps one session alive over time, and the
 * registrar, registration and membership built on it.
 *
 * @example Read the members of a service
 * ```ts ignore
 * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using session = await ZooKeeperSession.connect("127.0.0.1:2181");
 * console.log(await session.getChildren("/rpc/calculator"));
 * ```
 *
 * @module
 */
export * from "./src/zookeeper/session.ts";
export * from "./src/zookeeper/keeper.ts";
export * from "./src/zookeeper/membership.ts";
export * from "./src/zookeeper/registration.ts";
export * from "./src/zookeeper/registrar.ts";
export {
  zooKeeperChannel,
  type ZooKeeperChannelOptions,
  ZooKeeperDiscovery,
  zooKeeperDiscovery,
  type ZooKeeperDiscoveryChannelOptions,
  type ZooKeeperDiscoveryOptions,
  type ZooKeeperDiscoveryRegistrarOptions,
} from "./src/zookeeper/discovery.ts";
export { servicePath } from "./src/discovery/service_path.ts";
export { parseMember } from "./src/discovery/member.ts";
