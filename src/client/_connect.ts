/**
 * Opening a client socket: connect (TCP or TLS), send the preface and wait for
 * the server's, bounded by the connect timeout and the caller's signal.
 *
 * @module
 */

import { DEFAULT_STREAM_WINDOW } from "../protocol/stream_frames.ts";
import { ConnectionError, ProtocolError } from "../errors.ts";
import { errorMessage as message } from "../_util.ts";
import { deadline } from "../_async.ts";
import {
  checkPreface,
  decodeSettings,
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  encodeSettings,
  FrameDecoder,
  FrameType,
  PREFACE,
  PREFACE_SIZE,
  PROTOCOL_VERSION,
  type Settings,
} from "../protocol/frame.ts";
import type { Codec } from "../protocol/codec.ts";
import { codecList } from "../protocol/codec_negotiation.ts";

/**
 * Where a server listens.
 *
 * @example Connect to an address
 * ```ts
 * import { type Address, Connection, serve } from "@zkrpc/zkrpc";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ ok: () => true }, { hostname: "127.0.0.1" });
 * const address: Address = { hostname: "127.0.0.1", port: server.addr.port };
 * await using conn = await Connection.connect(address);
 * assert.equal(conn.endpoint, address);
 * ```
 */
export interface Address {
  /** Host name or IP address. */
  hostname: string;
  /** TCP port. */
  port: number;
  /** Connect with TLS (`Deno.connectTls`). */
  tls?: boolean;
}

/** Default bound of one connect attempt (socket + preface), in ms. */
export const DEFAULT_CONNECT_TIMEOUT = 2000;

/** The connection options the opening reads (`ConnectionOptions` satisfies it). */
export interface OpenSocketOptions {
  connectTimeout?: number;
  signal?: AbortSignal;
  caCerts?: string[];
  maxFrameSize?: number;
  codec?: Codec | readonly Codec[];
  streamWindow?: number;
}

/** A socket whose preface and settings exchange is done. */
export interface OpenSocket {
  conn: Deno.Conn;
  /** The decoder holding any bytes read after the server's settings. */
  decoder: FrameDecoder;
  /** The server's settings. */
  settings: Settings;
  /** The codec negotiated in the settings exchange. */
  codec: Codec;
}

/**
 * Connects to `endpoint` and exchanges prefaces.
 *
 * @throws {ConnectionError} (`written: false`) when the socket cannot be
 * opened, or closes before the server's preface, or on timeout or abort; or
 * when the transports do not match: the message names TLS (a TLS handshake
 * that failed, or a TLS server answering a plain client).
 * @throws {ProtocolError} when the peer is not a zkrpc server of this
 * protocol version.
 */
export async function openSocket(
  endpoint: Address,
  options: OpenSocketOptions,
): Promise<OpenSocket> {
  const name = `${endpoint.hostname}:${endpoint.port}`;
  const timeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  const signal = options.signal;
  signal?.throwIfAborted();
  const offered = codecList(options.codec, `connect to ${name}`);
  const names = offered.map((c) => c.name);
  let conn: Deno.Conn | undefined;
  let failure: Error | undefined;
  const fail = (error: Error): void => {
    failure ??= error;
    try {
      conn?.close();
    } catch {
      // already closed
    }
  };
  const until = Date.now() + timeout;
  /** Bounds a phase by what is left of `timeout`, and by `signal`. */
  const bounded = <T>(phase: Promise<T>): Promise<T> =>
    deadline(phase, until - Date.now(), { signal });
  /** The error for a phase cut short by the timeout or the signal. */
  const cutShort = (error: unknown): ConnectionError | undefined => {
    if (signal?.aborted && error === signal.reason) {
      return new ConnectionError(`Cannot connect to ${name}: aborted`, {
        written: false,
        cause: signal.reason,
      });
    }
    if (error instanceof DOMException && error.name === "TimeoutError") {
      return new ConnectionError(
        `Cannot connect to ${name}: no preface from the server within ${timeout} ms`,
        { written: false },
      );
    }
    return undefined;
  };
  {
    const opening: Promise<Deno.Conn> = endpoint.tls
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
      conn = await bounded(opening);
    } catch (error) {
      const e = cutShort(error) ??
        (error instanceof ConnectionError ? error : new ConnectionError(
          `Cannot connect to ${name}: ${message(error)}`,
          { written: false, cause: error },
        ));
      fail(e);
      throw e;
    }
    if (endpoint.tls) {
      // The handshake on its own, so that its failure is reported as TLS's.
      try {
        await bounded((conn as Deno.TlsConn).handshake());
      } catch (error) {
        const e = cutShort(error) ?? tlsHandshakeError(endpoint, error);
        fail(e);
        throw e;
      }
    }
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // not TCP
    }
    const maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    const decoder = new FrameDecoder({ maxFrameSize });
    let settings: Settings | undefined;
    let codec: Codec | undefined;
    const handshake = async (): Promise<void> => {
      const settingsFrame = encodeFrame(
        FrameType.Settings,
        0,
        encodeSettings({
          maxFrameSize,
          codecs: names,
          maxInFlight: 0,
          streamWindow: options.streamWindow ?? DEFAULT_STREAM_WINDOW,
        }),
      );
      const hello = new Uint8Array(PREFACE.length + settingsFrame.length);
      hello.set(PREFACE);
      hello.set(settingsFrame, PREFACE.length);
      let off = 0;
      while (off < hello.length) {
        off += await conn!.write(hello.subarray(off));
      }
      let prefaceSeen = false;
      while (true) {
        if (!prefaceSeen) {
          const check = checkPreface(decoder.peekAll());
          if (check === "ok") {
            decoder.skip(PREFACE_SIZE);
            prefaceSeen = true;
          } else if (check === "version") {
            throw new ProtocolError(
              `Cannot connect to ${name}: the server speaks zkrpc protocol version ${
                decoder.peekAll()[PREFACE_SIZE - 1]
              }, this client speaks version ${PROTOCOL_VERSION}`,
            );
          } else if (check !== "incomplete") {
            if (isTlsRecord(decoder.peekAll())) {
              // A transport mismatch, as its mirror image (TLS to plain) is.
              throw new ConnectionError(
                `Cannot connect to ${name}: ${PLAIN_TO_TLS}`,
                { written: false },
              );
            }
            throw new ProtocolError(
              `Cannot connect to ${name}: the peer is not a zkrpc server`,
            );
          }
        }
        if (prefaceSeen) {
          // The server's first frame is its settings (protocol version 2).
          const frame = decoder.next();
          if (frame !== undefined) {
            if (frame.type !== FrameType.Settings) {
              throw new ProtocolError(
                `Cannot connect to ${name}: expected the server's settings, got frame type ${frame.type}`,
              );
            }
            settings = decodeSettings(frame.payload);
            // The server picks the same: the first of ours it lists.
            codec = offered.find((c) => settings!.codecs.includes(c.name));
            if (codec === undefined) {
              throw new ProtocolError(
                `Cannot connect to ${name}: the server uses codec [${
                  settings.codecs.join(", ")
                }], this client offers [${names.join(", ")}]`,
              );
            }
            return;
          }
        }
        const n = await conn!.read(decoder.writable());
        if (n === null) {
          throw new ConnectionError(
            `Cannot connect to ${name}: the server closed the connection during the handshake`,
            { written: false },
          );
        }
        decoder.commit(n);
      }
    };
    try {
      await bounded(handshake());
    } catch (error) {
      const e = cutShort(error) ?? failure ??
        (error instanceof ConnectionError || error instanceof ProtocolError
          ? error
          : new ConnectionError(
            `Cannot connect to ${name}: ${message(error)}`,
            { written: false, cause: error },
          ));
      fail(e);
      throw e;
    }
    return { conn, decoder, settings: settings!, codec: codec! };
  }
}

/** Why a plain-TCP client got a TLS record back. */
const PLAIN_TO_TLS =
  "the server answered with TLS: it serves TLS and this client connected in plain TCP (connect with tls: true)";

/**
 * Whether the first bytes a peer sent are a TLS record: a content type of
 * 20-24 (alert, handshake...) and major version 3. A TLS server answers a
 * plain client's preface with such a record (an alert) before it closes.
 */
function isTlsRecord(bytes: Uint8Array): boolean {
  const type = bytes[0];
  return type !== undefined && type >= 0x14 && type <= 0x18 &&
    (bytes.length < 2 || bytes[1] === 0x03);
}

/**
 * The error for a failed TLS handshake, naming TLS and the likely cause: a
 * server that does not speak TLS, a certificate for another name, an
 * expired one, or one this client does not trust.
 *
 * @param endpoint Where it connected, for the message.
 * @param error What the handshake threw.
 * @returns A {@linkcode ConnectionError} (`written: false`).
 */
function tlsHandshakeError(endpoint: Address, error: unknown): ConnectionError {
  const detail = message(error);
  const name = `${endpoint.hostname}:${endpoint.port}`;
  const cause =
    /InvalidContentType|corrupt message|InvalidMessage|record overflow|wrong version/i
        .test(detail)
      ? "the server does not speak TLS (it answered in plain TCP): connect without TLS, or start the server with serve({ tls })"
      : /NotValidForName|not valid for/i.test(detail)
      ? `the server's certificate is not valid for "${endpoint.hostname}": connect with (register) a name the certificate lists`
      : /Expired|NotValidYet/i.test(detail)
      ? "the server's certificate has expired or is not valid yet"
      : /certificate|UnknownIssuer|BadSignature/i.test(detail)
      ? "the server's certificate is not trusted: pass the CA that signed it in caCerts (zkrpc: --ca FILE) or set DENO_CERT=FILE"
      : "the server closed or refused the TLS handshake";
  return new ConnectionError(
    `Cannot connect to ${name}: TLS handshake failed: ${cause} (${detail})`,
    { written: false, cause: error },
  );
}
