/**
 * Internal: the client's keepalive (gRPC style: only a silent connection is
 * pinged), apart from the connection it watches, over a small interface.
 *
 * A ping that gets no answer within `timeout` closes the connection, unless
 * there is evidence that the silence is ours or the link's, not a dead
 * peer's; then it waits another `timeout`, at most
 * {@linkcode MAX_KEEPALIVE_EXTENSIONS} times:
 * - the ping is still queued behind our own output (its writer batch has not
 *   reached the socket: a large upload);
 * - this process froze for longer than the wait (the answer may be unread in
 *   the socket);
 * - another connection of this process to the same endpoint heard from the
 *   peer meanwhile (our pong is queued behind the responses of a busy link).
 *
 * @module
 */

import { type LongTimeout, setLongTimeout } from "../_async.ts";

/**
 * How many more `timeout`s an unanswered ping is waited for while there is
 * evidence that the peer is alive.
 */
export const MAX_KEEPALIVE_EXTENSIONS = 10;

/**
 * What the connections of this process to one endpoint have heard from it
 * (a count of reads) and how many connections share the record.
 */
interface PeerLiveness {
  heard: number;
  users: number;
}

/** Per endpoint (`host:port`), while a connection to it is open. */
const peers = new Map<string, PeerLiveness>();

/** What a {@linkcode Keepalive} needs from the connection it watches. */
export interface KeepaliveLink {
  /**
   * Calls waiting for an answer.
   *
   * @returns Their number.
   */
  inFlight(): number;
  /**
   * The last writer batch handed to the socket.
   *
   * @returns Its number.
   */
  started(): number;
  /**
   * Queues a ping.
   *
   * @returns The writer batch it joined.
   */
  ping(): number;
  /** No answer to a ping: closes the connection. */
  dead(): void;
}

/** Periods of a {@linkcode Keepalive}, in ms (see `ConnectionOptions`). */
export interface KeepaliveOptions {
  /** Tick period while calls are in flight; `0` disables keepalive. */
  interval: number;
  /** The wait for any frame after a ping. */
  timeout: number;
  /** Silence after which an idle connection is pinged. */
  idleInterval: number;
  /**
   * The clock that tells a late timer (this process froze).
   *
   * @default {performance.now}
   */
  now?: () => number;
}

/**
 * Watches one connection: call {@linkcode Keepalive.received} on every read,
 * {@linkcode Keepalive.stop} when the connection closes.
 *
 * @example A peer that never answers is declared dead
 * ```ts
 * import { Keepalive } from "./_keepalive.ts";
 * import assert from "node:assert/strict";
 *
 * const dead = Promise.withResolvers<void>();
 * let pings = 0;
 * const keepalive = new Keepalive("127.0.0.1:1", {
 *   inFlight: () => 1,
 *   started: () => Infinity, // every ping reached the socket
 *   ping: () => ++pings,
 *   dead: () => dead.resolve(),
 * }, { interval: 5, timeout: 5, idleInterval: 5 });
 * await dead.promise;
 * keepalive.stop();
 * assert.equal(pings, 1);
 * ```
 */
export class Keepalive {
  #link: KeepaliveLink;
  #name: string;
  #interval: number;
  #timeout: number;
  #idleInterval: number;
  #now: () => number;
  #peer: PeerLiveness;
  #timer: LongTimeout | undefined;
  #stopped = false;
  /** When the timer is due (`performance.now()` time). */
  #due = 0;
  #received = false;
  #pingOutstanding = false;
  #silentTicks = 0;
  /** The endpoint's read count when the ping was sent (or last checked). */
  #peerHeard = 0;
  /** Extra timeouts waited for the outstanding ping. */
  #extensions = 0;
  /** The writer batch of the outstanding ping. */
  #pingBatch = 0;

  /**
   * Starts watching (unless `options.interval` is 0).
   *
   * @param endpoint `host:port` of the peer: connections to the same one
   * share what they hear.
   * @param link The connection.
   * @param options The periods.
   */
  constructor(
    endpoint: string,
    link: KeepaliveLink,
    options: KeepaliveOptions,
  ) {
    this.#link = link;
    this.#name = endpoint;
    this.#interval = options.interval;
    this.#timeout = options.timeout;
    this.#idleInterval = options.idleInterval;
    this.#now = options.now ?? (() => performance.now());
    let peer = peers.get(endpoint);
    if (peer === undefined) {
      peer = { heard: 0, users: 0 };
      peers.set(endpoint, peer);
    }
    peer.users++;
    this.#peer = peer;
    if (this.#interval > 0) this.#arm(this.#interval);
  }

  /** Bytes arrived from the peer: a sign of life. */
  received(): void {
    this.#received = true;
    this.#peer.heard++;
  }

  /** A pong arrived. */
  pong(): void {
    this.#pingOutstanding = false;
  }

  /** Stops the timer and forgets the connection; idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#timer?.clear();
    if (--this.#peer.users === 0) peers.delete(this.#name);
  }

  #arm(delay: number): void {
    this.#due = this.#now() + delay;
    this.#timer = setLongTimeout(this.#tick, delay);
  }

  #tick = (): void => {
    let delay = this.#interval;
    if (this.#received) {
      this.#received = false;
      this.#pingOutstanding = false;
      this.#silentTicks = 0;
    } else if (this.#pingOutstanding) {
      const unsent = this.#link.started() < this.#pingBatch;
      const stalled = this.#now() - this.#due > this.#timeout;
      const alive = this.#peer.heard !== this.#peerHeard;
      if (
        (unsent || stalled || alive) &&
        this.#extensions < MAX_KEEPALIVE_EXTENSIONS
      ) {
        this.#extensions++;
        this.#peerHeard = this.#peer.heard;
        this.#arm(this.#timeout);
        return;
      }
      this.#link.dead();
      return;
    } else if (
      this.#link.inFlight() > 0 ||
      ++this.#silentTicks * this.#interval >= this.#idleInterval
    ) {
      // Silent with calls waiting (or idle for long): ask for a sign of life.
      this.#silentTicks = 0;
      this.#pingOutstanding = true;
      this.#peerHeard = this.#peer.heard;
      this.#extensions = 0;
      this.#pingBatch = this.#link.ping();
      delay = this.#timeout;
    }
    this.#arm(delay);
  };
}
