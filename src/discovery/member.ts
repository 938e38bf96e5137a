/**
 * The data a server stores in its ZooKeeper node, and its validation.
 *
 * @module
 */

/**
 * What a registered server publishes about itself, stored as JSON in its
 * ephemeral znode. `host` and `port` are the seed's fields; the rest is
 * metadata that clients may use.
 *
 * @example Member data with extra metadata
 * ```ts
 * import { encodeMember } from "./member.ts";
 * import { parseMember } from "@zkrpc/zkrpc/zookeeper";
 * import type { MemberData } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const member: MemberData = { host: "10.0.0.5", port: 9001, weight: 2, zone: "a" };
 * const parsed = parseMember(encodeMember(member));
 * assert.equal(parsed.port, 9001);
 * assert.equal(parsed.zone, "a");
 * ```
 */
export interface MemberData {
  /** Host name or address clients connect to. */
  host: string;
  /** TCP port clients connect to. */
  port: number;
  /**
   * Relative weight for balancers that use it.
   *
   * @default {1}
   */
  weight?: number;
  /** Wire protocol version the server speaks. */
  protocol?: number;
  /** When the server started, as an ISO 8601 string. */
  startedAt?: string;
  /**
   * Whether the server expects TLS.
   *
   * @default {false}
   */
  tls?: boolean;
  /** Other metadata the server chose to publish. */
  [key: string]: unknown;
}

/**
 * Parses and validates a member's znode data.
 *
 * @param bytes The znode's data.
 * @returns The member's data.
 * @throws {SyntaxError} When the data is not JSON.
 * @throws {TypeError} When it lacks a string `host` or a valid `port`.
 *
 * @example Parsing a member
 * ```ts
 * import { parseMember } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode('{"host":"127.0.0.1","port":9001}');
 * assert.equal(parseMember(bytes).port, 9001);
 * assert.throws(() => parseMember(new TextEncoder().encode("{}")), TypeError);
 * ```
 */
export function parseMember(bytes: Uint8Array | undefined): MemberData {
  const text = new TextDecoder().decode(bytes ?? new Uint8Array());
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(
      `Cannot parse member data: not JSON: ${
        JSON.stringify(text.slice(0, 80))
      }`,
      { cause: error },
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("Cannot parse member data: not a JSON object");
  }
  const member = value as Record<string, unknown>;
  if (typeof member.host !== "string" || member.host === "") {
    throw new TypeError('Cannot parse member data: missing string "host"');
  }
  const port = member.port;
  if (
    typeof port !== "number" || !Number.isInteger(port) || port < 1 ||
    port > 65535
  ) {
    throw new TypeError(
      `Cannot parse member data: "port" must be an integer in 1..65535, got ${
        JSON.stringify(port)
      }`,
    );
  }
  return member as MemberData;
}

/**
 * Serializes a member's data for its znode.
 *
 * @param member The member's data.
 * @returns UTF-8 JSON bytes.
 *
 * @example Round trip
 * ```ts
 * import { encodeMember } from "./member.ts";
 * import { parseMember } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * const member = { host: "127.0.0.1", port: 9001 };
 * assert.deepEqual(parseMember(encodeMember(member)), member);
 * ```
 */
export function encodeMember(member: MemberData): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(member));
}

/**
 * The key an endpoint is known by: `host:port`.
 *
 * @param member The member's data.
 * @returns `host:port`.
 *
 * @example
 * ```ts
 * import { memberKey } from "./member.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(memberKey({ host: "127.0.0.1", port: 9001 }), "127.0.0.1:9001");
 * ```
 */
export function memberKey(member: MemberData): string {
  return `${member.host}:${member.port}`;
}
