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
import { serveControl, writeJsonLine } from "./child.ts";
import { FrameBuffer, writeAll } from "./frame_echo.ts";
import { usageSnapshot } from "./usage.ts";

let calls = 0;
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const connections = new Set<Deno.Conn>();

async function echo(conn: Deno.TcpConn): Promise<void> {
  connections.add(conn);
  conn.setNoDelay(true);
  const buffer = new FrameBuffer();
  try {
    while (await buffer.fill(conn)) {
      const frames = buffer.takeFrames(() => calls++);
      if (frames.length > 0) await writeAll(conn, frames);
    }
  } catch {
    // peer went away
  } finally {
    connections.delete(conn);
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

async function accept(): Promise<void> {
  try {
    for await (const conn of listener) echo(conn);
  } catch {
    // listener closed
  }
}

const accepting = accept();
writeJsonLine({ port: (listener.addr as Deno.NetAddr).port, pid: Deno.pid });
await serveControl((command) => {
  if (command.cmd === "stats") return { ...usageSnapshot(), calls };
  return { error: `Unknown command: ${String(command.cmd)}` };
});
listener.close();
for (const conn of connections) {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
await accepting;
Deno.exit(0);
