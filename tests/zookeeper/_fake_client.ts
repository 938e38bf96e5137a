/**
 * A scripted ZooKeeper client for the unit tests of `ZooKeeperSession`:
 * {@linkcode installFakeClients} makes `clients.create` (where a session gets
 * its client) return {@linkcode FakeClient}s. The test plays ZooKeeper: it
 * moves the client between states, makes connection attempts fail, answers
 * each request through its callback, and emits watch events. Nothing touches
 * the network. The real client's own behaviour (rotation, handshake, pings,
 * the wire) is tested in `tests/zookeeper/wire_client_unit_test.ts` and
 * against a real ZooKeeper.
 *
 * @module
 */

import {
  type AclRecord,
  type Callback,
  type Client,
  type ClientOptions,
  clients,
  type ClientWatchEvent,
  CM_CONNECTED,
  CM_DISCONNECTED,
  type OneShotWatcher,
  type StatRecord,
  wireError,
} from "../../src/zookeeper/_wire_client.ts";
import type { ZooKeeperErrorCode } from "../../src/zookeeper/errors.ts";
import { settleWithin } from "../../src/_async.ts";

/** One request the client received. */
export interface ClientCall {
  /** The client method. */
  op: string;
  path: string;
  /** The arguments between the path and the callback (none undefined). */
  args: unknown[];
  callback: Callback;
  /** Whether the test answered it. */
  answered: boolean;
}

/** One connection attempt of the client, to one server. */
export class FakeSocket {
  destroyed = false;
  readonly server: { host: string; port: number };
  #fail: (error: Error) => void;

  constructor(
    server: { host: string; port: number },
    fail: (error: Error) => void,
  ) {
    this.server = server;
    this.#fail = fail;
  }

  destroy(): void {
    this.destroyed = true;
  }

  /** The attempt fails with `error` (refused, denied...). */
  fail(error: Error): void {
    this.#fail(error);
  }
}

/** A stat as the client decodes it. */
export function clientStat(
  fields: { version?: number; ephemeralOwner?: bigint; czxid?: bigint } = {},
): StatRecord {
  return {
    czxid: fields.czxid ?? 5n,
    mzxid: 6n,
    pzxid: 7n,
    ctime: 1_700_000_000_000n,
    mtime: 1_700_000_000_001n,
    version: fields.version ?? 0,
    cversion: 0,
    aversion: 0,
    ephemeralOwner: fields.ephemeralOwner ?? 0n,
    dataLength: 0,
    numChildren: 0,
  };
}

/** A client error as the client makes it, by name. */
export function clientError(code: ZooKeeperErrorCode, path?: string): Error {
  for (let number = 0; number >= -200; number--) {
    if (wireError(number).name === code) return wireError(number, path);
  }
  throw new Error(`no ZooKeeper error code is named ${code}`);
}

/** The scripted client. */
export class FakeClient implements Client {
  readonly connectionString: string;
  readonly options: { sessionTimeout: number };
  readonly calls: ClientCall[] = [];
  /** The watch events the one-shot watches of this client were given. */
  readonly clientEvents: ClientWatchEvent[] = [];
  readonly auth: { scheme: string; auth: string }[] = [];
  readonly sockets: FakeSocket[] = [];
  readonly servers: { host: string; port: number }[];
  connects = 0;
  closes = 0;
  /** Whether `release()` was called. */
  released = false;
  state = CM_DISCONNECTED;
  sessionId = "0123456789abcdef";
  sessionPassword: Uint8Array = new Uint8Array(16).fill(7);
  readonly sessionTimeout = 4321;
  /** Whether the server closes the connection when asked to end the session. */
  acknowledgeClose = true;
  #options: ClientOptions;
  #next = 0;
  #stateListeners: ((state: number) => void)[] = [];
  #watchListeners: ((event: ClientWatchEvent) => void)[] = [];
  #oneShot = new Map<string, Set<OneShotWatcher>>();

  constructor(
    connectionString: string,
    sessionTimeout: number,
    options: ClientOptions,
  ) {
    this.connectionString = connectionString;
    this.options = { sessionTimeout };
    this.#options = options;
    this.servers = connectionString.split("/")[0]!.split(",").map((s) => {
      const [host, port] = s.split(":");
      return { host: host!, port: Number(port) };
    });
  }

  onState(listener: (state: number) => void): void {
    this.#stateListeners.push(listener);
  }

  onWatchEvent(listener: (event: ClientWatchEvent) => void): void {
    this.#watchListeners.push(listener);
  }

  /** Opens a connection attempt to the first server. */
  connect(): void {
    this.connects++;
    this.attempt();
  }

  /** The client tries the next server. */
  attempt(): void {
    const server = this.servers[this.#next++ % this.servers.length]!;
    this.sockets.push(
      new FakeSocket(
        server,
        (error) =>
          this.#options.onSocketError?.(error, `${server.host}:${server.port}`),
      ),
    );
  }

  /** The client enters `state` (a `CM_*` value). */
  setState(state: number): void {
    this.state = state;
    for (const listener of [...this.#stateListeners]) listener(state);
  }

  /** The session is established (or re-established). */
  connected(): void {
    this.setState(CM_CONNECTED);
  }

  isConnected(): boolean {
    return this.state === CM_CONNECTED;
  }

  async endSession(): Promise<void> {
    this.closes++;
    if (!this.acknowledgeClose) {
      await settleWithin(new Promise<void>(() => {}), 2000);
      return;
    }
    this.sockets.at(-1)?.destroy();
  }

  release(): Promise<void> {
    this.released = true;
    this.sockets.at(-1)?.destroy();
    return Promise.resolve();
  }

  addAuthInfo(scheme: string, auth: Uint8Array): void {
    this.auth.push({ scheme, auth: new TextDecoder().decode(auth) });
  }

  #record(op: string, path: string, args: unknown[], callback: Callback) {
    this.calls.push({
      op,
      path,
      args: args.filter((arg) => arg !== undefined),
      callback,
      answered: false,
    });
  }

  create(
    path: string,
    data: Uint8Array | undefined,
    acl: readonly AclRecord[],
    mode: number,
    callback: Callback,
  ): void {
    this.#record("create", path, [data, acl, mode], callback);
  }

  remove(path: string, version: number, callback: Callback): void {
    this.#record("remove", path, [version], callback);
  }

  setData(
    path: string,
    data: Uint8Array,
    version: number,
    callback: Callback,
  ): void {
    this.#record("setData", path, [data, version], callback);
  }

  #read(op: string) {
    return (
      path: string,
      watcher: OneShotWatcher | undefined,
      callback: Callback,
    ) => {
      this.#record(op, path, [watcher], (error, ...results) => {
        if (watcher !== undefined && (!error || op === "exists")) {
          let set = this.#oneShot.get(path);
          if (set === undefined) this.#oneShot.set(path, set = new Set());
          set.add(watcher);
        }
        callback(error, ...results);
      });
    };
  }

  getData = this.#read("getData");
  getChildren = this.#read("getChildren");
  exists = this.#read("exists");

  getACL(path: string, callback: Callback): void {
    this.#record("getACL", path, [], callback);
  }

  setACL(
    path: string,
    acl: readonly AclRecord[],
    version: number,
    callback: Callback,
  ): void {
    this.#record("setACL", path, [acl, version], callback);
  }

  addWatch(path: string, mode: string, callback: Callback): void {
    this.#record("addWatch", path, [mode], callback);
  }

  removeWatches(path: string, mode: string, callback: Callback): void {
    this.#record("removeWatches", path, [mode], callback);
  }

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

  /**
   * ZooKeeper sends a watch event: the session hears it first, then the
   * one-shot watches of its path get it (types 1-4 only).
   */
  emit(type: number, path: string): void {
    const event = { type, state: 3, path };
    for (const listener of [...this.#watchListeners]) listener(event);
    if (type < 1 || type > 4) return;
    const watchers = this.#oneShot.get(path);
    this.#oneShot.delete(path);
    this.clientEvents.push(event);
    for (const watcher of watchers ?? []) watcher(event);
  }
}

/** The clients made since {@linkcode installFakeClients}. */
export const fakeClients: FakeClient[] = [];

/**
 * Makes `clients.create` return {@linkcode FakeClient}s for the rest of this
 * test module (each test module runs apart).
 */
export function installFakeClients(): void {
  clients.create = (connectionString, sessionTimeout, options) => {
    // The real client throws on what it cannot parse.
    if (connectionString.startsWith("unparsable.invalid")) {
      throw new Error("Invalid connection string");
    }
    const client = new FakeClient(connectionString, sessionTimeout, options);
    fakeClients.push(client);
    return client;
  };
}

/** The last client made. */
export function lastClient(): FakeClient {
  const client = fakeClients.at(-1);
  if (client === undefined) throw new Error("no client made yet");
  return client;
}
