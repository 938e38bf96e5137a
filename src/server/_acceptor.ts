/**
 * Internal: a server's accept loop - accepting with back-off on errors, the
 * connection limits (in total and per remote address), refusing over them
 * with a `goaway`, and the set of open connections.
 *
 * @module
 */

import { backoff, delay } from "../_async.ts";
import { ProtocolError } from "../errors.ts";
import { encodeFrame, FrameType, PREFACE } from "../protocol/frame.ts";
import {
  SERVER_DEFAULTS,
  ServerConnection,
  type ServerInternals,
} from "./_server_connection.ts";

const utf8 = new TextEncoder();

/** Accept errors that concern one connection, not the listener. */
const TRANSIENT_ACCEPT_ERRORS = [
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.ConnectionRefused,
  Deno.errors.NotConnected,
];

/** The connection limits of a server (`ServeOptions`). */
export interface AcceptLimits {
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
}

/**
 * Accepts the connections of one listener within the limits.
 *
 * @example Accept until stopped
 * ```ts ignore
 * const acceptor = new Acceptor(listener, internals, options);
 * await acceptor.stop(); // closes the listener, ends the loop
 * for (const conn of acceptor.connections) conn.drain("closing");
 * ```
 */
export class Acceptor {
  /** The open connections. */
  readonly connections: Set<ServerConnection> = new Set();
  #listener: Deno.Listener;
  #internals: ServerInternals;
  #limits: AcceptLimits;
  /** Open connections per remote IP. */
  #perAddress = new Map<string, number>();
  #refusals = new Set<Promise<void>>();
  #stopped = false;
  /** Cuts the accept loop's back-off short when stopping. */
  #stopBackoff = new AbortController();
  #accepting: Promise<void>;

  /**
   * Starts accepting.
   *
   * @param listener The bound listener.
   * @param internals What the connections share with the server.
   * @param limits The connection limits.
   */
  constructor(
    listener: Deno.Listener,
    internals: ServerInternals,
    limits: AcceptLimits,
  ) {
    this.#listener = listener;
    this.#internals = internals;
    this.#limits = limits;
    this.#accepting = this.#loop();
  }

  /** Closes the listener and waits for the accept loop to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    this.#stopBackoff.abort();
    await this.#accepting;
  }

  /** Waits until the goaways sent to refused connections are written. */
  refused(): Promise<unknown> {
    return Promise.all(this.#refusals);
  }

  async #loop(): Promise<void> {
    let failures = 0;
    // Accepting goes on while close() deregisters (clients that have not seen
    // the node disappear yet still get served, then goaway); it stops when
    // close() closes the listener.
    while (!this.#stopped) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
        failures = 0;
      } catch (error) {
        if (this.#stopped || error instanceof Deno.errors.BadResource) {
          break;
        }
        if (!TRANSIENT_ACCEPT_ERRORS.some((cls) => error instanceof cls)) {
          this.#internals.onError(
            new Error(`Cannot accept connections: ${String(error)}`, {
              cause: error,
            }),
          );
        }
        const pause = backoff(++failures, { minTimeout: 5, maxTimeout: 1000 });
        await delay(pause, { signal: this.#stopBackoff.signal }).catch(
          () => {},
        );
        continue;
      }
      const remoteAddr = conn.remoteAddr as Deno.NetAddr;
      const max = this.#limits.maxConnections ??
        SERVER_DEFAULTS.maxConnections;
      const host = remoteAddr.hostname;
      const fromHost = this.#perAddress.get(host) ?? 0;
      const maxPerAddress = this.#limits.maxConnectionsPerAddress ??
        SERVER_DEFAULTS.maxConnectionsPerAddress;
      if (this.connections.size >= max) {
        this.#internals.onError(
          new ProtocolError(
            `Connection from ${host}:${remoteAddr.port} refused: limit of ${max} connections reached`,
          ),
          remoteAddr,
        );
        this.#refuse(conn, "Too many connections");
        continue;
      }
      if (maxPerAddress > 0 && fromHost >= maxPerAddress) {
        this.#internals.onError(
          new ProtocolError(
            `Connection from ${host}:${remoteAddr.port} refused: limit of ${maxPerAddress} connections from ${host} reached`,
          ),
          remoteAddr,
        );
        this.#refuse(conn, "Too many connections from this address");
        continue;
      }
      try {
        (conn as Deno.TcpConn).setNoDelay?.(true);
      } catch {
        // not a TCP socket
      }
      const sc = new ServerConnection(this.#internals, conn, remoteAddr);
      this.connections.add(sc);
      this.#perAddress.set(host, fromHost + 1);
      sc.done.then(() => {
        this.connections.delete(sc);
        const left = this.#perAddress.get(host)! - 1;
        if (left === 0) this.#perAddress.delete(host);
        else this.#perAddress.set(host, left);
      });
      sc.start();
    }
  }

  #refuse(conn: Deno.Conn, reason: string): void {
    const settings = encodeFrame(
      FrameType.Settings,
      0,
      this.#internals.settings,
    );
    const goaway = encodeFrame(
      FrameType.Goaway,
      0,
      utf8.encode(reason),
    );
    const frame = new Uint8Array(
      PREFACE.length + settings.length + goaway.length,
    );
    frame.set(PREFACE);
    frame.set(settings, PREFACE.length);
    frame.set(goaway, PREFACE.length + settings.length);
    const p = conn.write(frame).then(() => {}, () => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // ignore
      }
      this.#refusals.delete(p);
    });
    this.#refusals.add(p);
  }
}
