/**
 * Internal: the protection timers of one server connection - the handshake
 * timeout, the idle timeout, the frame timeout (slow-loris), the maximum
 * connection age and the ping rate. One timer at a time per job, any length
 * (`setLongTimeout`).
 *
 * @module
 */

import { type LongTimeout, setLongTimeout } from "../_async.ts";

/** The limits a {@linkcode Guards} enforces, defaults already applied. */
export interface GuardLimits {
  handshakeTimeout: number;
  idleTimeout: number;
  frameTimeout: number;
  maxPingsPerMinute: number;
  /** 0 or Infinity: no limit. */
  maxConnectionAge: number;
  /** How long a connection drained for its age may take to go. */
  closeTimeout: number;
}

/** What a {@linkcode Guards} needs of its connection. */
export interface GuardedConnection {
  closed(): boolean;
  handshaken(): boolean;
  /** Calls running (answered or not yet). */
  calls(): number;
  /** Whether answers wait for the output to drain. */
  waiting(): boolean;
  /** Ends the connection for a broken limit (`tell`: send the reason). */
  violation(reason: string, tell: boolean): void;
  /** The maximum age was reached: drain. */
  tooOld(): void;
  /** The drain after `tooOld()` took longer than `closeTimeout`. */
  close(): void;
}

/**
 * The protection timers of one connection.
 *
 * @example Count pings
 * ```ts ignore
 * const guards = new Guards(connection, limits);
 * guards.start();
 * if (guards.tooManyPings()) refuse();
 * guards.stop();
 * ```
 */
export class Guards {
  #conn: GuardedConnection;
  #limits: GuardLimits;
  /** The handshake timer, then the idle timer. */
  #timer: LongTimeout | undefined;
  #ageTimer: LongTimeout | undefined;
  /** One lazily armed timer checks partial frames (not one per frame). */
  #frameTimer: LongTimeout | undefined;
  /** When the last request arrived or call completed (pings do not count). */
  #lastActivity = Date.now();
  /** When the bytes of the frame now incomplete started to arrive, or 0. */
  #partialSince = 0;
  /** Pings received in the current one-minute window, and when it began. */
  #pings = 0;
  #pingWindow = 0;

  /**
   * Constructs the guards of a connection.
   *
   * @param conn The connection.
   * @param limits Its limits.
   */
  constructor(conn: GuardedConnection, limits: GuardLimits) {
    this.#conn = conn;
    this.#limits = limits;
  }

  /** Arms the handshake timer and the age timer. */
  start(): void {
    this.#timer = setLongTimeout(this.#onTimer, this.#limits.handshakeTimeout);
    const age = this.#limits.maxConnectionAge;
    if (age > 0 && age < Infinity) {
      // +/-10 % jitter: connections opened together do not all go at once.
      this.#ageTimer = setLongTimeout(
        this.#onMaxAge,
        age * (0.9 + Math.random() * 0.2),
      );
    }
  }

  /** The preface was accepted: the idle timer replaces the handshake's. */
  handshaken(): void {
    this.active();
    this.#timer?.clear();
    this.#armIdle(this.#limits.idleTimeout);
  }

  /** A request arrived or a call completed (pings do not count). */
  active(): void {
    this.#lastActivity = Date.now();
  }

  /**
   * After a read: whether part of a frame waits in the decoder (a frame
   * that takes longer than `frameTimeout` to arrive ends the connection).
   *
   * @param partial Whether bytes of an incomplete frame are buffered.
   */
  framing(partial: boolean): void {
    if (!partial) this.#partialSince = 0;
    else if (this.#partialSince === 0) this.#onPartialFrame();
  }

  /** A whole frame was read. */
  frameRead(): void {
    this.#partialSince = 0;
  }

  /**
   * Counts a ping; `true` when it is one more than `maxPingsPerMinute`
   * allows in the current minute.
   *
   * @returns Whether the limit is broken.
   */
  tooManyPings(): boolean {
    const now = Date.now();
    if (now - this.#pingWindow >= 60_000) {
      this.#pingWindow = now;
      this.#pings = 0;
    }
    return ++this.#pings > this.#limits.maxPingsPerMinute;
  }

  /** Stops every timer (the connection closed). */
  stop(): void {
    this.#timer?.clear();
    this.#frameTimer?.clear();
    this.#ageTimer?.clear();
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    const conn = this.#conn;
    if (conn.closed()) return;
    if (!conn.handshaken()) {
      conn.violation(
        `no valid preface within ${this.#limits.handshakeTimeout} ms (handshake timeout)`,
        false,
      );
      return;
    }
    const idleTimeout = this.#limits.idleTimeout;
    const idle = Date.now() - this.#lastActivity;
    if (conn.calls() === 0 && !conn.waiting() && idle >= idleTimeout) {
      conn.violation(
        `no call for ${idleTimeout} ms (idle timeout; pings do not count)`,
        false,
      );
      return;
    }
    this.#armIdle(conn.calls() === 0 ? idleTimeout - idle : idleTimeout);
  };

  #armIdle(ms: number): void {
    if (this.#limits.idleTimeout > 0 && !this.#conn.closed()) {
      this.#timer = setLongTimeout(this.#onTimer, Math.max(1, ms));
    }
  }

  #onMaxAge = (): void => {
    if (this.#conn.closed()) return;
    this.#conn.tooOld();
    // A peer that never answers the drain ping still goes.
    this.#ageTimer = setLongTimeout(
      () => this.#conn.close(),
      this.#limits.closeTimeout,
    );
  };

  #onPartialFrame(): void {
    // The read loop gets here after close() too (its last read, or a wait
    // for the writer, ended by the close): no timer may outlive the socket.
    if (this.#conn.closed()) return;
    this.#partialSince = Date.now();
    if (this.#frameTimer === undefined && this.#limits.frameTimeout > 0) {
      this.#frameTimer = setLongTimeout(
        this.#onFrameTimer,
        this.#limits.frameTimeout,
      );
    }
  }

  #onFrameTimer = (): void => {
    this.#frameTimer = undefined;
    if (this.#conn.closed() || this.#partialSince === 0) return;
    const frameTimeout = this.#limits.frameTimeout;
    const waited = Date.now() - this.#partialSince;
    if (waited >= frameTimeout) {
      this.#conn.violation(
        `incomplete frame for ${waited} ms (frame timeout ${frameTimeout} ms)`,
        true,
      );
    } else {
      this.#frameTimer = setLongTimeout(
        this.#onFrameTimer,
        frameTimeout - waited,
      );
    }
  };
}
