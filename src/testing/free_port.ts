/**
 * Picks free TCP ports on a loopback address by binding to port 0.
 *
 * @module
 */

/**
 * Returns `count` distinct TCP ports that are free on `hostname` right now.
 *
 * All listeners are held open until every port is chosen, so the ports are
 * distinct; another process may still take one before ZooKeeper binds it, which
 * callers handle by retrying with new ports.
 *
 * @param count How many ports to pick.
 * @param hostname The address to probe.
 * @returns The ports, in no particular order.
 */
export function getFreePorts(count: number, hostname = "127.0.0.1"): number[] {
  const listeners: Deno.Listener[] = [];
  try {
    for (let i = 0; i < count; i++) {
      listeners.push(Deno.listen({ hostname, port: 0 }));
    }
    return listeners.map((listener) => (listener.addr as Deno.NetAddr).port);
  } finally {
    for (const listener of listeners) listener.close();
  }
}

/**
 * Tells whether `port` can be bound on `hostname` right now.
 *
 * @param port The port to probe.
 * @param hostname The address to probe.
 * @returns `true` when nothing else listens on the port.
 */
export function isPortFree(port: number, hostname = "127.0.0.1"): boolean {
  try {
    Deno.listen({ hostname, port }).close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return false;
    throw error;
  }
}
