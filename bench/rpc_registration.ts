/**
 * A `Registrar` for `serve()` built on the registry modules
 * (`SessionKeeper` + `ZooKeeperRegistration`), recording when the member
 * node was created.
 *
 * @module
 */
import type { Registrar, Registration } from "../src/server/server.ts";
import { SessionKeeper } from "../src/zookeeper/keeper.ts";
import { ZooKeeperRegistration } from "../src/zookeeper/registration.ts";

/** A registrar that remembers when registration completed. */
export interface BenchRegistrar extends Registrar {
  /** Epoch ms when the member node was created, once registered. */
  readonly registeredAt: number | null;
}

/**
 * Creates a registrar that registers the server's `127.0.0.1:<port>` under
 * `/rpc/<service>` with its own ZooKeeper session.
 *
 * @param zookeeper Connection string.
 * @param service Service name.
 * @returns The registrar.
 */
export function benchRegistrar(
  zookeeper: string,
  service: string,
): BenchRegistrar {
  let registeredAt: number | null = null;
  return {
    get registeredAt(): number | null {
      return registeredAt;
    },
    async register(addr: Deno.NetAddr): Promise<Registration> {
      const keeper = new SessionKeeper(zookeeper);
      const registration = new ZooKeeperRegistration(
        keeper,
        `/rpc/${service}`,
        {
          host: "127.0.0.1",
          port: addr.port,
        },
      );
      try {
        await registration.registered();
      } catch (error) {
        await keeper.close();
        throw error;
      }
      registeredAt = performance.timeOrigin + performance.now();
      return {
        async deregister(): Promise<void> {
          await registration.close();
          await keeper.close();
        },
      };
    },
  };
}
