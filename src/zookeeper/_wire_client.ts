/**
 * The ZooKeeper client under `ZooKeeperSession`: one TCP connection at a
 * time (`Deno.connect`), the session handshake, requests matched to replies
 * in order, pings, one-shot watches, and the rotation over the ensemble's
 * servers. It speaks jute (`_jute.ts`) and knows nothing of zkrpc; the
 * session above it turns callbacks into promises and states into events.
 *
 * What it guarantees, each a lesson of the client it replaces
 * (node-zookeeper-client, see docs/zookeeper.md):
 *
 * - A server that accepts the connection but never answers the session
 *   request is left after {@linkcode HANDSHAKE_TIMEOUT}.
 * - A connection that received nothing for two thirds of the session
 *   timeout is dropped (a silent partition is noticed within one session
 *   timeout), as ZooKeeper's Java client does.
 * - Each connection parses its own bytes; a frame it cannot parse, or a
 *   reply out of order, drops that connection (the client reconnects).
 * - After every server failed once, it waits a random pause of up to
 *   {@linkcode RETRY_DELAY} before the next round; `release()` cancels
 *   every timer and socket.
 * - Every watch event goes to the session first (persistent watches); the
 *   one-shot watches registered on this client get types 1-4.
 *
 * @module
 */

import {
  type AclRecord,
  JuteError,
  JuteReader,
  JuteWriter,
  MAX_FRAME_BYTES,
  type StatRecord,
} from "./_jute.ts";
import { settleWithin } from "../_async.ts";
import { parseConnectionString } from "./config.ts";

/** A node-style callback of a client operation. */
export type Callback = (error: unknown, ...results: unknown[]) => void;

/** A watch event as the wire has it (`WatcherEvent`), chroot removed. */
export interface ClientWatchEvent {
  type: number;
  state: number;
  path: string;
}

// Client states; the session reads them.
/** Connected, the session established. */
export const CM_CONNECTED = 2;
/** No connection; about to try the next server. */
export const CM_DISCONNECTED = 0;
/** Opening a connection or waiting for the session answer. */
export const CM_CONNECTING = 1;
/** `closeSession` sent; waiting for the server to close. */
export const CM_CLOSING = -1;
/** Closed for good. */
export const CM_CLOSED = -2;
/** The server said the session expired. */
export const CM_SESSION_EXPIRED = -3;
/** The server rejected the credentials. */
export const CM_AUTH_FAILED = -4;

/** Pause between rounds over all servers while reconnecting (ms). */
export const RETRY_DELAY = 250;
/** How long `endSession()` waits for the server to close (ms). */
const CLOSE_TIMEOUT = 2000;
/** From opening a connection to the session answer, at most (ms). */
export const HANDSHAKE_TIMEOUT = 2000;

/** ZooKeeper's opcodes, as far as the session uses them. */
export const OP = {
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  setACL: 7,
  ping: 11,
  getChildren2: 12,
  removeWatches: 18,
  closeSession: -11,
  auth: 100,
  setWatches: 101,
  addWatch: 106,
} as const;

const XID_NOTIFICATION = -1;
const XID_PING = -2;
const XID_AUTH = -4;
const XID_SET_WATCHES = -8;

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

/** ZooKeeper's error names, by code. */
const ERROR_NAMES: Record<number, string> = {
  [-1]: "SYSTEM_ERROR",
  [-2]: "RUNTIME_INCONSISTENCY",
  [-3]: "DATA_INCONSISTENCY",
  [-4]: "CONNECTION_LOSS",
  [-5]: "MARSHALLING_ERROR",
  [-6]: "UNIMPLEMENTED",
  [-7]: "OPERATION_TIMEOUT",
  [-8]: "BAD_ARGUMENTS",
  [-13]: "NEW_CONFIG_NO_QUORUM",
  [-14]: "RECONFIG_IN_PROGRESS",
  [-15]: "UNKNOWN_SESSION",
  [-16]: "THROTTLED_OP",
  [-100]: "API_ERROR",
  [-101]: "NO_NODE",
  [-102]: "NO_AUTH",
  [-103]: "BAD_VERSION",
  [-108]: "NO_CHILDREN_FOR_EPHEMERALS",
  [-110]: "NODE_EXISTS",
  [-111]: "NOT_EMPTY",
  [-112]: "SESSION_EXPIRED",
  [-113]: "INVALID_CALLBACK",
  [-114]: "INVALID_ACL",
  [-115]: "AUTH_FAILED",
  [-118]: "SESSION_MOVED",
  [-119]: "NOT_READ_ONLY",
  [-120]: "EPHEMERAL_ON_LOCAL_SESSION",
  [-121]: "NO_WATCHER",
  [-122]: "REQUEST_TIMEOUT",
  [-124]: "RECONFIG_DISABLED",
  [-125]: "SESSION_CLOSED_REQUIRE_SASL_AUTH",
  [-127]: "QUOTA_EXCEEDED",
};

const NO_NODE = -101;
const CONNECTION_LOSS = -4;

/**
 * An error of ZooKeeper's, named after its code (`NO_NODE`, ...), or
 * `ERROR_<code>` for a code this client does not know.
 *
 * @param code ZooKeeper's error code.
 * @param path The path of the request, if any.
 * @returns The error; `name` is the code's name and `code` the number.
 */
export function wireError(code: number, path?: string): Error {
  const name = ERROR_NAMES[code] ?? `ERROR_${code}`;
  const error = new Error(
    `ZooKeeper error ${name} (${code})${
      path === undefined ? "" : ` at ${path}`
    }`,
  );
  error.name = name;
  return Object.assign(error, { code });
}

/** What the client uses of a connection. */
export type WireConn = Pick<Deno.Conn, "read" | "write" | "close">;

/**
 * Opens a connection to one server; aborting `signal` gives up on it.
 * `Deno.connect` unless the client's options give another.
 */
export type Connector = (
  options: { hostname: string; port: number; signal: AbortSignal },
) => Promise<WireConn>;

/** What the session gives the client besides its servers and timeout. */
export interface ClientOptions {
  /**
   * Called with the error of each connection attempt that failed (refused,
   * no such host, no answer...) and its server, as `host:port`.
   */
  onSocketError?: ((error: Error, server: string) => void) | undefined;
  /**
   * How long an attempt may take to connect and get its session answer
   * (ms); {@linkcode HANDSHAKE_TIMEOUT} by default.
   */
  handshakeTimeout?: number | undefined;
  /**
   * Opens each connection; `Deno.connect` by default. The unit tests give
   * one that holds a connect or a write, to order a late one against the
   * attempt that replaced it.
   */
  connect?: Connector | undefined;
}

/** One request on its way: what to do with its reply. */
interface Pending {
  xid: number;
  op: number;
  path: string | undefined;
  read: (reader: JuteReader) => unknown[];
  callback: Callback;
  /** Registers the request's one-shot watch; `true` when it got NO_NODE. */
  watch: ((noNode: boolean) => void) | undefined;
}

/** An unsent request: built once connected (the xid is per connection). */
interface Outgoing {
  op: number;
  path: string | undefined;
  /** What follows the path (the path itself is written by `#send`). */
  body: (writer: JuteWriter) => void;
  read: (reader: JuteReader) => unknown[];
  callback: Callback;
  watch: ((noNode: boolean) => void) | undefined;
}

/** One-shot watch listener. */
export type OneShotWatcher = (event: ClientWatchEvent) => void;

/** ACL entry, as the client takes and returns it. */
export type { AclRecord, StatRecord };

/**
 * A ZooKeeper client over `Deno.connect`.
 *
 * @example Its lifecycle (needs a ZooKeeper, so not run)
 * ```ts ignore
 * import { WireClient, CM_CONNECTED } from "./_wire_client.ts";
 *
 * const client = new WireClient("127.0.0.1:2181", 4000);
 * client.onState((state) => {
 *   if (state === CM_CONNECTED) {
 *     client.exists("/", undefined, (error, stat) => console.log(error, stat));
 *   }
 * });
 * client.connect();
 * ```
 */
export class WireClient {
  readonly #servers: { host: string; port: number }[];
  readonly #chroot: string | undefined;
  #requestedTimeout: number;
  #timeout: number;
  readonly #options: ClientOptions;
  readonly #handshakeTimeout: number;
  readonly #connect: Connector;
  #state = CM_DISCONNECTED;
  #stateListeners: ((state: number) => void)[] = [];
  #watchListeners: ((event: ClientWatchEvent) => void)[] = [];
  #sessionId = 0n;
  #password: Uint8Array = new Uint8Array(16);
  #lastZxid = 0n;
  #credentials: { scheme: string; auth: Uint8Array }[] = [];
  #releasing = false;
  #nextServer = 0;
  #attempts = 0;
  /** Bumped for each connection; stale callbacks compare it. */
  #generation = 0;
  #conn: WireConn | undefined;
  /** `host:port` of the connection's server. */
  #address = "";
  /** The connection's writes, one after the other. */
  #writing: Promise<void> = Promise.resolve();
  #connecting: AbortController | undefined;
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #lastReceived = 0;
  #xid = 1;
  #pending: Pending[] = [];
  #outbox: Outgoing[] = [];
  #closed: PromiseWithResolvers<void> | undefined;
  #dataWatches = new Map<string, Set<OneShotWatcher>>();
  #existWatches = new Map<string, Set<OneShotWatcher>>();
  #childWatches = new Map<string, Set<OneShotWatcher>>();

  /**
   * @param connectionString `host:port[,host:port...][/chroot]`.
   * @param sessionTimeout The session timeout to ask for (ms).
   * @param options What the session hears of failed attempts, and the
   *   handshake timeout.
   * @throws {TypeError} For a malformed connection string.
   */
  constructor(
    connectionString: string,
    sessionTimeout: number,
    options: ClientOptions = {},
  ) {
    const { servers, chroot } = parseConnectionString(connectionString);
    this.#servers = shuffled(servers);
    this.#chroot = chroot;
    this.#requestedTimeout = sessionTimeout;
    this.#timeout = sessionTimeout;
    this.#options = options;
    this.#handshakeTimeout = options.handshakeTimeout ?? HANDSHAKE_TIMEOUT;
    this.#connect = options.connect ?? ((target) => Deno.connect(target));
  }

  /** The client's state (`CM_*`). */
  get state(): number {
    return this.#state;
  }

  /** The session id as 16 hex digits ("" before the first session). */
  get sessionId(): string {
    return this.#sessionId === 0n
      ? ""
      : BigInt.asUintN(64, this.#sessionId).toString(16).padStart(16, "0");
  }

  /** The session password (a copy). */
  get sessionPassword(): Uint8Array {
    return this.#password.slice();
  }

  /** The session timeout the server granted (ms). */
  get sessionTimeout(): number {
    return this.#timeout;
  }

  /** Listens to state changes (`CM_*`). */
  onState(listener: (state: number) => void): void {
    this.#stateListeners.push(listener);
  }

  /** Hears every watch event first, before the one-shot watches. */
  onWatchEvent(listener: (event: ClientWatchEvent) => void): void {
    this.#watchListeners.push(listener);
  }

  /** Sends credentials with every session request (`digest`: `user:password`). */
  addAuthInfo(scheme: string, auth: Uint8Array): void {
    this.#credentials.push({ scheme, auth });
  }

  /** Starts connecting (to the next server, then the others in turn). */
  connect(): void {
    this.#setState(CM_CONNECTING);
    this.#attempt();
  }

  /** Whether a session is established on a connection right now. */
  isConnected(): boolean {
    return this.#state === CM_CONNECTED;
  }

  /**
   * Asks the server to end the session (so its ephemeral nodes go at once)
   * and waits, at most two seconds, for it to close the connection.
   */
  async endSession(): Promise<void> {
    if (this.#state !== CM_CONNECTED) return;
    this.#closed = Promise.withResolvers<void>();
    this.#setState(CM_CLOSING);
    this.#send(
      {
        op: OP.closeSession,
        path: undefined,
        body: () => {},
        read: () => [],
        callback: () => {},
        watch: undefined,
      },
    );
    await settleWithin(this.#closed.promise, CLOSE_TIMEOUT);
  }

  /** Closes the connection and cancels every timer, whatever the state. */
  async release(): Promise<void> {
    this.#releasing = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#pingTimer);
    this.#retryTimer = this.#handshakeTimer = this.#pingTimer = undefined;
    this.#connecting?.abort();
    this.#connecting = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    this.#generation++;
    this.#failPending(CONNECTION_LOSS);
    for (const request of this.#outbox.splice(0)) {
      request.callback(wireError(CONNECTION_LOSS, request.path));
    }
    if (conn !== undefined) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    // An `endSession()` waiting for the server to close ends now.
    this.#closed?.resolve();
    // Let the read loop and the writes see the close before anyone checks
    // for leaks.
    await Promise.all([this.#readLoopDone, this.#writing]);
  }

  /** Cancels the handshake timeout of the connection being opened. */
  stopHandshakeGuard(): void {
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
  }

  // Operations, node-style callbacks: (error, ...results).

  /** `create`: calls back with the created path. */
  create(
    path: string,
    data: Uint8Array | undefined,
    acl: readonly AclRecord[],
    mode: number,
    callback: Callback,
  ): void {
    this.#request(
      OP.create,
      path,
      (w) => {
        w.buffer(data ?? null).acl(acl).int(mode);
      },
      (r) => [this.#relative(r.text())],
      callback,
    );
  }

  /** `delete`. */
  remove(path: string, version: number, callback: Callback): void {
    this.#request(
      OP.delete,
      path,
      (w) => w.int(version),
      () => [],
      callback,
    );
  }

  /** `setData`: calls back with the new stat. */
  setData(
    path: string,
    data: Uint8Array,
    version: number,
    callback: Callback,
  ): void {
    this.#request(
      OP.setData,
      path,
      (w) => w.buffer(data).int(version),
      (r) => [r.stat()],
      callback,
    );
  }

  /** `getData`: calls back with the data (`null` for none) and the stat. */
  getData(
    path: string,
    watcher: OneShotWatcher | undefined,
    callback: Callback,
  ): void {
    this.#watchedRead(
      OP.getData,
      path,
      watcher,
      (r) => [r.buffer(), r.stat()],
      callback,
      (noNode) => noNode ? undefined : this.#dataWatches,
    );
  }

  /** `getChildren2`: calls back with the names and the parent's stat. */
  getChildren(
    path: string,
    watcher: OneShotWatcher | undefined,
    callback: Callback,
  ): void {
    this.#watchedRead(
      OP.getChildren2,
      path,
      watcher,
      (r) => [r.strings(), r.stat()],
      callback,
      (noNode) => noNode ? undefined : this.#childWatches,
    );
  }

  /** `exists`: calls back with the stat, or `null` when there is no node. */
  exists(
    path: string,
    watcher: OneShotWatcher | undefined,
    callback: Callback,
  ): void {
    this.#watchedRead(
      OP.exists,
      path,
      watcher,
      (r) => [r.stat()],
      (error, ...results) => {
        if ((error as { code?: number } | null)?.code === NO_NODE) {
          callback(null, null);
        } else callback(error, ...results);
      },
      // On no node, exists watches for its creation.
      (noNode) => noNode ? this.#existWatches : this.#dataWatches,
    );
  }

  /**
   * A read that may leave a one-shot watch: its request says whether, and
   * once the reply comes the watcher joins the watches `watchesFor` names
   * for that outcome (success, or no node); none for `undefined`, as
   * ZooKeeper sets no watch for a read that failed.
   */
  #watchedRead(
    op: number,
    path: string,
    watcher: OneShotWatcher | undefined,
    read: (reader: JuteReader) => unknown[],
    callback: Callback,
    watchesFor: (
      noNode: boolean,
    ) => Map<string, Set<OneShotWatcher>> | undefined,
  ): void {
    this.#request(
      op,
      path,
      (w) => w.bool(watcher !== undefined),
      read,
      callback,
      watcher && ((noNode) => {
        const watches = watchesFor(noNode);
        if (watches !== undefined) add(watches, path, watcher);
      }),
    );
  }

  /** `getACL`: calls back with the entries and the stat. */
  getACL(path: string, callback: Callback): void {
    this.#request(
      OP.getACL,
      path,
      () => {},
      (r) => [r.acl(), r.stat()],
      callback,
    );
  }

  /** `setACL`: calls back with the new stat. */
  setACL(
    path: string,
    acl: readonly AclRecord[],
    version: number,
    callback: Callback,
  ): void {
    this.#request(
      OP.setACL,
      path,
      (w) => w.acl(acl).int(version),
      (r) => [r.stat()],
      callback,
    );
  }

  /**
   * `addWatch(path, mode)` (ZooKeeper 3.6+; older servers answer
   * `UNIMPLEMENTED`).
   */
  addWatch(
    path: string,
    mode: keyof typeof ADD_WATCH_MODES,
    callback: Callback,
  ): void {
    this.#request(
      OP.addWatch,
      path,
      (w) => w.int(ADD_WATCH_MODES[mode]),
      () => [],
      callback,
    );
  }

  /** `removeWatches(path, type)` for a persistent watch of `mode`. */
  removeWatches(
    path: string,
    mode: keyof typeof REMOVE_WATCH_TYPES,
    callback: Callback,
  ): void {
    this.#request(
      OP.removeWatches,
      path,
      (w) => w.int(REMOVE_WATCH_TYPES[mode]),
      () => [],
      callback,
    );
  }

  #request(
    op: number,
    path: string,
    body: (writer: JuteWriter) => void,
    read: (reader: JuteReader) => unknown[],
    callback: Callback,
    watch?: (noNode: boolean) => void,
  ): void {
    const request: Outgoing = { op, path, body, read, callback, watch };
    if (this.#releasing) {
      callback(wireError(CONNECTION_LOSS, path));
      return;
    }
    switch (this.#state) {
      case CM_CONNECTED:
        this.#send(request);
        return;
      case CM_DISCONNECTED:
      case CM_CONNECTING:
        this.#outbox.push(request);
        return;
      case CM_SESSION_EXPIRED:
        callback(wireError(-112, path));
        return;
      case CM_AUTH_FAILED:
        callback(wireError(-115, path));
        return;
    }
    callback(wireError(CONNECTION_LOSS, path));
  }

  #send(request: Outgoing): void {
    const xid = this.#xid++;
    const writer = new JuteWriter().int(xid).int(request.op);
    // Every request zkrpc sends but closeSession starts with its path.
    if (request.path !== undefined) writer.string(this.#full(request.path));
    request.body(writer);
    this.#pending.push({
      xid,
      op: request.op,
      path: request.path,
      read: request.read,
      callback: request.callback,
      watch: request.watch,
    });
    this.#write(writer.frame());
  }

  #write(frame: Uint8Array): void {
    const conn = this.#conn;
    if (conn === undefined) return;
    const generation = this.#generation;
    this.#writing = this.#writing.then(() =>
      generation === this.#generation ? writeAll(conn, frame) : undefined
    ).catch((error) => {
      if (generation === this.#generation) this.#lost(error);
    });
  }

  #full(path: string): string {
    const chroot = this.#chroot;
    if (chroot === undefined) return path;
    return path === "/" ? chroot : chroot + path;
  }

  #relative(path: string): string {
    const chroot = this.#chroot;
    if (chroot === undefined) return path;
    if (path === chroot) return "/";
    return path.startsWith(`${chroot}/`) ? path.slice(chroot.length) : path;
  }

  #setState(state: number): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of [...this.#stateListeners]) listener(state);
  }

  /** Opens a connection to the next server, or waits after a full round. */
  #attempt(): void {
    if (this.#releasing) return;
    if (this.#attempts >= this.#servers.length) {
      this.#attempts = 0;
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#attempt();
      }, Math.random() * RETRY_DELAY);
      return;
    }
    this.#attempts++;
    const server = this.#servers[this.#nextServer++ % this.#servers.length]!;
    const address = `${server.host}:${server.port}`;
    const generation = ++this.#generation;
    const connecting = new AbortController();
    this.#connecting = connecting;
    let connected = false;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = setTimeout(() => {
      this.#handshakeTimer = undefined;
      if (generation !== this.#generation || this.#releasing) return;
      const error = Object.assign(
        new Error(
          connected
            ? `the server accepted the connection but did not answer the session request within ${this.#handshakeTimeout} ms`
            : `the connection was not accepted within ${this.#handshakeTimeout} ms`,
        ),
        { code: "ETIMEDOUT" },
      );
      this.#failAttempt(error, address);
    }, this.#handshakeTimeout);
    this.#connect({
      hostname: server.host,
      port: server.port,
      signal: connecting.signal,
    }).then((conn) => {
      if (generation !== this.#generation || this.#releasing) {
        conn.close();
        return;
      }
      connected = true;
      this.#connecting = undefined;
      this.#conn = conn;
      this.#address = address;
      this.#lastReceived = Date.now();
      this.#write(
        new JuteWriter()
          .int(0) // protocol version
          .long(this.#lastZxid)
          .int(this.#requestedTimeout)
          .long(this.#sessionId)
          .buffer(this.#password)
          .bool(false) // read-only not supported
          .frame(),
      );
      this.#readLoopDone = this.#readLoop(conn, generation);
    }, (error: Error) => {
      if (generation !== this.#generation || this.#releasing) return;
      this.#failAttempt(connectError(error, server.host, address), address);
    });
  }

  /** An attempt failed before its session was established. */
  #failAttempt(error: Error, address: string): void {
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#connecting?.abort();
    this.#connecting = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    this.#generation++;
    try {
      conn?.close();
    } catch {
      // already closed
    }
    this.#options.onSocketError?.(error, address);
    if (this.#releasing) return;
    this.#setState(CM_CONNECTING);
    this.#attempt();
  }

  #readLoopDone: Promise<void> = Promise.resolve();

  async #readLoop(conn: WireConn, generation: number): Promise<void> {
    let buffered = new Uint8Array(64 * 1024);
    let length = 0;
    let failure: unknown;
    try {
      while (generation === this.#generation) {
        if (length === buffered.length) {
          const bigger = new Uint8Array(buffered.length * 2);
          bigger.set(buffered);
          buffered = bigger;
        }
        const n = await conn.read(buffered.subarray(length));
        if (n === null) break;
        if (generation !== this.#generation) return;
        this.#lastReceived = Date.now();
        length += n;
        let at = 0;
        while (length - at >= 4) {
          const size = new DataView(buffered.buffer, at, 4).getInt32(0);
          if (size < 0 || size > MAX_FRAME_BYTES) {
            throw new JuteError(`Cannot read a frame of ${size} bytes`);
          }
          if (length - at - 4 < size) {
            if (size + 4 > buffered.length) {
              const bigger = new Uint8Array(size + 4);
              bigger.set(buffered.subarray(at, length));
              buffered = bigger;
              length -= at;
              at = 0;
            }
            break;
          }
          const frame = buffered.slice(at + 4, at + 4 + size);
          at += 4 + size;
          this.#onFrame(frame);
          if (generation !== this.#generation) return;
        }
        if (at > 0) {
          buffered.copyWithin(0, at, length);
          length -= at;
        }
      }
    } catch (error) {
      failure = error;
    }
    if (generation !== this.#generation) return;
    this.#lost(
      failure ?? Object.assign(new Error("the server closed the connection"), {
        code: "ECONNRESET",
      }),
    );
  }

  #onFrame(frame: Uint8Array): void {
    const reader = new JuteReader(frame);
    if (this.#state === CM_CONNECTING) {
      this.#onConnectResponse(reader);
      return;
    }
    const xid = reader.int();
    const zxid = reader.long();
    const err = reader.int();
    if (xid === XID_PING || xid === XID_SET_WATCHES) return;
    if (xid === XID_AUTH) {
      if (err === -115) {
        this.#setState(CM_AUTH_FAILED);
        this.#end(-115);
      }
      return;
    }
    if (xid === XID_NOTIFICATION) {
      const event = {
        type: reader.int(),
        state: reader.int(),
        path: this.#relative(reader.text()),
      };
      this.#onWatchEvent(event);
      return;
    }
    const pending = this.#pending[0];
    if (pending === undefined || pending.xid !== xid) {
      throw new JuteError(
        `Cannot match the reply ${xid}: expected ${pending?.xid ?? "none"}`,
      );
    }
    // Decoded before it leaves the queue: a reply that does not hold its
    // record throws, and the request fails with the connection.
    const results = err === 0 ? pending.read(reader) : [];
    this.#pending.shift();
    if (zxid > 0n) this.#lastZxid = zxid;
    if (pending.op === OP.closeSession) return;
    if (err !== 0) {
      if (err === NO_NODE) pending.watch?.(true);
      pending.callback(wireError(err, pending.path));
      return;
    }
    pending.watch?.(false);
    pending.callback(null, ...results);
  }

  #onConnectResponse(reader: JuteReader): void {
    reader.int(); // protocol version
    const timeout = reader.int();
    const sessionId = reader.long();
    const password = reader.buffer() ?? new Uint8Array(16);
    if (timeout <= 0) {
      this.#setState(CM_SESSION_EXPIRED);
      this.#end(-112);
      return;
    }
    this.stopHandshakeGuard();
    this.#attempts = 0;
    this.#sessionId = sessionId;
    this.#password = password;
    this.#timeout = timeout;
    this.#xid = 1;
    for (const { scheme, auth } of this.#credentials) {
      this.#write(
        new JuteWriter().int(XID_AUTH).int(OP.auth).int(0).string(scheme)
          .buffer(auth).frame(),
      );
    }
    this.#resetWatches();
    this.#startPings();
    this.#setState(CM_CONNECTED);
    for (const request of this.#outbox.splice(0)) {
      if (this.#state === CM_CONNECTED) this.#send(request);
      else this.#outbox.push(request);
    }
  }

  /** Re-registers the one-shot watches with the new connection. */
  #resetWatches(): void {
    const paths = (watches: Map<string, Set<OneShotWatcher>>) =>
      [...watches.keys()].map((path) => this.#full(path));
    const data = paths(this.#dataWatches);
    const exist = paths(this.#existWatches);
    const child = paths(this.#childWatches);
    if (data.length + exist.length + child.length === 0) return;
    this.#write(
      new JuteWriter().int(XID_SET_WATCHES).int(OP.setWatches)
        .long(this.#lastZxid).strings(data).strings(exist).strings(child)
        .frame(),
    );
  }

  /**
   * Pings a third of the session timeout apart; a connection that received
   * nothing for two thirds of it is dropped.
   */
  #startPings(): void {
    clearInterval(this.#pingTimer);
    const period = Math.max(1, Math.floor(this.#timeout / 3));
    this.#pingTimer = setInterval(() => {
      if (this.#state !== CM_CONNECTED) return;
      if (Date.now() - this.#lastReceived > this.#timeout * 2 / 3) {
        this.#lost(
          Object.assign(
            new Error(
              `nothing received for ${Math.round(this.#timeout * 2 / 3)} ms`,
            ),
            { code: "ETIMEDOUT" },
          ),
        );
        return;
      }
      this.#write(new JuteWriter().int(XID_PING).int(OP.ping).frame());
    }, period);
  }

  #onWatchEvent(event: ClientWatchEvent): void {
    for (const listener of [...this.#watchListeners]) listener(event);
    const fire: Set<OneShotWatcher> = new Set();
    const take = (watches: Map<string, Set<OneShotWatcher>>) => {
      const set = watches.get(event.path);
      if (set === undefined) return;
      watches.delete(event.path);
      for (const watcher of set) fire.add(watcher);
    };
    switch (event.type) {
      case 1: // created
      case 3: // data changed
        take(this.#dataWatches);
        take(this.#existWatches);
        break;
      case 2: // deleted
        take(this.#dataWatches);
        take(this.#existWatches);
        take(this.#childWatches);
        break;
      case 4: // children changed
        take(this.#childWatches);
        break;
    }
    for (const watcher of fire) watcher(event);
  }

  /** The connection is gone: fail what was sent, then reconnect or stop. */
  #lost(_error: unknown): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    this.#generation++;
    try {
      conn?.close();
    } catch {
      // already closed
    }
    const state = this.#state;
    if (state === CM_CLOSING) {
      this.#failPending(CONNECTION_LOSS);
      this.#setState(CM_CLOSED);
      this.#closed?.resolve();
      return;
    }
    if (
      state === CM_CLOSED || state === CM_SESSION_EXPIRED ||
      state === CM_AUTH_FAILED
    ) return;
    this.#failPending(CONNECTION_LOSS);
    if (state === CM_CONNECTING) {
      // Closed before the session answer: this attempt failed.
      this.#options.onSocketError?.(
        _error instanceof Error ? _error : new Error(String(_error)),
        this.#address,
      );
    }
    this.#setState(CM_DISCONNECTED);
    if (this.#releasing) return;
    this.#setState(CM_CONNECTING);
    this.#attempt();
  }

  /** A final state: fail everything with `code` and close the connection. */
  #end(code: number): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    this.stopHandshakeGuard();
    const conn = this.#conn;
    this.#conn = undefined;
    this.#generation++;
    try {
      conn?.close();
    } catch {
      // already closed
    }
    this.#failPending(code);
    for (const request of this.#outbox.splice(0)) {
      request.callback(wireError(code, request.path));
    }
  }

  #failPending(code: number): void {
    for (const pending of this.#pending.splice(0)) {
      pending.callback(wireError(code, pending.path));
    }
  }
}

/** What the session uses of a client ({@linkcode WireClient}, or a test's). */
export type Client = Pick<
  WireClient,
  | "state"
  | "sessionId"
  | "sessionPassword"
  | "sessionTimeout"
  | "onState"
  | "onWatchEvent"
  | "addAuthInfo"
  | "connect"
  | "isConnected"
  | "endSession"
  | "release"
  | "create"
  | "remove"
  | "setData"
  | "getData"
  | "getChildren"
  | "exists"
  | "getACL"
  | "setACL"
  | "addWatch"
  | "removeWatches"
>;

/**
 * Where sessions get their client: a {@linkcode WireClient}. The session's
 * unit tests put a scripted client here (`tests/zookeeper/_fake_client.ts`).
 *
 * @example The default
 * ```ts
 * import assert from "node:assert/strict";
 * import { clients, WireClient } from "./_wire_client.ts";
 *
 * assert.ok(clients.create("127.0.0.1:2181", 4000, {}) instanceof WireClient);
 * ```
 */
export const clients: {
  create(
    connectionString: string,
    sessionTimeout: number,
    options: ClientOptions,
  ): Client;
} = {
  create: (connectionString, sessionTimeout, options) =>
    new WireClient(connectionString, sessionTimeout, options),
};

/**
 * A failed `Deno.connect` as Node.js names it, so that it says what and
 * where: `connect ECONNREFUSED host:port`, `getaddrinfo ENOTFOUND host`
 * (a host that does not resolve is the one failure Deno gives no code).
 * A permission error is returned as it is: it says what flag is missing.
 *
 * @param error What `Deno.connect` threw.
 * @param host The host it was given.
 * @param address `host:port`.
 * @returns The error, with a string `code`.
 */
export function connectError(
  error: Error,
  host: string,
  address: string,
): Error {
  if (
    error instanceof Deno.errors.NotCapable ||
    error instanceof Deno.errors.PermissionDenied
  ) return error;
  const given = (error as { code?: unknown }).code;
  if (typeof given === "string") {
    return Object.assign(
      new Error(`connect ${given} ${address}: ${error.message}`, {
        cause: error,
      }),
      { code: given },
    );
  }
  if (/failed to lookup address/i.test(error.message)) {
    const code = /temporary failure/i.test(error.message)
      ? "EAI_AGAIN"
      : "ENOTFOUND";
    return Object.assign(
      new Error(`getaddrinfo ${code} ${host}: ${error.message}`, {
        cause: error,
      }),
      { code },
    );
  }
  return error;
}

function add(
  watches: Map<string, Set<OneShotWatcher>>,
  path: string,
  watcher: OneShotWatcher,
): void {
  let set = watches.get(path);
  if (set === undefined) watches.set(path, set = new Set());
  set.add(watcher);
}

async function writeAll(conn: WireConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await conn.write(bytes.subarray(written));
  }
}

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
