/**
 * `deno task zookeeper` and the README's three terminals: the task starts a
 * throw-away ZooKeeper on 127.0.0.1:2181, the README's server and client
 * commands run against it as written, and Ctrl-C (SIGINT) stops it and
 * removes its data.
 *
 * When 2181 is taken on this machine (another ZooKeeper), the test moves the
 * three commands to a free port with `--port` / `--zookeeper` — the only edit
 * it makes; with 2181 free it runs them exactly as the README gives them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { within } from "./_wait.ts";
import {
  denoCommand,
  lines,
  runDeno,
  stopChild,
} from "../src/testing/child_process.ts";
import { getFreePorts, isPortFree } from "../src/testing/free_port.ts";

const ROOT = new URL("../", import.meta.url);
const README = await Deno.readTextFile(new URL("README.md", ROOT));
const PERMISSIONS = await Deno.readTextFile(
  new URL("docs/permissions.md", ROOT),
);
const CONFIG = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", ROOT)),
) as { tasks: Record<string, string> };

/** The README's three terminals: the sh block that starts the task. */
function threeTerminals(): string[][] {
  const block = /^```sh\n(deno task zookeeper\b[\s\S]*?)^```$/m.exec(README)
    ?.[1];
  assert.ok(block, "the README has a sh block starting `deno task zookeeper`");
  const commands = block.trim().split("\n").map((line) =>
    line.replace(/\s+#.*$/, "").trim().split(/\s+/)
  );
  assert.equal(commands.length, 3, block);
  return commands;
}

/** A spawned command whose stdout lines are read as they come. */
function spawn(command: string[]): {
  child: Deno.ChildProcess;
  stdout: AsyncGenerator<string>;
  stderr: Promise<string>;
} {
  const [program, ...args] = command;
  assert.equal(program, "deno");
  const child = denoCommand(args, { cwd: ROOT, timeout: Infinity }).spawn();
  return {
    child,
    stdout: lines(child.stdout),
    stderr: new Response(child.stderr).text(),
  };
}

/** The first stdout line matching `pattern` (fails if the output ends). */
async function lineMatching(
  stdout: AsyncGenerator<string>,
  pattern: RegExp,
): Promise<RegExpExecArray> {
  // next(), not for-await: leaving a for-await loop would close the stream.
  for (let line = await stdout.next(); !line.done; line = await stdout.next()) {
    const match = pattern.exec(line.value);
    if (match) return match;
  }
  throw new Error(`the output ended without a line matching ${pattern}`);
}

/**
 * Ends a spawned command and reads its output to the end (bounded: a task
 * killed with SIGKILL could leave its child holding the pipes).
 */
async function finish(spawned: ReturnType<typeof spawn>): Promise<void> {
  await stopChild(spawned.child, "SIGINT", 30_000); // then SIGKILL
  await within(
    (async () => {
      for await (const _ of spawned.stdout); // drain
      await spawned.stderr;
    })(),
    30_000,
    "the output to end",
  );
}

Deno.test("deno task zookeeper defaults to 127.0.0.1:2181 with narrow permissions", async () => {
  const task = CONFIG.tasks.zookeeper;
  assert.ok(task, "deno.json has a zookeeper task");
  assert.match(task, /^deno run /);
  assert.match(task, /--allow-net=127\.0\.0\.1 /);
  assert.match(task, /--allow-write=\/tmp /);
  assert.doesNotMatch(task, /--allow-all|-A\b|--allow-net |--allow-run /);
  const flags = task.replace(/^deno run /, "").replace(/ \S+\.ts$/, "");
  assert.ok(
    PERMISSIONS.includes(`| \`${flags}\` `),
    `docs/permissions.md lists the task's flags: ${flags}`,
  );
  const help = await runDeno(["task", "zookeeper", "--help"], { cwd: ROOT });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--port PORT +client port \(default 2181\)/);
});

Deno.test("the README's server and client run against `deno task zookeeper`, and Ctrl-C stops it and removes its data", async () => {
  const [task, server, client] = threeTerminals();
  assert.deepEqual(task, ["deno", "task", "zookeeper"]);
  const port = isPortFree(2181) ? 2181 : getFreePorts(1)[0]!;
  const moved = port === 2181 ? [] : ["--zookeeper", `127.0.0.1:${port}`];
  const zookeeper = spawn(
    port === 2181 ? task! : [...task!, "--port", `${port}`],
  );
  let serverProcess: ReturnType<typeof spawn> | undefined;
  try {
    const [, address, dataDir] = await within(
      lineMatching(
        zookeeper.stdout,
        /^ZooKeeper serving on (\S+) \(pid \d+, data in (\S+)\)/,
      ),
      120_000,
      "the task's ZooKeeper to serve",
    );
    assert.equal(address, `127.0.0.1:${port}`);
    assert.ok((await Deno.stat(dataDir!)).isDirectory);

    serverProcess = spawn([...server!, ...moved]);
    await within(
      lineMatching(serverProcess.stdout, /^registered/),
      60_000,
      "the README's server to register",
    );
    const output = await runDeno([...client!.slice(1), ...moved], {
      cwd: ROOT,
    });
    const stdout = output.stdout;
    assert.equal(output.code, 0, output.stderr);
    assert.match(stdout, /^divide\(2, 2\) = 1$/m);
    assert.match(stdout, /^divide\(4, 0\): Cannot divide 4 by zero$/m);
    assert.match(stdout, /^10 of 10 calls answered, 0 failed$/m);

    serverProcess.child.kill("SIGTERM");
    const serverStatus = await within(
      serverProcess.child.status,
      30_000,
      "the server to exit",
    );
    assert.equal(serverStatus.code, 0, await serverProcess.stderr);

    zookeeper.child.kill("SIGINT"); // Ctrl-C
    await within(
      lineMatching(zookeeper.stdout, /^ZooKeeper stopped$/),
      60_000,
      "the task to stop ZooKeeper",
    ).catch(async (error) => {
      // How the task ended says why the line is missing (a second signal
      // exits 130 at once, an exception exits 1 with its stack on stderr).
      const ended = await within(zookeeper.child.status, 30_000, "the task")
        .then((status) => `exit ${status.code} (signal ${status.signal})`)
        .catch(() => "still running");
      const stderr = await within(zookeeper.stderr, 30_000, "its stderr")
        .catch(() => "(unread)");
      const why = `${error.message}; the task: ${ended}; stderr:\n${stderr}`;
      throw new Error(why, { cause: error });
    });
    const status = await within(
      zookeeper.child.status,
      30_000,
      "the task to exit",
    );
    assert.equal(status.code, 0, await zookeeper.stderr);
    await assert.rejects(Deno.stat(dataDir!), Deno.errors.NotFound);
    assert.ok(isPortFree(port), `port ${port} is free again`);
  } finally {
    // After a failure: SIGINT first, so that the task stops its JVM.
    for (const spawned of [serverProcess, zookeeper]) {
      if (spawned) await finish(spawned);
    }
  }
});

Deno.test("deno task zookeeper ends with exit 1 and ZooKeeper's log when its JVM dies", async () => {
  const [task] = threeTerminals();
  const port = getFreePorts(1)[0]!;
  const zookeeper = spawn([...task!, "--port", `${port}`]);
  try {
    const [, pid, dataDir] = await within(
      lineMatching(
        zookeeper.stdout,
        /^ZooKeeper serving on \S+ \(pid (\d+), data in (\S+)\)/,
      ),
      120_000,
      "the task's ZooKeeper to serve",
    );
    Deno.kill(Number(pid), "SIGKILL"); // a crash, not a stop
    const status = await within(
      zookeeper.child.status,
      60_000,
      "the task to notice",
    );
    const stderr = await zookeeper.stderr;
    assert.equal(status.code, 1, stderr);
    assert.match(
      stderr,
      /ZooKeeper \(pid \d+\) exited on its own; the end of its log:/,
    );
    await assert.rejects(Deno.stat(dataDir!), Deno.errors.NotFound);
  } finally {
    await finish(zookeeper);
  }
});
