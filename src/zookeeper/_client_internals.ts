/**
 * The parts of node-zookeeper-client's internals that `ZooKeeperSession`
 * reaches into, behind plain functions taking the client:
 * the shapes of `Client` / `ConnectionManager` / its socket, the
 * `ConnectionManager.STATES` values, a server rotation whose back-off timer
 * can be cancelled, a handshake timeout and a read timeout the client lacks,
 * and the release of its socket and timers.
 *
 * node-zookeeper-client is pinned to the exact version these patches were
 * written for (deno.json); tests/zookeeper_internals_test.ts fails when an
 * upgrade changes the shapes relied on here. The patches and what they work
 * around:
 *
 * - Handshake timeout ({@linkcode guardHandshake}): the client clears its
 *   connect timeout on TCP connect, so a server that accepts but never
 *   answers the session request leaves it waiting forever
 *   (https://github.com/alexguan/node-zookeeper-client/pull/57, open).
 * - Server rotation ({@linkcode patchServerRotation}): the original's
 *   `spinDelay` timer is unreachable, so a closed client still reconnects
 *   and keeps the process alive; no public API cancels it
 *   (https://github.com/alexguan/node-zookeeper-client/issues/60 and
 *   https://github.com/mcavage/node-zkplus/pull/37 describe the symptom).
 * - Release ({@linkcode releaseClient}): `close()` does not close the socket
 *   of a client that is not connected
 *   (https://github.com/alexguan/node-zookeeper-client/issues/60).
 * - Connect timeout: the public API retries forever
 *   (https://github.com/alexguan/node-zookeeper-client/issues/71); that one
 *   needs no patch, `ZooKeeperSession.connect` bounds it with a timer.
 * - `ConnectionManager.STATES` is read (not patched): the public `State`
 *   events do not tell "connecting" from "closing".
 * - Persistent watches (ZooKeeper 3.6+; {@linkcode sendAddWatch},
 *   {@linkcode sendRemoveWatches}, {@linkcode onWatchEvent}): the client knows
 *   neither `addWatch` (opcode 106) nor `removeWatches` (18). A reply to an
 *   opcode it does not know destroys the socket, so these requests present
 *   themselves to the client as `SetWatches` (whose reply has no body) and
 *   write their own opcode. Its `WatcherManager` drops events for paths it has
 *   no one-shot watch on (the children a recursive watch reports) and throws on
 *   event types 5-7 inside the socket handler, so every event goes to the
 *   session first and only types 1-4 reach the `WatcherManager`. And
 *   `Exception.create` throws on an error code it does not know (e.g.
 *   `NOWATCHER`, -121) inside the socket handler; patched to return an error
 *   named after the code. `SetWatches2` (105) is not used: the membership
 *   re-arms with `addWatch` after every reconnection, the same one request,
 *   and re-lists anyway since ZooKeeper does not replay what happened while
 *   it was away; that way nothing is sent that a server before 3.6 does not
 *   know, except `addWatch` itself, whose `UNIMPLEMENTED` selects child
 *   watches.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import zookeeper from "node-zookeeper-client";
import { settleWithin } from "../_async.ts";

type Timer = ReturnType<typeof setTimeout>;

// Just the parts of node-zookeeper-client the session touches.
/** A node-style callback of a client operation. */
export type Callback = (error: unknown, ...results: unknown[]) => void;
interface ClientSocket {
  destroyed: boolean;
  destroy(): void;
  once(event: "close", listener: () => void): void;
  on(event: "error", listener: (error: Error) => void): void;
}
interface ConnectionManager {
  state: number;
  chrootPath: string | undefined;
  pendingBuffer: Buffer | null;
  watcherManager: { emit(event: ClientWatchEvent): void };
  queue(request: RawRequest, callback: Callback): void;
  servers: unknown[];
  nextServerIndex: number;
  serverAttempts: number;
  spinDelay: number;
  socket: ClientSocket | undefined;
  connectTimeoutHandler: Timer | null;
  sessionTimeout: number;
  findNextServer(callback: (server: unknown) => void): void;
  on(event: "state", listener: (state: number) => void): void;
  onSocketConnected(): void;
  onSocketData(buffer: Buffer): void;
  onSocketTimeout(): void;
}
/** A node-zookeeper-client `Client`. */
export interface Client {
  connectionManager: ConnectionManager;
  connect(): void;
  close(): void;
  addAuthInfo(scheme: string, auth: Buffer): void;
  getSessionId(): Buffer;
  getSessionPassword(): Buffer;
  getSessionTimeout(): number;
  create(path: string, ...args: unknown[]): void;
  remove(path: string, version: number, callback: Callback): void;
  setData(path: string, data: Buffer, version: number, cb: Callback): void;
  getData(path: string, ...args: unknown[]): void;
  getChildren(path: string, ...args: unknown[]): void;
  exists(path: string, ...args: unknown[]): void;
  getACL(path: string, callback: Callback): void;
  setACL(path: string, acls: unknown[], version: number, cb: Callback): void;
}

/** A watch event as the client decodes it (`WatcherEvent`). */
export interface ClientWatchEvent {
  type: number;
  state: number;
  path: string;
}

/** A request the client queues: its header (xid, type) and its bytes. */
interface RawRequest {
  header: { xid: number; type: number };
  payload: null;
  toBuffer(): Buffer;
}

/** `jute.OP_CODES.SET_WATCHES`: a request type whose reply has no body. */
export const OP_SET_WATCHES = 101;
/** ZooKeeper's `addWatch` opcode (3.6+). */
export const OP_ADD_WATCH = 106;
/** ZooKeeper's `removeWatches` opcode. */
export const OP_REMOVE_WATCHES = 18;
/** `AddWatchMode`: 0 persistent, 1 persistent recursive. */
export const ADD_WATCH_MODES = {
  persistent: 0,
  persistent_recursive: 1,
} as const;
/**
 * `WatcherType` of `removeWatches` for each persistent mode: `Any` (3) for
 * both, since ZooKeeper 3.8 answers `MARSHALLING_ERROR` to `Persistent` (4)
 * and `PersistentRecursive` (5). `Any` also drops the one-shot watches the
 * connection holds on that exact path.
 */
export const REMOVE_WATCH_TYPES = {
  persistent: 3,
  persistent_recursive: 3,
} as const;
/** ZooKeeper's error names the client does not know, by code. */
const EXTRA_ERROR_NAMES: Record<number, string> = {
  [-118]: "SESSION_MOVED",
  [-119]: "NOT_READ_ONLY",
  [-120]: "EPHEMERAL_ON_LOCAL_SESSION",
  [-121]: "NO_WATCHER",
  [-122]: "REQUEST_TIMEOUT",
  [-124]: "RECONFIG_DISABLED",
  [-125]: "SESSION_CLOSED_REQUIRE_SASL_AUTH",
  [-127]: "QUOTA_EXCEEDED",
  [-13]: "NEW_CONFIG_NO_QUORUM",
  [-14]: "RECONFIG_IN_PROGRESS",
  [-15]: "UNKNOWN_SESSION",
  [-16]: "THROTTLED_OP",
};

// ConnectionManager.STATES of node-zookeeper-client 1.x.
/** `ConnectionManager.STATES.CONNECTED`. */
export const CM_CONNECTED = 2;
/** `ConnectionManager.STATES.DISCONNECTED`. */
export const CM_DISCONNECTED = 0;
/** `ConnectionManager.STATES.CONNECTING`. */
export const CM_CONNECTING = 1;
/** `ConnectionManager.STATES.CLOSING`. */
export const CM_CLOSING = -1;
/** `ConnectionManager.STATES.CLOSED`. */
export const CM_CLOSED = -2;
/** `ConnectionManager.STATES.SESSION_EXPIRED`. */
export const CM_SESSION_EXPIRED = -3;
/** `ConnectionManager.STATES.AUTH_FAILED`. */
export const CM_AUTH_FAILED = -4;

/** Pause between rounds over all servers while reconnecting (ms). */
const RETRY_DELAY = 250;
/** How long close() waits for the server to acknowledge (ms). */
const CLOSE_TIMEOUT = 2000;

/**
 * node-zookeeper-client has no timeout between TCP connect and the server's
 * session answer: a socket that connects but never gets an answer (or never
 * completes) leaves the client waiting forever. Destroying it makes the
 * client try again.
 */
const HANDSHAKE_TIMEOUT = 2000;

/**
 * The timers the patched client arms, so that releasing it can cancel them,
 * and whether it is being released (then it stops reconnecting).
 */
export interface ClientTimers {
  releasing: boolean;
  retryTimer: Timer | undefined;
  handshakeTimer: Timer | undefined;
  /**
   * Called with the error of each socket that failed (refused, no such
   * host...) and the server it was opened to, as `host:port`.
   */
  onSocketError?: ((error: Error, server: string) => void) | undefined;
}

/**
 * Creates a client that does not retry operations itself, with the server
 * rotation replaced by one whose timers `timers` tracks.
 *
 * @throws node-zookeeper-client's error for an invalid connection string.
 */
export function createClient(
  connectionString: string,
  sessionTimeout: number,
  timers: ClientTimers,
): Client {
  patchUnknownErrorCodes();
  const client = zookeeper.createClient(connectionString, {
    sessionTimeout,
    spinDelay: RETRY_DELAY,
    retries: 0,
  }) as Client;
  patchServerRotation(client, timers);
  patchReadTimeout(client);
  return client;
}

/** Listens to the connection manager's state changes (`CM_*` values). */
export function onClientState(
  client: Client,
  listener: (state: number) => void,
): void {
  client.connectionManager.on("state", listener);
}

/** Whether the client's connection manager is connected right now. */
export function isClientConnected(client: Client): boolean {
  return client.connectionManager.state === CM_CONNECTED;
}

/** Cancels the handshake timeout of the socket being opened, if any. */
export function stopHandshakeGuard(timers: ClientTimers): void {
  clearTimeout(timers.handshakeTimer);
  timers.handshakeTimer = undefined;
}

/**
 * Asks the server to end the session (so ephemeral nodes go at once) and
 * waits, at most `CLOSE_TIMEOUT`, for it to close the socket.
 */
export async function endSession(client: Client): Promise<void> {
  const acknowledged = Promise.withResolvers<void>();
  const socket = client.connectionManager.socket;
  socket?.once("close", () => acknowledged.resolve());
  client.close();
  await settleWithin(acknowledged.promise, CLOSE_TIMEOUT);
}

/** Destroys the client's socket and timers, whatever its state. */
export async function releaseClient(
  client: Client,
  timers: ClientTimers,
): Promise<void> {
  timers.releasing = true;
  clearTimeout(timers.retryTimer);
  timers.retryTimer = undefined;
  clearTimeout(timers.handshakeTimer);
  timers.handshakeTimer = undefined;
  const manager = client.connectionManager;
  if (manager.connectTimeoutHandler) {
    clearTimeout(manager.connectTimeoutHandler);
    manager.connectTimeoutHandler = null;
  }
  if (manager.state !== CM_CLOSED) {
    // CLOSING stops the client from reconnecting when the socket closes.
    manager.state = CM_CLOSING;
  }
  const socket = manager.socket;
  if (socket && !socket.destroyed) {
    const closed = Promise.withResolvers<void>();
    socket.once("close", () => closed.resolve());
    socket.destroy();
    await settleWithin(closed.promise, CLOSE_TIMEOUT);
  }
}

/** Bounds the handshake of the socket the client just opened. */
function guardHandshake(
  client: Client,
  timers: ClientTimers,
  server: string,
): void {
  clearTimeout(timers.handshakeTimer);
  const manager = client.connectionManager;
  const socket = manager.socket;
  timers.handshakeTimer = setTimeout(() => {
    timers.handshakeTimer = undefined;
    if (
      manager.socket === socket && socket && !socket.destroyed &&
      manager.state === CM_CONNECTING && !timers.releasing
    ) {
      timers.onSocketError?.(
        Object.assign(
          new Error(
            `the server accepted the connection but did not answer the session request within ${HANDSHAKE_TIMEOUT} ms`,
          ),
          { code: "ETIMEDOUT" },
        ),
        server,
      );
      socket.destroy();
    }
  }, HANDSHAKE_TIMEOUT);
}

/**
 * Also: the client parses each socket's bytes after the unparsed tail of the
 * previous socket (its `pendingBuffer` is never reset), so a socket destroyed
 * mid-frame (by the guards here, under load) made it misread the next
 * connect answer and throw from the socket handler, an uncaught error; the
 * tail is dropped on every new connection, and a frame the client cannot
 * parse drops the connection instead of throwing.
 *
 * node-zookeeper-client pings a third of the session timeout after the last
 * activity but never notices that nothing comes back (its read timeout is
 * commented out): behind a partition (no RST, silence) it stays "connected"
 * until TCP gives up, minutes later, and a client never says it serves from
 * its cache. The patched client drops a connection that received nothing for
 * two thirds of the session timeout, as ZooKeeper's Java client does; it is
 * checked at each ping, so a silent server is noticed within one session
 * timeout, and the client moves to the next server.
 */
function patchReadTimeout(client: Client): void {
  const manager = client.connectionManager;
  let lastReceived = Date.now();
  const onConnected = manager.onSocketConnected;
  manager.onSocketConnected = function (this: ConnectionManager) {
    lastReceived = Date.now();
    // The client keeps the unparsed tail of the previous socket's stream
    // and would parse the new one's connect answer after it.
    this.pendingBuffer = null;
    onConnected.call(this);
  };
  const onData = manager.onSocketData;
  manager.onSocketData = function (this: ConnectionManager, buffer: Buffer) {
    lastReceived = Date.now();
    try {
      onData.call(this, buffer);
    } catch {
      // Bytes the client cannot parse: drop the connection (the client
      // reconnects) rather than throw out of the socket's data handler.
      this.pendingBuffer = null;
      this.socket?.destroy();
    }
  };
  const onTimeout = manager.onSocketTimeout;
  manager.onSocketTimeout = function (this: ConnectionManager) {
    const socket = this.socket;
    if (
      socket && !socket.destroyed && this.state === CM_CONNECTED &&
      Date.now() - lastReceived > this.sessionTimeout * 2 / 3
    ) {
      socket.destroy();
      return;
    }
    onTimeout.call(this);
  };
}

/**
 * Replaces the client's server rotation with one whose back-off timer is
 * tracked, so close() can cancel it (the original's timer is unreachable
 * and would outlive the session), and which stops once released.
 */
function patchServerRotation(client: Client, timers: ClientTimers): void {
  const manager = client.connectionManager;
  manager.findNextServer = (callback) => {
    if (timers.releasing) return;
    manager.nextServerIndex %= manager.servers.length;
    const next = (): void => {
      timers.retryTimer = undefined;
      if (timers.releasing) return;
      const server = manager.servers[manager.nextServerIndex] as {
        host: string;
        port: number;
      };
      callback(server);
      manager.nextServerIndex += 1;
      const address = `${server.host}:${server.port}`;
      const onError = timers.onSocketError;
      if (onError !== undefined) {
        manager.socket?.on("error", (error) => onError(error, address));
      }
      guardHandshake(client, timers, address);
    };
    if (manager.serverAttempts === manager.servers.length) {
      timers.retryTimer = setTimeout(() => {
        manager.serverAttempts = 0;
        next();
      }, Math.random() * manager.spinDelay);
    } else {
      manager.serverAttempts += 1;
      queueMicrotask(next);
    }
  };
}

let errorCodesPatched = false;

/**
 * Makes `Exception.create` (which the socket handler calls for every error
 * reply) return an error for a code the client does not know instead of
 * throwing inside the socket handler.
 */
function patchUnknownErrorCodes(): void {
  if (errorCodesPatched) return;
  errorCodesPatched = true;
  const exception = zookeeper.Exception as unknown as {
    create(code: number, path?: string): Error;
  };
  const create = exception.create;
  exception.create = (code: number, path?: string): Error => {
    try {
      return create(code, path);
    } catch {
      const error = new Error(`ZooKeeper error ${code}`);
      error.name = EXTRA_ERROR_NAMES[code] ?? `ERROR_${code}`;
      return Object.assign(error, { code, getCode: () => code });
    }
  };
}

/**
 * Queues a request of `opcode` whose body is `path` (with the chroot in
 * front) and one int, and whose reply carries no body.
 */
function sendPathRequest(
  client: Client,
  opcode: number,
  path: string,
  value: number,
  callback: Callback,
): void {
  const manager = client.connectionManager;
  const header = { xid: 0, type: OP_SET_WATCHES };
  const request: RawRequest = {
    header,
    payload: null,
    toBuffer(): Buffer {
      const chroot = manager.chrootPath;
      const full = chroot ? (path === "/" ? chroot : chroot + path) : path;
      const bytes = new TextEncoder().encode(full);
      const buffer = new DataView(new ArrayBuffer(20 + bytes.length));
      buffer.setInt32(0, buffer.byteLength - 4); // length of what follows
      buffer.setInt32(4, header.xid); // set by the client when it sends
      buffer.setInt32(8, opcode);
      buffer.setInt32(12, bytes.length);
      new Uint8Array(buffer.buffer).set(bytes, 16);
      buffer.setInt32(16 + bytes.length, value);
      return Buffer.from(buffer.buffer);
    },
  };
  manager.queue(request, (error) => callback(error));
}

/**
 * Sends `addWatch(path, mode)` (ZooKeeper 3.6+; older servers answer
 * `UNIMPLEMENTED` and close the connection).
 */
export function sendAddWatch(
  client: Client,
  path: string,
  mode: keyof typeof ADD_WATCH_MODES,
  callback: Callback,
): void {
  sendPathRequest(client, OP_ADD_WATCH, path, ADD_WATCH_MODES[mode], callback);
}

/** Sends `removeWatches(path, type)` for a persistent watch of `mode`. */
export function sendRemoveWatches(
  client: Client,
  path: string,
  mode: keyof typeof REMOVE_WATCH_TYPES,
  callback: Callback,
): void {
  sendPathRequest(
    client,
    OP_REMOVE_WATCHES,
    path,
    REMOVE_WATCH_TYPES[mode],
    callback,
  );
}

/**
 * Hands every watch event to `listener` first (the chroot already removed
 * from its path); only types 1-4 then go on to the client's
 * `WatcherManager`, which throws on any other.
 */
export function onWatchEvent(
  client: Client,
  listener: (event: ClientWatchEvent) => void,
): void {
  const watchers = client.connectionManager.watcherManager;
  const emit = watchers.emit;
  watchers.emit = function (this: unknown, event: ClientWatchEvent) {
    listener(event);
    if (event.type >= 1 && event.type <= 4) emit.call(this, event);
  };
}
