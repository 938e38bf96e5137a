/**
 * A raw TCP "member" that speaks the zkrpc protocol (preface, settings,
 * request and error frames) without the server module, to play a server
 * that lies or misbehaves in ways a real one cannot.
 *
 * @module
 */
import {
  encodeFrame,
  FrameDecoder,
  FrameType,
  PREFACE_SIZE,
} from "../src/protocol/frame.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { concat, HELLO, writeAll } from "./_core_helpers.ts";

/**
 * How the fake member answers each request:
 * - `"run-then-closing"`: counts the request as run, then answers
 *   `ServerClosingError` (a hostile member's "did not run" lie).
 * - `"goaway-then-closing"`: sends `goaway`, then answers
 *   `ServerClosingError` without running it (what a draining server does).
 */
export type FakeMemberMode = "run-then-closing" | "goaway-then-closing";

/** A running fake member; disposing closes it and every connection. */
export interface FakeMember extends AsyncDisposable {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** Requests it "ran", by method. */
  readonly ran: string[];
  /** Requests it received, by method. */
  readonly received: string[];
  /** Closes the listener and every connection, and waits for them. */
  close(): Promise<void>;
}

/** The method name of a version 2 request payload. */
function methodOf(payload: Uint8Array): string {
  const flags = payload[0]!;
  let o = 1;
  if (flags & 1) o += 4; // deadline
  if (flags & 2) o += 2 + ((payload[o]! << 8) | payload[o + 1]!); // metadata
  const length = payload[o]!;
  return new TextDecoder().decode(payload.subarray(o + 1, o + 1 + length));
}

/**
 * Starts a fake member on 127.0.0.1.
 *
 * @param mode How it answers requests.
 */
export function startFakeMember(mode: FakeMemberMode): FakeMember {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const loops: Promise<void>[] = [];
  const ran: string[] = [];
  const received: string[] = [];
  const serveConn = async (conn: Deno.Conn): Promise<void> => {
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(65536);
    let prefaceLeft = PREFACE_SIZE;
    let goaway = false;
    try {
      // A server's preface and settings are a client's: version 2, json.
      await writeAll(conn, HELLO);
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) return;
        const skip = Math.min(prefaceLeft, n);
        prefaceLeft -= skip;
        decoder.push(buffer.subarray(skip, n));
        for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
          if (f.type === FrameType.Ping) {
            await writeAll(conn, encodeFrame(FrameType.Pong, f.id, f.payload));
          }
          if (f.type !== FrameType.Request) continue;
          const method = methodOf(f.payload);
          received.push(method);
          const out: Uint8Array[] = [];
          if (mode === "run-then-closing") ran.push(method);
          else if (!goaway) {
            goaway = true;
            out.push(
              encodeFrame(
                FrameType.Goaway,
                0,
                new TextEncoder().encode("Server is closing"),
              ),
            );
          }
          out.push(
            encodeFrame(
              FrameType.Error,
              f.id,
              jsonCodec.encode({
                name: "ServerClosingError",
                message:
                  `Cannot call method "${method}": server is closing (request not run)`,
              }),
            ),
          );
          await writeAll(conn, concat(...out));
        }
      }
    } catch {
      // closed under us
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        loops.push(serveConn(conn));
      }
    } catch {
      // listener closed
    }
  })();
  const close = async (): Promise<void> => {
    try {
      listener.close();
    } catch {
      // already closed
    }
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    await accepting;
    await Promise.all(loops);
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    ran,
    received,
    close,
    [Symbol.asyncDispose]: close,
  };
}
