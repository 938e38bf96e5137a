/**
 * Internal: what a server and its connections share - the server's
 * defaults, the options a connection reads and the server's internals
 * (split out of `_server_connection.ts`, which re-exports them).
 *
 * @module
 */

import type { Codec } from "../protocol/codec.ts";
import type { RunningHandlers } from "./_running.ts";
import type { MethodEntry } from "./_handler_table.ts";

/**
 * The server's defaults, defined once (documented with `@default` on
 * `ServeOptions`).
 */
export const SERVER_DEFAULTS = {
  handshakeTimeout: 10_000,
  closeTimeout: 10_000,
  maxInFlightPerConnection: 1024,
  idleTimeout: 120_000,
  frameTimeout: 30_000,
  maxPingsPerMinute: 120,
  maxConnections: 1024,
  maxConnectionsPerAddress: 256,
  maxConnectionAge: 0,
} as const;

/** The `goaway` reason of a server that does not serve. */
export const NOT_SERVING = "Server is not serving";

/**
 * The server options a connection reads (`ServeOptions` satisfies it; the
 * defaults are applied here).
 */
export interface ServerConnectionOptions {
  maxFrameSize?: number;
  maxInFlightPerConnection?: number;
  handshakeTimeout?: number;
  idleTimeout?: number;
  frameTimeout?: number;
  exposeStack?: boolean;
  maxPingsPerMinute?: number;
  maxConnectionAge?: number;
  closeTimeout?: number;
  streamWindow?: number;
}

/** What every connection of one server shares with it. */
export interface ServerInternals {
  /** Methods by name length, with their UTF-8 bytes. */
  table: Map<number, MethodEntry[]>;
  /** Async handler calls not yet settled, across all connections. */
  running: RunningHandlers;
  handlers: object;
  /** The codecs this server accepts, preferred first. */
  codecs: readonly Codec[];
  /** The settings frame payload this server sends. */
  settings: Uint8Array;
  options: ServerConnectionOptions;
  onError: (error: Error, remoteAddr?: Deno.NetAddr) => void;
  /** Run context handlers as the parent of their nested calls. */
  inheritDeadline: boolean;
  /**
   * The `goaway` reason while the server does not serve (set not serving,
   * or warming up), else `undefined`.
   */
  notServing: () => string | undefined;
}
