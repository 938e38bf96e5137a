/**
 * Expires a ZooKeeper session on purpose, the way Curator's test kit does:
 * open a second connection with the same session id and password, then close
 * the session through it. Speaks the wire protocol directly, so it needs no
 * ZooKeeper client.
 *
 * @module
 */

const CLOSE_SESSION = -11;
/** Longest pause between two rounds of attempts, in milliseconds. */
const MAX_PAUSE = 50;

/**
 * Options for {@linkcode expireSession}.
 *
 * @example A shorter timeout
 * ```ts
 * import type { ExpireSessionOptions } from "@zkrpc/zkrpc/testing";
 * import assert from "node:assert/strict";
 *
 * const options: ExpireSessionOptions = { timeout: 2_000 };
 * assert.equal(options.timeout, 2_000);
 * ```
 */
export interface ExpireSessionOptions {
  /**
   * Milliseconds for the whole operation.
   *
   * @default {10000}
   */
  timeout?: number;
}

/**
 * Expires the session `sessionId` on the ZooKeeper ensemble at
 * `connectionString`. The server deletes the session's ephemeral nodes; the
 * session's own client learns that it expired when it next reconnects
 * (immediately, since the server also drops its connection).
 *
 * @param connectionString `host:port[,host:port...]`; a chroot is ignored.
 * @param sessionId The session id as hex digits (e.g. `ZooKeeperSession.sessionId`).
 * @param password The session password (16 bytes).
 * @param options Timeout.
 * @throws {Error} When no server is reachable, or the server does not know
 * the session (already expired, or a wrong password).
 *
 * @example Expire a session in a test
 * ```ts
 * import { expireSession, startZooKeeper } from "@zkrpc/zkrpc/testing";
 * import { ZooKeeperSession } from "@zkrpc/zkrpc/zookeeper";
 *
 * await using zk = await startZooKeeper();
 * await using session = await ZooKeeperSession.connect(zk.connectionString);
 * const expired = new Promise((resolve) =>
 *   session.addEventListener("expired", resolve, { once: true })
 * );
 * await expireSession(
 *   zk.connectionString,
 *   session.sessionId,
 *   session.sessionPassword,
 * );
 * await expired;
 * ```
 */
export async function expireSession(
  connectionString: string,
  sessionId: string,
  password: Uint8Array,
  options: ExpireSessionOptions = {},
): Promise<void> {
  const { timeout = 10_000 } = options;
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(sessionId)) {
    throw new TypeError(
      `Cannot expire session: "${sessionId}" is not a hex session id`,
    );
  }
  const id = BigInt(`0x${sessionId.replace(/^0x/, "")}`);
  const servers = parseServers(connectionString);
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  // The session's own client reconnects at once when we take its session
  // over, and may take it back before our close is read: then we try again,
  // until the deadline (a fixed number of attempts could all lose that race
  // on a loaded machine), with a growing pause that breaks a lockstep with
  // the client's reconnects. "Unknown session" after a grant means an
  // earlier close went through. Only a server that granted the session
  // proves the password right.
  let granted = false;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    if (attempt > 0) await pause(Math.min(attempt * 5, MAX_PAUSE), deadline);
    for (const server of servers) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        const outcome = await closeSessionOnce(server, id, password, remaining);
        if (outcome === "closed") return;
        if (outcome === "granted-then-interrupted") granted = true;
        if (outcome === "unknown" && granted) return;
        if (outcome === "unknown") {
          throw new Error(
            `Cannot expire session 0x${sessionId}: the server does not know it (already expired, or a wrong password)`,
          );
        }
        // Interrupted: the session's own client took the session back.
      } catch (error) {
        if ((error as Error).message.startsWith("Cannot expire")) throw error;
        lastError = error;
      }
    }
  }
  throw new Error(
    `Cannot expire session 0x${sessionId} at ${connectionString}: ${
      (lastError as Error | undefined)?.message ?? "no server closed it"
    }`,
    { cause: lastError },
  );
}

/** Waits `ms` milliseconds, or until `deadline` (a `Date.now()` time). */
function pause(ms: number, deadline: number): Promise<void> {
  const wait = Math.max(0, Math.min(ms, deadline - Date.now()));
  return new Promise((resolve) => setTimeout(resolve, wait));
}

function parseServers(
  connectionString: string,
): { hostname: string; port: number }[] {
  const hosts = connectionString.split("/")[0] ?? "";
  const servers = hosts.split(",").filter((s) => s !== "").map((entry) => {
    const at = entry.lastIndexOf(":");
    const hostname = at === -1 ? entry : entry.slice(0, at);
    const port = at === -1 ? 2181 : Number(entry.slice(at + 1));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new TypeError(
        `Cannot expire session: bad server "${entry}" in "${connectionString}"`,
      );
    }
    return { hostname, port };
  });
  if (servers.length === 0) {
    throw new TypeError(
      `Cannot expire session: empty connection string "${connectionString}"`,
    );
  }
  return servers;
}

async function closeSessionOnce(
  server: { hostname: string; port: number },
  sessionId: bigint,
  password: Uint8Array,
  timeout: number,
): Promise<"closed" | "unknown" | "interrupted" | "granted-then-interrupted"> {
  const conn = await Deno.connect(server);
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }, timeout);
  let granted = false;
  try {
    // ConnectRequest, then CloseSession only once the server granted the
    // session: a close is never sent with a password the server has not
    // accepted, so a later "unknown session" is unambiguous. The session's own
    // client may reclaim the session in between (one loopback round trip):
    // that shows as "granted-then-interrupted" and the caller tries again.
    // (Not both in one write: ZooKeeper may then run the close before it
    // revalidates the session, and refuse the connect as if the password
    // were wrong.)
    await writeAll(conn, connectRequest(sessionId, password));
    const reader = new FrameReader(conn);
    const response = await reader.next();
    if (response === undefined) return "interrupted";
    if (new DataView(response.buffer).getInt32(4) <= 0) return "unknown";
    granted = true;
    await writeAll(conn, closeRequest());
    const reply = await reader.next().catch(() => undefined);
    return reply === undefined ? "granted-then-interrupted" : "closed";
  } catch (error) {
    if (error instanceof Deno.errors.BadResource) {
      throw new Error(`no answer from ${server.hostname}:${server.port}`);
    }
    if (
      error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.BrokenPipe
    ) {
      return granted ? "granted-then-interrupted" : "interrupted";
    }
    throw error;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

function connectRequest(sessionId: bigint, password: Uint8Array): Uint8Array {
  // protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
  const body = new Uint8Array(4 + 8 + 4 + 8 + 4 + password.length + 1);
  const view = new DataView(body.buffer);
  view.setInt32(0, 0);
  view.setBigInt64(4, 0n);
  view.setInt32(12, 30_000);
  view.setBigUint64(16, sessionId);
  view.setInt32(24, password.length);
  body.set(password, 28);
  body[28 + password.length] = 0;
  return frame(body);
}

function closeRequest(): Uint8Array {
  const body = new Uint8Array(8);
  const view = new DataView(body.buffer);
  view.setInt32(0, 1); // xid
  view.setInt32(4, CLOSE_SESSION);
  return frame(body);
}

function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setInt32(0, body.length);
  out.set(body, 4);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) {
    written += await conn.write(data.subarray(written));
  }
}

/** Reads length-prefixed frames. */
class FrameReader {
  #conn: Deno.Conn;
  #buffer: Uint8Array = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next frame's body, or `undefined` at end of stream. */
  async next(): Promise<Uint8Array | undefined> {
    while (true) {
      if (this.#buffer.length >= 4) {
        const size = new DataView(this.#buffer.buffer, this.#buffer.byteOffset)
          .getInt32(0);
        if (this.#buffer.length >= 4 + size) {
          const body = this.#buffer.slice(4, 4 + size);
          this.#buffer = this.#buffer.slice(4 + size);
          return body;
        }
      }
      const chunk = new Uint8Array(4096);
      const n = await this.#conn.read(chunk);
      if (n === null) return undefined;
      this.#buffer = concat(this.#buffer, chunk.subarray(0, n));
    }
  }
}
