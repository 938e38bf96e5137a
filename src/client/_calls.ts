/**
 * Internal: the calls of one connection in flight - their ids, the local
 * queue of calls over the server's `maxInFlight`, and their deadlines (one
 * timer for all, see `_deadline_queue.ts`).
 *
 * @module
 */

import { type Deadline, NO_DEADLINE, toWire } from "../_deadline.ts";
import { DeadlineQueue } from "./_deadline_queue.ts";
import { IdTable } from "../_id_table.ts";
import { withCallerStack } from "../errors.ts";
import type { ClientStream } from "./_stream.ts";

/**
 * Internal: what a channel's attempt gets instead of a promise: the outcome
 * of its call, `onValue` from the read loop, `onError` in a microtask.
 */
export interface CallSink {
  /** The call's result. */
  onValue(value: unknown): void;
  /** Why the call failed. */
  onError(error: unknown): void;
}

const NO_RESOLVER = (): void => {};

/**
 * The resolving functions of the promise {@linkcode callPromise} made last,
 * to read at once (`clear()` then: no settled call stays reachable). One
 * shared executor instead of a closure or a `withResolvers()` record per
 * call.
 *
 * @example
 * ```ts
 * import { callPromise, resolvers } from "./_calls.ts";
 * import assert from "node:assert/strict";
 *
 * const promise = callPromise();
 * const resolve = resolvers.resolve;
 * resolvers.clear();
 * resolve(7);
 * assert.equal(await promise, 7);
 * ```
 */
export const resolvers = {
  resolve: NO_RESOLVER as (value: unknown) => void,
  reject: NO_RESOLVER as (error: unknown) => void,
  clear(): void {
    resolvers.resolve = resolvers.reject = NO_RESOLVER;
  },
};

function take(
  resolve: (value: unknown) => void,
  reject: (error: unknown) => void,
): void {
  resolvers.resolve = resolve;
  resolvers.reject = reject;
}

/**
 * A new promise whose resolving functions are in {@linkcode resolvers}.
 *
 * @returns The promise.
 */
export function callPromise(): Promise<unknown> {
  return new Promise(take);
}

/**
 * Gives a failed call's error the caller's frames (see `withCallerStack`)
 * and rethrows it: the rejection handler of a call's promise. V8 gives
 * it the frames of the code that awaits that promise, so a call needs no
 * `async` wrapper (and no second promise hop) for its errors' stacks.
 *
 * @param error The call's error.
 * @throws The same error.
 *
 * @example
 * ```ts
 * import { rethrowWithCallerStack } from "./_calls.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new TypeError("local");
 * assert.throws(() => rethrowWithCallerStack(error), (e) => e === error);
 * ```
 */
export function rethrowWithCallerStack(error: unknown): never {
  throw withCallerStack(error);
}

/**
 * What a failed call's promise is resolved with: a thenable whose `then`
 * V8 runs as a job of that promise, where `withCallerStack` sees the frames
 * of the code that awaits the call. Only a failure pays for it: a call that
 * succeeds has no rejection reaction and no second promise.
 */
class CallerStackRejection {
  readonly #error: unknown;

  constructor(error: unknown) {
    this.#error = error;
  }

  then(_resolve: unknown, reject: (error: unknown) => void): void {
    reject(withCallerStack(this.#error));
  }
}

/**
 * Fails a call's promise through its `resolve` function so that the error
 * gets the caller's frames (see `withCallerStack`), as
 * {@linkcode rethrowWithCallerStack} does as a rejection handler, without a
 * reaction on every call.
 *
 * @param resolve The resolve function of the promise the caller awaits.
 * @param error The call's error.
 *
 * @example The error names the function that awaited the call
 * ```ts
 * import { callPromise, rejectWithCallerStack, resolvers } from "./_calls.ts";
 * import { ConnectionError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const promise = callPromise();
 * const resolve = resolvers.resolve;
 * resolvers.clear();
 * async function checkout(): Promise<unknown> {
 *   return await promise;
 * }
 * const awaited = checkout();
 * setTimeout(() => rejectWithCallerStack(resolve, new ConnectionError("lost", { written: true })), 0);
 * await assert.rejects(awaited, (e: Error) => e.stack!.includes("checkout"));
 * ```
 */
export function rejectWithCallerStack(
  resolve: (value: unknown) => void,
  error: unknown,
): void {
  resolve(new CallerStackRejection(error));
}

/** A plain call's `reject`, called as a method of its `PendingCall`. */
function rejectCall(this: PendingCall, error: unknown): void {
  rejectWithCallerStack(this.resolve, error);
}

/**
 * The `reject` to give {@linkcode CallTable.prototype.open} for a call whose
 * errors must carry the caller's frames: the call's promise is failed
 * through {@linkcode rejectWithCallerStack}. The table calls it as a method
 * of the `PendingCall`, whose `resolve` it uses.
 *
 * @example
 * ```ts
 * import { callPromise, CallTable, REJECT_WITH_CALLER_STACK, resolvers } from "./_calls.ts";
 * import assert from "node:assert/strict";
 *
 * const table = new CallTable(1, () => 1, () => {});
 * const promise = callPromise();
 * const call = table.open("m", new Uint8Array([1, 109]), undefined, Infinity, resolvers.resolve, REJECT_WITH_CALLER_STACK, new Uint8Array(1));
 * resolvers.clear();
 * table.settle(call);
 * call.reject(new RangeError("gone"));
 * await assert.rejects(promise, RangeError);
 * ```
 */
export const REJECT_WITH_CALLER_STACK: (error: unknown) => void =
  rejectCall as (error: unknown) => void;

// A sink call's resolving functions: shared, called as methods of the call.
function sinkValue(this: PendingCall, value: unknown): void {
  const sink = this.sink!;
  try {
    sink.onValue(value);
  } catch (error) {
    // Not the read loop's failure: the attempt's.
    laterError(sink, error);
  }
}
function sinkError(this: PendingCall, error: unknown): void {
  // Later, as a promise's rejection would be: the attempt may retry on the
  // same connection, which is in the middle of its own bookkeeping now.
  laterError(this.sink!, error);
}
// Apart, so that its closure does not make sinkValue allocate a context on
// every call.
function laterError(sink: CallSink, error: unknown): void {
  queueMicrotask(() => sink.onError(error));
}

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
  /** Who gets the outcome instead of a promise (a channel's attempt). */
  sink: CallSink | undefined = undefined;

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
  #maxId: number;
  /** Whether the ids ran past `#maxId` once (an id may then be in use). */
  #wrapped = false;
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
   * `maxId`, then start again at 1; tests start near the end).
   * @param maxId The largest id (2^32-1: the wire's; tests use a few, to
   * reach ids still in use after the wrap).
   */
  constructor(
    maxInFlight: number,
    send: SendRequest,
    onExpire: (call: PendingCall) => void,
    lastId = 0,
    maxId = 0xffffffff,
  ) {
    this.#nextId = lastId;
    this.#maxId = maxId;
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
    sink?: CallSink,
  ): PendingCall {
    const maxId = this.#maxId;
    let id = this.#nextId;
    if (id >= maxId) {
      id = 1;
      this.#wrapped = true;
    } else id++;
    // Before the first wrap every id is new: no lookup per call.
    while (this.#wrapped && this.#pending.has(id)) {
      id = id >= maxId ? 1 : id + 1;
    }
    this.#nextId = id;
    const call = new PendingCall(id, method, prefix, metadata, resolve, reject);
    call.stream = stream;
    if (sink !== undefined) {
      call.sink = sink;
      call.resolve = sinkValue;
      call.reject = sinkError;
    }
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
