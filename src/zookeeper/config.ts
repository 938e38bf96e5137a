/**
 * Up-front checks of ZooKeeper configuration: connection strings, paths,
 * timeouts and credentials, with "Cannot connect to ZooKeeper: ..." messages,
 * so that nothing malformed reaches the client: a malformed string fails
 * at once, naming what is wrong. Also the default connection string.
 *
 * @module
 */

import { isZooKeeperPath } from "../discovery/service_path.ts";

/** The connection string used when none is given and `ZOOKEEPER_HOSTS` is unset. */
export const DEFAULT_ZOOKEEPER_HOSTS = "127.0.0.1:2181";

/** ZooKeeper's client port when a host has none. */
const DEFAULT_PORT = 2181;

const CONNECT = "Cannot connect to ZooKeeper";
const FORMAT = "expected host:port[,host:port...][/chroot]";

/** One server of a parsed connection string. */
export interface ZooKeeperServer {
  /** Host name or IPv4 address. */
  host: string;
  /** Client port. */
  port: number;
}

/** A parsed connection string. */
export interface ParsedConnectionString {
  /** The servers, in the given order. */
  servers: ZooKeeperServer[];
  /** The chroot path, if any. */
  chroot: string | undefined;
}

/**
 * Parses and checks a connection string `host[:port][,host[:port]...][/chroot]`.
 *
 * @param connectionString What the user gave.
 * @returns The servers and the chroot.
 * @throws {TypeError} When it is not a string, is empty, or is malformed.
 * @throws {RangeError} When a port is outside 1..65535.
 */
export function parseConnectionString(
  connectionString: unknown,
): ParsedConnectionString {
  if (typeof connectionString !== "string") {
    throw new TypeError(
      `${CONNECT}: the connection string must be a string, got ${typeof connectionString}`,
    );
  }
  const text = connectionString;
  if (text.trim() === "") {
    throw new TypeError(
      `${CONNECT}: the connection string is empty; ${FORMAT}`,
    );
  }
  if (/\s/.test(text)) {
    throw new TypeError(
      `${CONNECT}: the connection string "${text}" contains whitespace; ${FORMAT}`,
    );
  }
  const slash = text.indexOf("/");
  const hostList = slash === -1 ? text : text.slice(0, slash);
  let chroot = slash === -1 ? undefined : text.slice(slash);
  if (chroot === "/") chroot = undefined;
  if (chroot !== undefined && !isZooKeeperPath(chroot)) {
    throw new TypeError(
      `${CONNECT}: chroot "${chroot}" in "${text}" is not a valid ZooKeeper path (no trailing, double or relative segments)`,
    );
  }
  const servers: ZooKeeperServer[] = [];
  for (const entry of hostList.split(",")) {
    if (entry === "") {
      throw new TypeError(`${CONNECT}: empty host in "${text}"; ${FORMAT}`);
    }
    if (entry.startsWith("[")) {
      throw new TypeError(
        `${CONNECT}: host "${entry}" in "${text}": IPv6 addresses are not supported by the ZooKeeper client; use a host name`,
      );
    }
    const parts = entry.split(":");
    if (parts.length > 2) {
      throw new TypeError(
        `${CONNECT}: "${entry}" in "${text}" is not host:port; ${FORMAT}`,
      );
    }
    const [host = "", portText] = parts;
    if (host === "" || !/^[A-Za-z0-9._-]+$/.test(host)) {
      throw new TypeError(
        `${CONNECT}: host "${host}" in "${text}" is not a host name or IPv4 address`,
      );
    }
    let port = DEFAULT_PORT;
    if (portText !== undefined) {
      if (!/^\d+$/.test(portText)) {
        throw new TypeError(
          `${CONNECT}: port "${portText}" in "${text}" is not a number`,
        );
      }
      port = Number(portText);
      if (port < 1 || port > 65535) {
        throw new RangeError(
          `${CONNECT}: port ${portText} in "${text}" is out of range 1..65535`,
        );
      }
    }
    servers.push({ host, port });
  }
  return { servers, chroot };
}

/** The session options {@linkcode checkSessionOptions} looks at. */
export interface CheckedSessionOptions {
  connectTimeout?: number | undefined;
  sessionTimeout?: number | undefined;
  operationTimeout?: number | undefined;
  auth?: string | readonly string[] | undefined;
  retryDelay?: number | undefined;
  maxRetryDelay?: number | undefined;
}

/**
 * Checks timeouts (finite, positive milliseconds; `retryDelay` may be 0) and
 * digest credentials (`"user:password"`).
 *
 * @param options The options.
 * @throws {TypeError} For a wrong type or a malformed credential.
 * @throws {RangeError} For a number out of range.
 */
export function checkSessionOptions(options: CheckedSessionOptions): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${CONNECT}: the options must be an object`);
  }
  for (
    const name of [
      "connectTimeout",
      "sessionTimeout",
      "operationTimeout",
      "maxRetryDelay",
      "retryDelay",
    ] as const
  ) {
    checkMilliseconds(options[name], name, name === "retryDelay" ? 0 : 1);
  }
  if (options.auth === undefined) return;
  const credentials = typeof options.auth === "string"
    ? [options.auth]
    : options.auth;
  if (!Array.isArray(credentials)) {
    throw new TypeError(
      `${CONNECT}: auth must be "user:password" or a list of them`,
    );
  }
  for (const credential of credentials) {
    if (typeof credential !== "string" || !/^[^:]+:/.test(credential)) {
      throw new TypeError(
        `${CONNECT}: auth must be "user:password", got a ${
          typeof credential === "string"
            ? "string without a user"
            : typeof credential
        }`,
      );
    }
  }
}

/**
 * Checks an optional number of milliseconds.
 *
 * @param value The option's value.
 * @param name The option's name, for the message.
 * @param min The smallest allowed value.
 * @param what What could not be done, for the message.
 */
export function checkMilliseconds(
  value: unknown,
  name: string,
  min: number,
  what: string = CONNECT,
): void {
  if (value === undefined) return;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(
      `${what}: ${name} must be a number of milliseconds, got ${
        typeof value === "number"
          ? "NaN"
          : JSON.stringify(value) ?? typeof value
      }`,
    );
  }
  if (!Number.isFinite(value) || value < min || value > 2 ** 31 - 1) {
    throw new RangeError(
      `${what}: ${name} must be ${
        min === 0 ? "0 or more" : "more than 0"
      } and at most 2147483647 ms, got ${value}`,
    );
  }
}

/**
 * The connection string to use when none is given: `ZOOKEEPER_HOSTS` when
 * the process may read it without a prompt (`--allow-env=ZOOKEEPER_HOSTS`)
 * and it is set, else `127.0.0.1:2181`.
 *
 * @returns A connection string.
 */
export function defaultZooKeeperHosts(): string {
  try {
    const status = Deno.permissions.querySync({
      name: "env",
      variable: "ZOOKEEPER_HOSTS",
    });
    if (status.state !== "granted") return DEFAULT_ZOOKEEPER_HOSTS;
    return Deno.env.get("ZOOKEEPER_HOSTS") || DEFAULT_ZOOKEEPER_HOSTS;
  } catch {
    return DEFAULT_ZOOKEEPER_HOSTS;
  }
}
