/**
 * The ceiling: a raw Deno TCP echo server of length-prefixed frames.
 *
 * Prints `{"port": n}` on stdout, then answers `{"cmd":"stats"}` lines on
 * stdin with `{"cpuUs", "rss", "calls"}`; exits when stdin closes.
 *
 * Permissions: `--allow-net=127.0.0.1`.
 *
 * @module
 */
import { FrameBuffer, runFrameServer, writeAll } from "./frame_echo.ts";

let calls = 0;

async function echo(conn: Deno.TcpConn): Promise<void> {
  const buffer = new FrameBuffer();
  while (await buffer.fill(conn)) {
    const frames = buffer.takeFrames(() => calls++);
    if (frames.length > 0) await writeAll(conn, frames);
  }
}

await runFrameServer(echo, () => calls);
