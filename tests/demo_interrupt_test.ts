/**
 * The demo stops gracefully on Ctrl-C and, on a second Ctrl-C while it
 * cleans up, exits at once with 130 and leaves no process behind.
 *
 * @module
 */
import assert from "node:assert/strict";
import { denoCommand, lines } from "../src/testing/child_process.ts";
import { lineMatching } from "./_cli_helpers.ts";
import { waitFor, within } from "./_wait.ts";

const ROOT = new URL("../", import.meta.url);

/** The "demo" task's `deno run …` arguments, read from deno.json. */
async function demoTaskArgs(): Promise<string[]> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  );
  return (config.tasks.demo as string).split(/\s+/).slice(1);
}

/** Whether a process is gone (or a zombie waiting for its parent). */
async function gone(pid: number): Promise<boolean> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    return /^State:\s+Z/m.test(status);
  } catch {
    return true;
  }
}

function kill(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // gone
  }
}

Deno.test("the demo exits at once with 130 on a second Ctrl-C during its cleanup and leaves no process behind", async () => {
  const child = denoCommand([...await demoTaskArgs(), "--duration", "60"], {
    cwd: ROOT,
    timeout: 120_000,
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const output = lines(child.stdout);
  const pids: number[] = [];
  let zooKeeper: number | undefined;
  try {
    const ready = await lineMatching(
      output,
      /ZooKeeper ready on .*\(pid \d+\)/,
      60_000,
    );
    zooKeeper = Number(/\(pid (\d+)\)/.exec(ready)![1]);
    pids.push(zooKeeper);
    for (let i = 0; i < 3; i++) {
      const line = await lineMatching(
        output,
        /server-\d registered: .*\(pid \d+\)/,
        60_000,
      );
      pids.push(Number(/\(pid (\d+)\)/.exec(line)![1]));
    }
    await lineMatching(output, /load: divide at/, 60_000);
    // A frozen ZooKeeper holds the servers' graceful close (their
    // deregistration) for the demo's 3 s grace: the cleanup is still running
    // when the second Ctrl-C comes.
    kill(zooKeeper, "SIGSTOP");
    child.kill("SIGINT");
    await lineMatching(output, /result +INTERRUPTED/, 60_000);
    child.kill("SIGINT");
    const status = await within(child.status, 60_000, "the demo to exit");
    assert.equal(status.code, 130);
    assert.match(await stderr, /demo: interrupted again: exiting at once/);
    for (const pid of pids) {
      await waitFor(() => gone(pid), `process ${pid} to be gone`, 10_000);
    }
  } finally {
    for (const pid of pids) kill(pid, "SIGKILL");
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
    for await (const _ of output);
    await stderr;
  }
});
