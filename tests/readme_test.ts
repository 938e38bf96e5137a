/**
 * Every TypeScript block of README.md runs as written: each starts with a
 * `// name.ts` line, is written to a temporary directory under that name and
 * run with the project's deno.json (which maps `@zkrpc/zkrpc` to this
 * checkout, as `deno add jsr:@zkrpc/zkrpc` would).
 *
 * The quick-start pair talks to `127.0.0.1:2181`: the test starts its
 * throw-away ZooKeeper there when the port is free, else it points the two
 * blocks at another port (the only edit it ever makes).
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper, type ZooKeeperServer } from "../testing.ts";

const ROOT = new URL("../", import.meta.url);
const CONFIG = new URL("deno.json", ROOT).pathname;
const README = await Deno.readTextFile(new URL("README.md", ROOT));

/** The README's ```ts blocks by the file name on their first line. */
function tsBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    const code = match[1] as string;
    const name = /^\/\/ (\w+\.ts)\b/.exec(code)?.[1];
    assert.ok(
      name,
      `a README block does not start with "// name.ts":\n${code}`,
    );
    assert.ok(!blocks.has(name), `two README blocks are named ${name}`);
    blocks.set(name, code);
  }
  return blocks;
}

async function writeBlocks(
  dir: string,
  blocks: Map<string, string>,
  edit: (code: string) => string = (code) => code,
): Promise<void> {
  for (const [name, code] of blocks) {
    await Deno.writeTextFile(`${dir}/${name}`, edit(code));
  }
}

function deno(args: string[], dir: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "zkrpc-readme-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const blocks = tsBlocks(README);

Deno.test("every README TypeScript block is named and type-checks", async () => {
  assert.deepEqual(
    [...blocks.keys()].sort(),
    [
      "calculator.ts",
      "client.ts",
      "discovery_test.ts",
      "server.ts",
      "tour.ts",
    ],
  );
  await inTempDir(async (dir) => {
    await writeBlocks(dir, blocks);
    const output = await deno(
      ["check", "--config", CONFIG, ...blocks.keys()],
      dir,
    ).output();
    assert.equal(
      output.code,
      0,
      new TextDecoder().decode(output.stderr),
    );
  });
});

/** ZooKeeper on 127.0.0.1:2181 when free, else on any port. */
async function zooKeeperFor2181(): Promise<ZooKeeperServer> {
  try {
    return await startZooKeeper({ port: 2181 });
  } catch {
    return await startZooKeeper();
  }
}

Deno.test("the README's server and client run as written", async () => {
  await using zk = await zooKeeperFor2181();
  await inTempDir(async (dir) => {
    await writeBlocks(
      dir,
      blocks,
      (code) => code.replaceAll("127.0.0.1:2181", zk.connectionString),
    );
    const server = deno(
      ["run", "--config", CONFIG, "--allow-net=127.0.0.1", "server.ts"],
      dir,
    ).spawn();
    const serverOut = new Response(server.stdout).text();
    const serverErr = new Response(server.stderr).text();
    try {
      const client = await deno(
        ["run", "--config", CONFIG, "--allow-net=127.0.0.1", "client.ts"],
        dir,
      ).output();
      const stdout = new TextDecoder().decode(client.stdout);
      assert.equal(
        client.code,
        0,
        new TextDecoder().decode(client.stderr),
      );
      assert.equal(stdout, "5\ntrue Cannot divide 1 by zero\n");
    } finally {
      server.kill("SIGINT");
    }
    const status = await server.status;
    assert.equal(status.code, 0, await serverErr);
    assert.match(await serverOut, /^listening on 127\.0\.0\.1:\d+\n$/);
  });
});

Deno.test("the README's API tour runs as written with the flags it gives", async () => {
  const flags = /`deno run (--allow[^`]*) tour\.ts`/.exec(README)?.[1];
  assert.ok(flags, "the README gives the tour's command");
  await inTempDir(async (dir) => {
    await writeBlocks(dir, blocks);
    const output = await deno(
      ["run", "--config", CONFIG, ...flags.split(" "), "tour.ts"],
      dir,
    ).output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.match(stdout, /registered as \/rpc\/calculator\/server-/);
    assert.match(stdout, /tour done\n$/);
  });
});

Deno.test("the README's testing-export example passes under deno test", async () => {
  const flags = /\/\/ discovery_test\.ts {2}\(deno test (--allow[^)]*)\)/.exec(
    README,
  )?.[1];
  assert.ok(flags, "the README gives the test's command");
  await inTempDir(async (dir) => {
    await writeBlocks(dir, blocks);
    const output = await deno(
      ["test", "--config", CONFIG, ...flags.split(" "), "discovery_test.ts"],
      dir,
    ).output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(
      output.code,
      0,
      stdout + new TextDecoder().decode(output.stderr),
    );
    assert.match(stdout, /1 passed/);
  });
});

Deno.test("the README's commands and demo flags match deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(CONFIG));
  assert.match(README, /^deno task demo /m);
  assert.match(README, /^deno task test /m);
  assert.ok(config.tasks.demo && config.tasks.test);
  const demoFlags = (config.tasks.demo as string)
    .replace(/^deno run /, "")
    .replace(/ examples\/demo\.ts$/, "");
  assert.ok(
    README.includes(`| \`${demoFlags}\` |`),
    `the permission table lists the demo task's flags: ${demoFlags}`,
  );
  assert.match(README, /^deno add jsr:@zkrpc\/zkrpc$/m);
  assert.match(README, /^## Performance$/m); // filled from `deno task bench`
  assert.equal(config.name, "@zkrpc/zkrpc");
});
