/**
 * A scripted ZooKeeper server on 127.0.0.1 for the wire client's unit tests:
 * it accepts connections, hands the test each frame the client writes (the
 * length prefix removed), and writes the frames the test builds with
 * `JuteWriter`. The test plays every answer, so it can answer late, out of
 * order, with garbage, or not at all.
 *
 * @module
 */
import { JuteReader, JuteWriter } from "../../src/zookeeper/_jute.ts";
import type { WireConn } from "../../src/zookeeper/_wire_client.ts";

/** One accepted connection (a socket, or one end of a memory pipe). */
export class ScriptedConnection {
  readonly conn: WireConn;
  #buffered = new Uint8Array(0);
  #frames: Uint8Array[] = [];
  #waiting: ((frame: Uint8Array | null) => void) | undefined;
  #ended = false;
  readonly done: Promise<void>;

  constructor(conn: WireConn) {
    this.conn = conn;
    this.done = this.#read();
  }

  async #read(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.conn.read(chunk);
        if (n === null) break;
        const joined = new Uint8Array(this.#buffered.length + n);
        joined.set(this.#buffered);
        joined.set(chunk.subarray(0, n), this.#buffered.length);
        this.#buffered = joined;
        while (this.#buffered.length >= 4) {
          const size = new DataView(this.#buffered.buffer).getInt32(0);
          if (this.#buffered.length < 4 + size) break;
          this.#push(this.#buffered.slice(4, 4 + size));
          this.#buffered = this.#buffered.slice(4 + size);
        }
      }
    } catch {
      // closed by the test or the client
    }
    this.#ended = true;
    this.#waiting?.(null);
    this.#waiting = undefined;
  }

  #push(frame: Uint8Array): void {
    if (this.#waiting !== undefined) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting(frame);
    } else this.#frames.push(frame);
  }

  /** The next frame the client wrote; `null` once it closed. */
  next(): Promise<Uint8Array | null> {
    const frame = this.#frames.shift();
    if (frame !== undefined) return Promise.resolve(frame);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting = resolve);
  }

  /** The next request: its xid, opcode and a reader at its body. */
  async request(): Promise<{ xid: number; op: number; body: JuteReader }> {
    const frame = await this.next();
    if (frame === null) throw new Error("the client closed the connection");
    const body = new JuteReader(frame);
    return { xid: body.int(), op: body.int(), body };
  }

  /** Reads the connect request and answers it. */
  async handshake(
    answer: { timeout?: number; sessionId?: bigint; password?: Uint8Array } =
      {},
  ): Promise<{
    protocolVersion: number;
    lastZxid: bigint;
    timeout: number;
    sessionId: bigint;
    password: Uint8Array | null;
    readOnly: boolean;
  }> {
    const frame = await this.next();
    if (frame === null) throw new Error("no connect request");
    const r = new JuteReader(frame);
    const request = {
      protocolVersion: r.int(),
      lastZxid: r.long(),
      timeout: r.int(),
      sessionId: r.long(),
      password: r.buffer(),
      readOnly: r.bool(),
    };
    await this.send(
      new JuteWriter().int(0).int(answer.timeout ?? request.timeout)
        .long(answer.sessionId ?? 0x0123456789abcdefn)
        .buffer(answer.password ?? new Uint8Array(16).fill(9)).bool(false)
        .frame(),
    );
    return request;
  }

  /** A reply: header (xid, zxid, err) then what `body` writes. */
  reply(
    xid: number,
    err = 0,
    body: (writer: JuteWriter) => void = () => {},
    zxid = 100n,
  ): Promise<void> {
    const writer = new JuteWriter().int(xid).long(zxid).int(err);
    body(writer);
    return this.send(writer.frame());
  }

  /** A watch event (xid -1). */
  event(type: number, path: string): Promise<void> {
    return this.send(
      new JuteWriter().int(-1).long(-1n).int(0).int(type).int(3).string(path)
        .frame(),
    );
  }

  /** Writes raw bytes. */
  async send(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) {
      written += await this.conn.write(bytes.subarray(written));
    }
  }

  /** Closes the connection (the client sees an end of stream). */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.done;
  }
}

/** The scripted server. */
export class ScriptedZooKeeper implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly connections: ScriptedConnection[] = [];
  #waiting: ((connection: ScriptedConnection) => void)[] = [];
  #taken = 0;
  #accepting: Promise<void>;

  constructor() {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** `127.0.0.1:port`. */
  get address(): string {
    return `127.0.0.1:${this.listener.addr.port}`;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.listener) {
        const connection = new ScriptedConnection(conn);
        this.connections.push(connection);
        if (this.#waiting.length > 0) {
          this.#taken++;
          this.#waiting.shift()!(connection);
        }
      }
    } catch {
      // closed
    }
  }

  /** The next connection not taken yet, once it is accepted. */
  accepted(): Promise<ScriptedConnection> {
    const connection = this.connections[this.#taken];
    if (connection !== undefined) {
      this.#taken++;
      return Promise.resolve(connection);
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.listener.close();
    await this.#accepting;
    await Promise.all(this.connections.map((c) => c.close()));
  }
}
