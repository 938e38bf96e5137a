/**
 * Load driver for the hand-written JSON RPC baseline
 * (`bench/handjson_server.ts`): what a user would write instead of zkrpc.
 * One connection per endpoint, requests multiplexed by id, one `write` per
 * call, a read loop settling calls from a `Map`.
 *
 * @module
 */
import {
  FrameBuffer,
  HEADER_BYTES,
  jsonFrame,
  writeAll,
} from "../frame_echo.ts";
import type { DriverConfig, LoadDriver } from "./types.ts";

const decoder = new TextDecoder();

class HandJsonClient {
  #conn: Deno.TcpConn;
  #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  #nextId = 0;
  #reading: Promise<void>;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    conn.setNoDelay(true);
    this.#reading = this.#read();
  }

  call(method: string, params: unknown[]): Promise<unknown> {
    const id = ++this.#nextId >>> 0;
    const frame = jsonFrame(1, id, { method, params });
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      writeAll(this.#conn, frame).catch(reject);
    });
  }

  async #read(): Promise<void> {
    const buffer = new FrameBuffer();
    try {
      while (await buffer.fill(this.#conn)) {
        const bytes = buffer.takeFrames();
        const view = new DataView(bytes.buffer, bytes.byteOffset);
        for (let at = 0; at < bytes.length;) {
          const length = view.getUint32(at);
          const id = view.getUint32(at + 5);
          const body = JSON.parse(decoder.decode(
            bytes.subarray(at + HEADER_BYTES, at + 4 + length),
          ));
          at += length + 4;
          const call = this.#pending.get(id);
          this.#pending.delete(id);
          if (body.error !== undefined) call?.reject(new Error(body.error));
          else call?.resolve(body.result);
        }
      }
    } catch {
      // closed
    }
    for (const call of this.#pending.values()) {
      call.reject(new Error("connection closed"));
    }
  }

  async close(): Promise<void> {
    this.#conn.close();
    await this.#reading;
  }
}

/**
 * Connects to every endpoint and returns the driver.
 *
 * @param config Endpoints and the payload.
 * @returns The driver.
 */
export async function createDriver(config: DriverConfig): Promise<LoadDriver> {
  const clients = await Promise.all(
    config.endpoints.map(async (e) =>
      new HandJsonClient(
        await Deno.connect({ hostname: e.hostname, port: e.port }),
      )
    ),
  );
  let next = 0;
  return {
    async call(): Promise<void> {
      const client = clients[next++ % clients.length]!;
      await client.call("divide", [10, 2]);
    },
    async close(): Promise<void> {
      await Promise.all(clients.map((client) => client.close()));
    },
  };
}
