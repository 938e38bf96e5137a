/**
 * The second baseline: a minimal hand-written JSON RPC server, what a user
 * would write instead of zkrpc, over the ceiling's framing
 * (`u32 length | u8 type | u32 id | payload`). The payload is
 * `{"method", "params"}` JSON; the answer `{"result"}` or `{"error"}` JSON;
 * the answers to the requests of one read go out in one `write`.
 *
 * Prints `{"port": n}` on stdout, then answers `{"cmd":"stats"}` lines on
 * stdin; exits when stdin closes. Permissions: `--allow-net=127.0.0.1`.
 *
 * @module
 */
import {
  FrameBuffer,
  HEADER_BYTES,
  jsonFrame,
  runFrameServer,
  writeAll,
} from "./frame_echo.ts";

const handlers: Record<string, (...args: unknown[]) => unknown> = {
  divide: (...args) => (args[0] as number) / (args[1] as number),
  echo: (x) => x,
};
const decoder = new TextDecoder();
let calls = 0;

async function serveConn(conn: Deno.TcpConn): Promise<void> {
  const buffer = new FrameBuffer();
  while (await buffer.fill(conn)) {
    const bytes = buffer.takeFrames();
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const answers: Uint8Array[] = [];
    let size = 0;
    for (let at = 0; at < bytes.length;) {
      const length = view.getUint32(at);
      const id = view.getUint32(at + 5);
      const request = JSON.parse(
        decoder.decode(bytes.subarray(at + HEADER_BYTES, at + 4 + length)),
      );
      at += length + 4;
      calls++;
      let body: unknown;
      try {
        body = { result: await handlers[request.method]!(...request.params) };
      } catch (error) {
        body = { error: String(error) };
      }
      const frame = jsonFrame(2, id, body);
      answers.push(frame);
      size += frame.length;
    }
    if (answers.length === 0) continue;
    const out = new Uint8Array(size);
    let o = 0;
    for (const frame of answers) {
      out.set(frame, o);
      o += frame.length;
    }
    await writeAll(conn, out);
  }
}

await runFrameServer(serveConn, () => calls);
