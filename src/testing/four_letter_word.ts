/**
 * Sends a ZooKeeper four-letter-word command (`ruok`, `srvr`, `mntr`...) and
 * reads the whole answer.
 *
 * @module
 */
import { deadline, isTimeoutError } from "../_async.ts";

/** Options for {@linkcode fourLetterWord}. */
export interface FourLetterWordOptions {
  /**
   * Milliseconds to wait for the connection and the full answer.
   *
   * @default {2000}
   */
  timeout?: number;
}

/**
 * Sends `word` to the ZooKeeper server at `hostname:port` and returns its
 * answer as text. Rejects when the server does not answer within the timeout or
 * refuses the connection.
 *
 * @param address Where the server listens.
 * @param word The four-letter word, e.g. `"ruok"` or `"srvr"`.
 * @param options Timeout.
 * @returns The server's answer.
 */
export async function fourLetterWord(
  address: { hostname: string; port: number },
  word: string,
  options: FourLetterWordOptions = {},
): Promise<string> {
  const { timeout = 2000 } = options;
  let conn: Deno.TcpConn | undefined;
  let finished = false;
  const exchange = async (): Promise<string> => {
    const opened = await Deno.connect({
      hostname: address.hostname,
      port: address.port,
    });
    if (finished) {
      opened.close();
      throw new Deno.errors.Interrupted("four-letter word abandoned");
    }
    conn = opened;
    await opened.write(new TextEncoder().encode(word));
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(4096);
    let answer = "";
    while (true) {
      const n = await opened.read(buffer);
      if (n === null) break;
      answer += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
    return answer + decoder.decode();
  };
  const work = exchange();
  try {
    return await deadline(work, timeout);
  } catch (error) {
    if (!isTimeoutError(error)) throw error;
    throw new Deno.errors.TimedOut(
      `Cannot send "${word}" to ${address.hostname}:${address.port}: no answer within ${timeout} ms`,
    );
  } finally {
    finished = true;
    try {
      conn?.close();
    } catch {
      // already closed
    }
    // Let a read that the close interrupted settle, so no op outlives us.
    await work.catch(() => {});
  }
}
