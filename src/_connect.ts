/**
 * Opening a client socket: connect (TCP or TLS), send the preface and wait for
 * the server's, bounded by the connect timeout and the caller's signal.
 *
 * @module
 */

import type { Endpoint } from "./connection.ts";
import { ConnectionError, ProtocolError } from "./errors.ts";
import { errorMessage as message } from "./_util.ts";
import {
  checkPreface,
  DEFAULT_MAX_FRAME_SIZE,
  FrameDecoder,
  PREFACE,
  PREFACE_SIZE,
  PROTOCOL_VERSION,
} from "./protocol/frame.ts";

type Timer = ReturnType<typeof setTimeout>;

/** Default bound of one connect attempt (socket + preface), in ms. */
export const DEFAULT_CONNECT_TIMEOUT = 2000;

/** The connection options the opening reads (`ConnectionOptions` satisfies it). */
export interface OpenSocketOptions {
  connectTimeout?: number;
  signal?: AbortSignal;
  caCerts?: string[];
  maxFrameSize?: number;
}

/** A socket whose preface exchange is done. */
export interface OpenSocket {
  conn: Deno.Conn;
  /** The decoder holding any bytes read after the server's preface. */
  decoder: FrameDecoder;
}

/**
 * Connects to `endpoint` and exchanges prefaces.
 *
 * @throws {ConnectionError} (`written: false`) when the socket cannot be
 * opened, or closes before the server's preface, or on timeout or abort.
 * @throws {ProtocolError} when the peer is not a zkrpc server of this
 * protocol version.
 */
export async function openSocket(
  endpoint: Endpoint,
  options: OpenSocketOptions,
): Promise<OpenSocket> {
  const name = `${endpoint.hostname}:${endpoint.port}`;
  const timeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  const signal = options.signal;
  signal?.throwIfAborted();
  let conn: Deno.Conn | undefined;
  let timer: Timer | undefined;
  let onAbort: (() => void) | undefined;
  let failure: Error | undefined;
  const fail = (error: Error): void => {
    failure ??= error;
    try {
      conn?.close();
    } catch {
      // already closed
    }
  };
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new ConnectionError(
          `Cannot connect to ${name}: no preface from the server within ${timeout} ms`,
          { written: false },
        );
        fail(e);
        reject(e);
      }, timeout);
      onAbort = () => {
        const e = new ConnectionError(`Cannot connect to ${name}: aborted`, {
          written: false,
          cause: signal!.reason,
        });
        fail(e);
        reject(e);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    deadline.catch(() => {});
    const opening = endpoint.tls
      ? Deno.connectTls({
        hostname: endpoint.hostname,
        port: endpoint.port,
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
      })
      : Deno.connect({
        hostname: endpoint.hostname,
        port: endpoint.port,
        transport: "tcp",
      });
    opening.then((c) => {
      conn = c;
      if (failure) fail(failure);
    }, () => {});
    try {
      conn = await Promise.race([opening, deadline]);
    } catch (error) {
      if (error instanceof ConnectionError) throw error;
      throw new ConnectionError(
        `Cannot connect to ${name}: ${message(error)}`,
        { written: false, cause: error },
      );
    }
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // not TCP
    }
    const decoder = new FrameDecoder({
      maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    });
    const handshake = async (): Promise<void> => {
      let off = 0;
      while (off < PREFACE.length) {
        off += await conn!.write(PREFACE.subarray(off));
      }
      while (true) {
        const n = await conn!.read(decoder.writable());
        if (n === null) {
          throw new ConnectionError(
            `Cannot connect to ${name}: the server closed the connection during the handshake`,
            { written: false },
          );
        }
        decoder.commit(n);
        const check = checkPreface(decoder.peekAll());
        if (check === "incomplete") continue;
        if (check === "ok") {
          decoder.skip(PREFACE_SIZE);
          return;
        }
        if (check === "version") {
          throw new ProtocolError(
            `Cannot connect to ${name}: the server speaks zkrpc protocol version ${
              decoder.peekAll()[PREFACE_SIZE - 1]
            }, this client speaks version ${PROTOCOL_VERSION}`,
          );
        }
        throw new ProtocolError(
          `Cannot connect to ${name}: the peer is not a zkrpc server`,
        );
      }
    };
    try {
      await Promise.race([handshake(), deadline]);
    } catch (error) {
      const e = failure ??
        (error instanceof ConnectionError || error instanceof ProtocolError
          ? error
          : new ConnectionError(
            `Cannot connect to ${name}: ${message(error)}`,
            { written: false, cause: error },
          ));
      fail(e);
      throw e;
    }
    return { conn, decoder };
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
