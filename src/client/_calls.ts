/**
 * Internal: the calls of one connection in flight — their ids, the local
 * queue of calls over the server's `maxInFlight`, and their deadlines (one
 * timer for all, see `_deadline_queue.ts`).
 *
 * @module
 */

import { type Deadline, NO_DEADLINE, toWire } from "../_deadline.ts";
import { DeadlineQueue } from "./_deadline_queue.ts";
import { IdTable } from "../_id_table.ts";
import type { ClientStream } from "./_stream.ts";

/** One call of a connection, from its id to its answer. */
export class PendingCall {
  id: number;
  /** When the caller stops waiting; `Infinity`: never. */
  deadline: Deadline = NO_DEADLINE;
  done = false;
  /** The ms the call had when it started (for the error message). */
  timeout = 0;
  method: string;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** Writer batch of the request; Infinity while queued locally. */
  batch = Infinity;
  /** The method, from `methodPrefix`. */
  prefix: Uint8Array;
  metadata: Uint8Array | undefined;
  /** The params while queued locally (a copy: scratch bytes are reused). */
  payload: Uint8Array | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  /** The stream this call feeds, for a streaming call. */
  stream: ClientStream | undefined = undefined;

  constructor(
    id: number,
    method: string,
    prefix: Uint8Array,
    metadata: Uint8Array | undefined,
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
  ) {
    this.id = id;
    this.method = method;
    this.prefix = prefix;
    this.metadata = metadata;
    this.resolve = resolve;
    this.reject = reject;
  }
}

/**
 * Writes a call's request with its params and the wire form of what is
 * left of its deadline; returns the writer batch.
 */
export type SendRequest = (
  call: PendingCall,
  timeout: number | undefined,
  params: Uint8Array,
) => number;

/**
 * The calls in flight on one connection: ids, the in-flight limit and its
 * queue, deadlines.
 *
 * @example Two calls over a limit of one: the second waits for the first
 * ```ts
 * import { CallTable, type PendingCall } from "./_calls.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: number[] = [];
 * const table = new CallTable(1, (call) => (sent.push(call.id), 1), () => {});
 * const noop = () => {};
 * const prefix = new Uint8Array([1, 120]);
 * const a = table.open("x", prefix, undefined, Infinity, noop, noop, new Uint8Array(1));
 * table.open("x", prefix, undefined, Infinity, noop, noop, new Uint8Array(1));
 * assert.deepEqual(sent, [1]);
 * table.settle(a);
 * assert.deepEqual(sent, [1, 2]);
 * table.clear();
 * ```
 */
export class CallTable {
  // Not a Map: its rehashes kept finished calls alive (src/_id_table.ts).
  #pending = new IdTable<PendingCall>();
  #nextId = 0;
  #sent = 0;
  #queue: PendingCall[] = [];
  #maxInFlight: number;
  #send: SendRequest;
  #deadlines: DeadlineQueue<PendingCall>;

  /**
   * Constructs a table.
   *
   * @param maxInFlight Requests on the wire at once; more wait locally.
   * @param send Writes a request.
   * @param onExpire Called (before the call is settled) when a call's
   * deadline passes.
   * @param lastId The id before the first call's (ids run from 1 to
   * 2^32-1, then start again at 1; tests start near the end).
   */
  constructor(
    maxInFlight: number,
    send: SendRequest,
    onExpire: (call: PendingCall) => void,
    lastId = 0,
  ) {
    this.#nextId = lastId;
    this.#maxInFlight = maxInFlight;
    this.#send = send;
    this.#deadlines = new DeadlineQueue<PendingCall>(onExpire);
  }

  /** Number of calls awaiting an answer (sent or queued). */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * The call with that id, if it still waits.
   *
   * @param id The request id.
   * @returns The call.
   */
  get(id: number): PendingCall | undefined {
    return this.#pending.get(id);
  }

  /**
   * Whether `call` still waits (it was neither answered nor given up).
   *
   * @param call The call.
   * @returns `true` while pending.
   */
  has(call: PendingCall): boolean {
    return this.#pending.get(call.id) === call;
  }

  /**
   * Starts a call: a fresh id, sent at once when under the in-flight limit
   * (else queued with a copy of `params`), timed when it has a deadline.
   *
   * @returns The call.
   */
  open(
    method: string,
    prefix: Uint8Array,
    metadata: Uint8Array | undefined,
    deadline: Deadline,
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
    params: Uint8Array,
    now: number = Date.now(),
    stream?: ClientStream,
  ): PendingCall {
    let id = this.#nextId;
    do {
      id = id >= 0xffffffff ? 1 : id + 1;
    } while (this.#pending.has(id));
    this.#nextId = id;
    const call = new PendingCall(id, method, prefix, metadata, resolve, reject);
    call.stream = stream;
    this.#pending.set(id, call);
    if (this.#sent < this.#maxInFlight) {
      this.#sent++;
      call.batch = this.#send(call, toWire(deadline, now), params);
    } else {
      call.payload = params.slice();
      this.#queue.push(call);
    }
    if (deadline !== NO_DEADLINE) {
      call.timeout = deadline - now;
      call.deadline = deadline;
      this.#deadlines.add(call);
    }
    return call;
  }

  /**
   * Forgets a call that got its answer or gave up, frees its slot and sends
   * the queued calls that now fit (with what is left of their deadlines).
   *
   * @param call The call.
   */
  settle(call: PendingCall): void {
    this.#pending.delete(call.id);
    this.#release(call);
    if (call.batch === Infinity) return; // was still queued
    this.#sent--;
    while (this.#sent < this.#maxInFlight && this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      if (!this.has(next)) continue; // expired while queued
      this.#sent++;
      next.batch = this.#send(next, toWire(next.deadline), next.payload!);
      next.payload = undefined;
    }
  }

  #release(call: PendingCall): void {
    if (call.deadline !== NO_DEADLINE) this.#deadlines.complete(call);
    if (call.onAbort) call.signal!.removeEventListener("abort", call.onAbort);
  }

  /**
   * Forgets every call (the connection is gone) and returns them, to reject.
   *
   * @returns The calls that were pending.
   */
  clear(): PendingCall[] {
    this.#deadlines.clear();
    const calls = this.#pending.values();
    for (const call of calls) this.#release(call);
    this.#pending.clear();
    this.#queue = [];
    return calls;
  }
}
