/**
 * A scripted node-zookeeper-client `Client` for the unit tests of
 * `ZooKeeperSession`: {@linkcode installFakeClients} replaces the package's
 * `createClient`, so that `ZooKeeperSession.connect` builds its session on a
 * {@linkcode FakeClient} (still patched by `_client_internals.ts`). The test
 * plays ZooKeeper: it moves the connection manager between states, makes
 * the socket fail, answers each request through its callback, and emits
 * watch events. Nothing touches the network.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import zookeeper from "node-zookeeper-client";
import {
  type Callback,
  type ClientWatchEvent,
  CM_CONNECTED,
  CM_DISCONNECTED,
} from "../../src/zookeeper/_client_internals.ts";
import type { ZooKeeperErrorCode } from "../../src/zookeeper/errors.ts";

/** One request the client received. */
export interface ClientCall {
  /** The client method, or `addWatch` / `removeWatches` for raw requests. */
  op: string;
  path: string;
  /** The arguments between the path and the callback. */
  args: unknown[];
  callback: Callback;
  /** Whether the test answered it. */
  answered: boolean;
}

/** A socket as much as the session and its patches touch it. */
export class FakeSocket {
  destroyed = false;
  readonly server: { host: string; port: number };
  #close: (() => void)[] = [];
  #error: ((error: Error) => void)[] = [];

  constructor(server: { host: string; port: number }) {
    this.server = server;
  }

  once(event: string, listener: () => void): void {
    if (event === "close") this.#close.push(listener);
  }

  on(event: string, listener: (error: Error) => void): void {
    if (event === "error") this.#error.push(listener);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const listeners = this.#close.splice(0);
    queueMicrotask(() => listeners.forEach((listener) => listener()));
  }

  /** The socket fails with `error` (refused, denied…). */
  fail(error: Error): void {
    for (const listener of this.#error) listener(error);
  }
}

/** The raw requests the session writes itself, by opcode. */
const RAW_OPS: Record<number, string> = {
  106: "addWatch",
  18: "removeWatches",
};

/** A stat as the client decodes it: 8-byte longs as buffers. */
export function clientStat(
  fields: { version?: number; ephemeralOwner?: bigint; czxid?: bigint } = {},
): Record<string, unknown> {
  const long = (value: bigint) => {
    const bytes = Buffer.alloc(8);
    bytes.writeBigInt64BE(value);
    return bytes;
  };
  return {
    czxid: long(fields.czxid ?? 5n),
    mzxid: long(6n),
    pzxid: long(7n),
    ctime: long(1_700_000_000_000n),
    mtime: long(1_700_000_000_001n),
    version: fields.version ?? 0,
    cversion: 0,
    aversion: 0,
    ephemeralOwner: long(fields.ephemeralOwner ?? 0n),
    dataLength: 0,
    numChildren: 0,
  };
}

/** A client error as node-zookeeper-client makes it. */
export function clientError(code: ZooKeeperErrorCode, path?: string): Error {
  const exception = zookeeper.Exception as unknown as Record<string, number> & {
    create(code: number, path?: string): Error;
  };
  return exception.create(exception[code]!, path);
}

/** The scripted client. */
export class FakeClient {
  readonly connectionString: string;
  readonly options: Record<string, unknown>;
  readonly calls: ClientCall[] = [];
  /** The watch events that went on to the client's own watcher manager. */
  readonly clientEvents: ClientWatchEvent[] = [];
  readonly auth: { scheme: string; auth: string }[] = [];
  readonly sockets: FakeSocket[] = [];
  connects = 0;
  closes = 0;
  sessionId = Buffer.from("0123456789abcdef", "hex");
  password = Buffer.alloc(16, 7);
  /** Whether the server closes the socket when asked to end the session. */
  acknowledgeClose = true;
  #listeners: ((state: number) => void)[] = [];
  // deno-lint-ignore no-explicit-any
  readonly connectionManager: any;

  constructor(connectionString: string, options: Record<string, unknown>) {
    this.connectionString = connectionString;
    this.options = options;
    const servers = connectionString.split("/")[0]!.split(",").map((s) => {
      const [host, port] = s.split(":");
      return { host: host!, port: Number(port) };
    });
    this.connectionManager = {
      state: CM_DISCONNECTED,
      chrootPath: undefined as string | undefined,
      pendingBuffer: null,
      watcherManager: {
        emit: (event: ClientWatchEvent) => this.clientEvents.push(event),
      },
      queue: (
        request: { header: { type: number }; toBuffer(): Buffer },
        callback: Callback,
      ) => {
        const bytes = request.toBuffer();
        const opcode = bytes.readInt32BE(8);
        const length = bytes.readInt32BE(12);
        const path = bytes.subarray(16, 16 + length).toString();
        this.#record(RAW_OPS[opcode] ?? `op${opcode}`, path, [
          request.header.type,
          bytes.readInt32BE(16 + length),
        ], callback);
      },
      servers,
      nextServerIndex: 0,
      serverAttempts: 0,
      spinDelay: options.spinDelay,
      socket: undefined as FakeSocket | undefined,
      connectTimeoutHandler: null,
      sessionTimeout: options.sessionTimeout,
      findNextServer(_callback: (server: unknown) => void) {},
      on: (event: string, listener: (state: number) => void) => {
        if (event === "state") this.#listeners.push(listener);
      },
      onSocketConnected() {},
      onSocketData() {},
      onSocketTimeout() {},
    };
  }

  /** Opens a socket to the next server (through the patched rotation). */
  connect(): void {
    this.connects++;
    this.attempt();
  }

  /** The client tries the next server. */
  attempt(): void {
    this.connectionManager.findNextServer(
      (server: { host: string; port: number }) => {
        const socket = new FakeSocket(server);
        this.sockets.push(socket);
        this.connectionManager.socket = socket;
      },
    );
  }

  /** The connection manager enters `state` (a `CM_*` value). */
  setState(state: number): void {
    this.connectionManager.state = state;
    for (const listener of [...this.#listeners]) listener(state);
  }

  /** The session is established (or re-established). */
  connected(): void {
    this.setState(CM_CONNECTED);
  }

  close(): void {
    this.closes++;
    if (this.acknowledgeClose) this.connectionManager.socket?.destroy();
  }

  addAuthInfo(scheme: string, auth: Buffer): void {
    this.auth.push({ scheme, auth: auth.toString() });
  }

  getSessionId(): Buffer {
    return this.sessionId;
  }

  getSessionPassword(): Buffer {
    return this.password;
  }

  getSessionTimeout(): number {
    return 4321;
  }

  #record(op: string, path: string, args: unknown[], callback: Callback) {
    this.calls.push({ op, path, args, callback, answered: false });
  }

  #method(op: string) {
    return (path: string, ...rest: unknown[]) => {
      const callback = rest.pop() as Callback;
      this.#record(op, path, rest, callback);
    };
  }

  create = this.#method("create");
  remove = this.#method("remove");
  setData = this.#method("setData");
  getData = this.#method("getData");
  getChildren = this.#method("getChildren");
  exists = this.#method("exists");
  getACL = this.#method("getACL");
  setACL = this.#method("setACL");

  /** The requests of `op` not answered yet. */
  pending(op?: string): ClientCall[] {
    return this.calls.filter((c) =>
      !c.answered && (op === undefined || c.op === op)
    );
  }

  /** The oldest unanswered request of `op`. */
  next(op: string): ClientCall {
    const call = this.pending(op)[0];
    if (call === undefined) throw new Error(`no pending ${op} request`);
    return call;
  }

  /** Answers the oldest unanswered `op` request with `results`. */
  answer(op: string, ...results: unknown[]): ClientCall {
    const call = this.next(op);
    call.answered = true;
    call.callback(null, ...results);
    return call;
  }

  /** Fails the oldest unanswered `op` request with ZooKeeper's `code`. */
  fail(op: string, code: ZooKeeperErrorCode): ClientCall {
    const call = this.next(op);
    call.answered = true;
    call.callback(clientError(code, call.path));
    return call;
  }

  /** ZooKeeper sends a watch event (through the client's watcher manager). */
  emit(type: number, path: string): void {
    this.connectionManager.watcherManager.emit({ type, state: 3, path });
  }
}

/** The clients made since {@linkcode installFakeClients}. */
export const clients: FakeClient[] = [];

/**
 * Makes node-zookeeper-client's `createClient` return {@linkcode FakeClient}s
 * for the rest of this test module (each test module runs apart).
 */
export function installFakeClients(): void {
  (zookeeper as unknown as { createClient: unknown }).createClient = (
    connectionString: string,
    options: Record<string, unknown>,
  ) => {
    // The real client throws on what it cannot parse.
    if (connectionString.startsWith("unparsable.invalid")) {
      throw new Error("Invalid connection string");
    }
    const client = new FakeClient(connectionString, options);
    clients.push(client);
    return client;
  };
}

/** The last client made. */
export function lastClient(): FakeClient {
  const client = clients.at(-1);
  if (client === undefined) throw new Error("no client made yet");
  return client;
}
