/**
 * Test helper for the client's unit tests: a {@linkcode Connection} on an
 * in-memory `Deno.Conn` (no socket), facing a scripted server that reads
 * the frames the client writes and sends the frames a test gives it. The
 * settings exchange is skipped (the connection is constructed as
 * `Connection.connect()` does after it), so a test starts at the first
 * call. Writes can be stalled (a slow socket) or made to fail.
 *
 * @module
 */
import { Connection } from "../../src/client/connection.ts";
import type { ConnectionOptions } from "../../src/client/options.ts";
import { type Codec, jsonCodec } from "../../src/protocol/codec.ts";
import {
  encodeFrame,
  type Frame,
  FrameDecoder,
  FrameType,
} from "../../src/protocol/frame.ts";
import { readRequestHeader } from "../../src/protocol/request.ts";
import { decodeMetadata } from "../../src/protocol/metadata.ts";
import { within } from "../_wait.ts";
import { Pipe } from "../_memory_pipe.ts";

/** How long a scripted wait may take: everything here is in memory. */
export const QUICK = 2000;

/** A request as the scripted server read it. */
export interface ReadRequest {
  id: number;
  method: string;
  /** The ms left the client sent; `undefined`: no deadline. */
  timeout: number | undefined;
  metadata: Record<string, string> | undefined;
  params: unknown;
}

/** Peer settings as `Connection`'s constructor takes them. */
export interface PeerSettings {
  maxFrameSize?: number;
  maxInFlight?: number;
  streamWindow?: number;
}

/** A connection and the scripted server at the other end. */
export interface Scripted extends AsyncDisposable {
  conn: Connection;
  /** Every frame the client wrote, in order. */
  frames: Frame[];
  /** The byte count of each `write()` the client made. */
  writes: number[];
  /** The client's socket calls, in the order it made them. */
  events: ("read" | "write")[];
  /** Whether the client closed its socket. */
  socketClosed(): boolean;
  /** The next frame the client writes (of `type`, others skipped). */
  next(type?: FrameType): Promise<Frame>;
  /** The next request, decoded. */
  request(): Promise<ReadRequest>;
  /** Sends a frame to the client. */
  send(type: FrameType, id: number, payload?: Uint8Array): void;
  /** Sends raw bytes to the client. */
  sendBytes(bytes: Uint8Array): void;
  /** Answers call `id` with `value`. */
  result(id: number, value: unknown): void;
  /** Answers call `id` with an error payload. */
  error(id: number, payload: unknown): void;
  /** Sends `goaway` with `reason`. */
  goaway(reason?: string): void;
  /** Resolves once the client read (and handled) everything sent so far. */
  idle(): Promise<void>;
  /** Ends the server's side (the client reads EOF). */
  eof(): void;
  /** Writes of the client wait from now on until `resume()`. */
  stall(): void;
  /** Lets stalled and later writes through. */
  resume(): void;
  /** Makes every later write of the client fail with `error`. */
  failWrites(error: Error): void;
  /** Makes the client's next read fail with `error`. */
  failRead(error: Error): void;
}

let nextPort = 1;

/**
 * Opens a {@linkcode Connection} on an in-memory socket facing a scripted
 * server. Keepalive is off unless `options` sets it.
 *
 * @param options The connection's options.
 * @param peer The settings the server "announced".
 * @param codec The negotiated codec.
 */
export function scripted(
  options: ConnectionOptions = {},
  peer: PeerSettings = { streamWindow: 16 },
  codec: Codec = jsonCodec,
): Scripted {
  const toClient = new Pipe();
  const toServer = new Pipe();
  const frames: Frame[] = [];
  const writes: number[] = [];
  let closed = false;
  let stalled: PromiseWithResolvers<void> | undefined;
  let writeError: Error | undefined;
  let readError: Error | undefined;
  const decoder = new FrameDecoder({ maxFrameSize: 1 << 30 });
  let cursor = 0;
  let arrived = Promise.withResolvers<void>();
  const badResource = () => new Deno.errors.BadResource("Bad resource ID");
  const events: ("read" | "write")[] = [];
  const socket = {
    async read(p: Uint8Array): Promise<number | null> {
      events.push("read");
      if (closed) throw badResource();
      if (readError) throw readError;
      return await toClient.read(p);
    },
    async write(p: Uint8Array): Promise<number> {
      events.push("write");
      if (closed) throw badResource();
      while (stalled) await stalled.promise;
      if (writeError) throw writeError;
      if (closed) throw badResource();
      writes.push(p.length);
      decoder.push(p);
      for (let f = decoder.next(); f; f = decoder.next()) {
        frames.push({ ...f, payload: f.payload.slice() });
      }
      arrived.resolve();
      arrived = Promise.withResolvers<void>();
      return p.length;
    },
    close(): void {
      if (closed) throw badResource();
      closed = true;
      toClient.end();
      toServer.end();
      arrived.resolve();
    },
  };
  const conn = new Connection(
    socket as unknown as Deno.Conn,
    { hostname: "memory", port: nextPort++ },
    new FrameDecoder(
      options.maxFrameSize ? { maxFrameSize: options.maxFrameSize } : {},
    ),
    { keepaliveInterval: 0, ...options },
    peer,
    codec,
  );
  const next = async (type?: FrameType): Promise<Frame> => {
    const deadline = Date.now() + QUICK;
    while (true) {
      while (cursor < frames.length) {
        const frame = frames[cursor++]!;
        if (type === undefined || frame.type === type) return frame;
      }
      if (closed) throw new Error("The client closed its socket");
      await within(
        arrived.promise,
        Math.max(1, deadline - Date.now()),
        `a frame of type ${type ?? "any"} from the client`,
      );
    }
  };
  const send = (
    type: FrameType,
    id: number,
    payload: Uint8Array = new Uint8Array(0),
  ) => toClient.push(encodeFrame(type, id, payload));
  return {
    conn,
    frames,
    writes,
    events,
    socketClosed: () => closed,
    next,
    async request() {
      const frame = await next(FrameType.Request);
      const header = readRequestHeader(frame.payload);
      return {
        id: frame.id,
        method: new TextDecoder().decode(header.method),
        timeout: header.timeout,
        metadata: header.metadata === undefined
          ? undefined
          : { ...decodeMetadata(header.metadata) },
        params: codec.decode(frame.payload.subarray(header.paramsStart)),
      };
    },
    send,
    sendBytes: (bytes) => toClient.push(bytes),
    result: (id, value) => send(FrameType.Result, id, codec.encode(value)),
    error: (id, payload) => send(FrameType.Error, id, codec.encode(payload)),
    goaway: (reason = "Server is closing") =>
      send(FrameType.Goaway, 0, new TextEncoder().encode(reason)),
    idle: () => within(toClient.idle(), QUICK, "the client to read all"),
    eof: () => toClient.end(),
    stall() {
      stalled ??= Promise.withResolvers<void>();
    },
    resume() {
      const s = stalled;
      stalled = undefined;
      s?.resolve();
    },
    failWrites(error) {
      writeError = error;
    },
    failRead(error) {
      readError = error;
      toClient.push(new Uint8Array(0));
    },
    async [Symbol.asyncDispose]() {
      this.resume();
      conn.close();
      await within(conn.finished, QUICK, "the connection to finish");
    },
  };
}
