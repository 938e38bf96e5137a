/**
 * Which of this machine's addresses a server bound to `0.0.0.0` advertises.
 *
 * @module
 */

/** The fields of `Deno.NetworkInterfaceInfo` the choice reads. */
export interface InterfaceAddress {
  /** `"IPv4"` or `"IPv6"`. */
  family: string;
  /** The address, e.g. `10.0.0.5`. */
  address: string;
  /** The network, e.g. `10.0.0.5/24`. */
  cidr: string;
}

function ipv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

function contains(cidr: string, address: number): boolean {
  const [network, bits] = cidr.split("/");
  const base = ipv4(network ?? "");
  const prefix = Number(bits);
  if (base === undefined || !Number.isInteger(prefix)) return false;
  const size = 2 ** (32 - prefix);
  return Math.floor(base / size) === Math.floor(address / size);
}

/**
 * Picks the address to advertise among `interfaces`: the first non-loopback
 * IPv4 address on the same network as one of the ZooKeeper servers (the
 * network clients most likely share, when ZooKeeper is named by address),
 * else the first non-loopback IPv4 address, else `undefined`. A host with
 * two interfaces thus advertises the one facing ZooKeeper, not whichever the
 * system lists first.
 *
 * @param interfaces This machine's addresses (`Deno.networkInterfaces()`).
 * @param zookeeperHosts Hosts of the connection string (names are ignored).
 * @returns The address, or `undefined` when there is no non-loopback IPv4.
 *
 * @example The interface facing ZooKeeper wins
 * ```ts
 * import { pickAdvertisedAddress } from "./_advertised_address.ts";
 * import assert from "node:assert/strict";
 *
 * const interfaces = [
 *   { family: "IPv4", address: "127.0.0.1", cidr: "127.0.0.1/8" },
 *   { family: "IPv4", address: "192.168.9.4", cidr: "192.168.9.4/24" },
 *   { family: "IPv4", address: "10.0.0.5", cidr: "10.0.0.5/24" },
 * ];
 * assert.equal(pickAdvertisedAddress(interfaces, ["10.0.0.2"]), "10.0.0.5");
 * assert.equal(pickAdvertisedAddress(interfaces, ["zk.example"]), "192.168.9.4");
 * assert.equal(pickAdvertisedAddress(interfaces.slice(0, 1), []), undefined);
 * ```
 */
export function pickAdvertisedAddress(
  interfaces: readonly InterfaceAddress[],
  zookeeperHosts: readonly string[],
): string | undefined {
  const candidates = interfaces.filter((i) =>
    i.family === "IPv4" && !i.address.startsWith("127.")
  );
  const servers = zookeeperHosts.map(ipv4).filter((a) => a !== undefined);
  const facing = candidates.find((i) =>
    servers.some((server) => contains(i.cidr, server))
  );
  return (facing ?? candidates[0])?.address;
}
