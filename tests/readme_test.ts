/**
 * Every TypeScript block of README.md and of the docs pages that hold
 * examples runs as written: each starts with a `// name.ts` line, is written
 * to a temporary directory under that name and run with the project's
 * deno.json (which maps `@zkrpc/zkrpc` to this checkout, as
 * `deno add jsr:@zkrpc/zkrpc` would). Named blocks of the other docs pages
 * are checked too; their unnamed blocks are signature sketches.
 *
 * The README stays a first read: at most 20 KB, a picture that exists, and
 * every relative link of the README and the docs points at a file and a
 * heading that exist.
 *
 * The quick-start pair talks to `127.0.0.1:2181`: the test starts its
 * throw-away ZooKeeper there when the port is free, else it points the two
 * blocks at another port (the only edit it ever makes).
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper, type ZooKeeperServer } from "../testing.ts";
import { ZooKeeperSession } from "../zookeeper.ts";
import { denoCommand } from "../src/testing/child_process.ts";

const ROOT = new URL("../", import.meta.url);
const CONFIG = new URL("deno.json", ROOT).pathname;
const README = await Deno.readTextFile(new URL("README.md", ROOT));

/** README.md and every docs page, by path relative to the root. */
const PAGES = new Map<string, string>([["README.md", README]]);
for (
  const entry of [...Deno.readDirSync(new URL("docs/", ROOT))].sort((a, b) =>
    a.name.localeCompare(b.name)
  )
) {
  if (!entry.isFile || !entry.name.endsWith(".md")) continue;
  PAGES.set(
    `docs/${entry.name}`,
    Deno.readTextFileSync(new URL(`docs/${entry.name}`, ROOT)),
  );
}

/** The pages whose every ```ts block is a named, runnable example. */
const EXAMPLE_PAGES = [
  "README.md",
  "docs/api-tour.md",
  "docs/errors.md",
  "docs/metadata-and-deadlines.md",
  "docs/interceptors-and-telemetry.md",
  "docs/health-and-routing.md",
  "docs/testing-your-service.md",
];

/** The ```ts blocks of every page by the file name on their first line. */
function tsBlocks(pages: Map<string, string>): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const [page, markdown] of pages) {
    for (const match of markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
      const code = match[1] as string;
      const name = /^\/\/ (\w+\.ts)\b/.exec(code)?.[1];
      if (!name) {
        assert.ok(
          !EXAMPLE_PAGES.includes(page),
          `a block of ${page} does not start with "// name.ts":\n${code}`,
        );
        continue;
      }
      assert.ok(!blocks.has(name), `two blocks are named ${name}`);
      blocks.set(name, code);
    }
  }
  return blocks;
}

/** The page that holds `text`. */
function pageWith(text: string): string {
  const found = [...PAGES].find(([, markdown]) => markdown.includes(text));
  assert.ok(found, `no page has ${text}`);
  return found[1];
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
  return denoCommand(args, { cwd: dir, timeout: 120_000 });
}

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "zkrpc-readme-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const blocks = tsBlocks(PAGES);

Deno.test("every TypeScript example of the README and the docs is named and type-checks", async () => {
  assert.deepEqual(
    [...blocks.keys()].sort(),
    [
      "calculator.ts",
      "client.ts",
      "deadlines.ts",
      "discovery_test.ts",
      "health.ts",
      "interceptors.ts",
      "metadata.ts",
      "out_of_stock.ts",
      "routing.ts",
      "server.ts",
      "telemetry.ts",
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
    await using zooKeeper = await ZooKeeperSession.connect(zk.connectionString);
    let stopped = false;
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
      assert.equal((await zooKeeper.getChildren("/rpc/calculator")).length, 1);
      // SIGTERM, as systemd and Kubernetes send it: the server deregisters
      // before it exits. A server killed without deregistering would leave
      // its znode for the whole session timeout.
      const started = performance.now();
      server.kill("SIGTERM");
      const status = await server.status;
      stopped = true;
      assert.equal(status.code, 0, await serverErr);
      assert.deepEqual(await zooKeeper.getChildren("/rpc/calculator"), []);
      // clock-ok: a hang guard for a child process
      assert.ok(performance.now() - started < 10_000, "exited within 10 s");
    } finally {
      if (!stopped) server.kill("SIGKILL");
      await server.status;
    }
    assert.match(await serverOut, /^listening on 127\.0\.0\.1:\d+\n$/);
  });
});

/** The lines of the `nth` ```sh block after `heading` in its page. */
function shellBlock(heading: string, nth = 0): string[] {
  const page = pageWith(heading);
  const section = page.slice(page.indexOf(heading));
  const block = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)][nth]?.[1];
  assert.ok(block, `sh block ${nth} after ${heading}`);
  return block.trim().split("\n");
}

/** The flags exactly as testing.ts's module doc gives them. */
async function documentedTestingFlags(): Promise<string[]> {
  const doc = await Deno.readTextFile(new URL("testing.ts", ROOT));
  const line = /^ \* (deno test --allow.*)$/m.exec(doc)?.[1];
  assert.ok(line, "testing.ts's module doc gives the deno test command");
  return line.split(" ").slice(2);
}

/**
 * The `deno test` flags of the testing export, from the one place that
 * gives them (testing.ts's module doc), adapted as its table says when
 * `JAVA_HOME` or `ZOOKEEPER_HOME` is set.
 */
async function testingFlags(): Promise<string[]> {
  const javaHome = Deno.env.get("JAVA_HOME");
  const zooKeeperHome = Deno.env.get("ZOOKEEPER_HOME");
  return (await documentedTestingFlags()).map((flag) =>
    flag === "--allow-run=java" && javaHome
      ? `--allow-run=${javaHome}/bin/java`
      : flag.startsWith("--allow-read=") && zooKeeperHome
      ? `--allow-read=${zooKeeperHome}`
      : flag
  );
}

function run(
  command: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Deno.CommandOutput> {
  const [program, ...args] = command;
  return new Deno.Command(program === "deno" ? Deno.execPath() : program!, {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
}

function check(output: Deno.CommandOutput, what: string): string {
  const text = new TextDecoder().decode(output.stdout) +
    new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `${what}:\n${text}`);
  return text;
}

Deno.test("a fresh project linked to the checkout as the README says passes its test with the testing export's flags", async () => {
  const [link] = shellBlock("## Using the module from a checkout");
  assert.equal(link, "deno link ../zkrpc");
  await inTempDir(async (dir) => {
    await Deno.symlink(ROOT.pathname.replace(/\/$/, ""), `${dir}/zkrpc`);
    await Deno.mkdir(`${dir}/app`);
    const app = `${dir}/app`;
    check(await run(link!.split(" "), app), link!);
    await Deno.writeTextFile(
      `${app}/discovery_test.ts`,
      blocks.get("discovery_test.ts")!,
    );
    // No --config: the project's own deno.json, as `deno link` left it.
    const text = check(
      await run(
        ["deno", "test", ...await testingFlags(), "discovery_test.ts"],
        app,
      ),
      "deno test",
    );
    assert.match(text, /1 passed/);
  });
});

Deno.test("the README's commands install the CLI from the checkout, and it runs", async () => {
  const [cd, install, help] = shellBlock(
    "## Using the module from a checkout",
    1,
  );
  assert.equal(cd, "cd ../zkrpc");
  assert.match(install!, /^deno install -g .* --config deno\.json .*cli\.ts$/);
  assert.equal(help, "zkrpc --help");
  await inTempDir(async (dir) => {
    // Into a temporary root instead of ~/.deno: the command as written.
    check(
      await run(install!.split(" "), ROOT.pathname, {
        DENO_INSTALL_ROOT: dir,
      }),
      install!,
    );
    const zkrpc = `${dir}/bin/zkrpc`;
    const helpText = check(await run([zkrpc, "--help"], dir), help!);
    assert.match(helpText, /describe SERVICE/);
    // The ZooKeeper client runs: an unreachable ZooKeeper is exit 3.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closed = listener.addr.port;
    listener.close();
    const ls = await run([
      zkrpc,
      "ls",
      "--zookeeper",
      `127.0.0.1:${closed}`,
      "--timeout",
      "300ms",
    ], dir);
    assert.equal(ls.code, 3, new TextDecoder().decode(ls.stderr));
    assert.match(
      new TextDecoder().decode(ls.stderr),
      /ZooKeeper at 127\.0\.0\.1:\d+ is unreachable/,
    );
  });
});

Deno.test("the error-with-fields example (docs/errors.md) runs as written", async () => {
  await inTempDir(async (dir) => {
    await writeBlocks(dir, blocks);
    const output = await deno(
      ["run", "--config", CONFIG, "--allow-net=127.0.0.1", "out_of_stock.ts"],
      dir,
    ).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.equal(
      new TextDecoder().decode(output.stdout),
      "A-1 Cannot buy A-1: out of stock\n",
    );
  });
});

Deno.test("the docs' metadata, deadline, interceptor, telemetry, health and routing examples run as written", async () => {
  const expected: Record<string, string> = {
    "metadata.ts": "tenant acme\n",
    "deadlines.ts": "true\n",
    "interceptors.ts": '3 [ "add attempt 1" ]\n',
    "telemetry.ts": "pong false\n",
    "health.ts": "not-serving\nserving\n",
    "routing.ts": "true true\n",
  };
  await inTempDir(async (dir) => {
    await writeBlocks(dir, blocks);
    for (const [name, stdout] of Object.entries(expected)) {
      const output = await deno(
        ["run", "--config", CONFIG, "--allow-net=127.0.0.1", name],
        dir,
      ).output();
      assert.equal(
        output.code,
        0,
        `${name}: ${new TextDecoder().decode(output.stderr)}`,
      );
      assert.equal(new TextDecoder().decode(output.stdout), stdout, name);
    }
  });
});

Deno.test("the API tour (docs/api-tour.md) runs as written with the flags it gives", async () => {
  const flags = /`deno run (--allow[^`]*) tour\.ts`/.exec(
    PAGES.get("docs/api-tour.md")!,
  )?.[1];
  assert.ok(flags, "docs/api-tour.md gives the tour's command");
  assert.deepEqual(
    flags.split(" "),
    await documentedTestingFlags(),
    "the tour runs with the testing export's flags",
  );
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

Deno.test("the testing-export example (docs/testing-your-service.md) passes under deno test", async () => {
  const flags = await testingFlags();
  await inTempDir(async (dir) => {
    await writeBlocks(dir, blocks);
    const output = await deno(
      ["test", "--config", CONFIG, ...flags, "discovery_test.ts"],
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

Deno.test("the README's commands, and the demo flags in docs/permissions.md, match deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(CONFIG));
  assert.match(README, /^deno task demo /m);
  assert.match(README, /^deno task test /m);
  assert.ok(config.tasks.demo && config.tasks.test);
  const demoFlags = (config.tasks.demo as string)
    .replace(/^deno run /, "")
    .replace(/ examples\/demo\.ts$/, "");
  assert.ok(
    PAGES.get("docs/permissions.md")!.includes(`| \`${demoFlags}\` |`),
    `the permission table lists the demo task's flags: ${demoFlags}`,
  );
  assert.match(README, /^deno add jsr:@zkrpc\/zkrpc$/m);
  assert.match(README, /^## Performance$/m); // filled from `deno task bench`
  assert.equal(config.name, "@zkrpc/zkrpc");
});

Deno.test("a suite using the testing export passes with exactly the flags testing.ts gives, and fails without each of the first four", async () => {
  const flags = await testingFlags();
  assert.deepEqual(
    flags.slice(0, 4).map((flag) => flag.split("=")[0]),
    ["--allow-net", "--allow-run", "--allow-read", "--allow-write"],
  );
  const suite =
    new URL("tests/fixtures/testing_export_suite.ts", ROOT).pathname;
  const runSuite = (withFlags: string[]) =>
    deno(
      ["test", "--no-prompt", "--config", CONFIG, ...withFlags, suite],
      ROOT.pathname,
    ).output();
  const output = await runSuite(flags);
  const text = new TextDecoder().decode(output.stdout) +
    new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, text);
  assert.match(text, /1 passed/);
  // Each of the first four is needed, and its absence is named.
  const failures = [
    /Requires net access/,
    /Requires run access/,
    /no ZooKeeper jars found/,
    /Requires write access/,
  ];
  for (const [i, dropped] of flags.slice(0, 4).entries()) {
    const without = await runSuite(flags.filter((flag) => flag !== dropped));
    const text = new TextDecoder().decode(without.stdout) +
      new TextDecoder().decode(without.stderr);
    assert.notEqual(without.code, 0, `passes without ${dropped}`);
    assert.match(text, failures[i]!, `without ${dropped}`);
  }
});

Deno.test("the README is at most 20 KB and embeds a picture that exists", async () => {
  const size = new TextEncoder().encode(README).length;
  assert.ok(size <= 20 * 1024, `README.md is ${size} bytes`);
  const pictures = [...README.matchAll(/!\[[^\]]+\]\(([^)\s]+)\)/g)].map((m) =>
    m[1]!
  );
  assert.ok(pictures.length >= 1, "the README embeds a picture");
  for (const picture of pictures) {
    const info = await Deno.stat(new URL(picture, ROOT));
    assert.ok(info.isFile && info.size > 0, picture);
  }
});

/** GitHub's anchor of a heading: lower case, punctuation dropped. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a page's headings (outside code blocks). */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (heading) anchors.add(slug(heading[1]!));
  }
  return anchors;
}

Deno.test("every relative link of the README and the docs names a file and a heading that exist", () => {
  const broken: string[] = [];
  for (const [page, markdown] of PAGES) {
    const base = new URL(page, ROOT);
    const prose = markdown.replace(/^```[\s\S]*?^```$/gm, "");
    for (const match of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split("#") as [string, string | undefined];
      const file = path === "" ? base : new URL(path, base);
      let text: string | undefined;
      try {
        const info = Deno.statSync(file);
        if (info.isFile && file.pathname.endsWith(".md")) {
          text = Deno.readTextFileSync(file);
        }
      } catch {
        broken.push(`${page}: ${target} (no such file)`);
        continue;
      }
      if (anchor !== undefined && text !== undefined) {
        if (!anchorsOf(text).has(anchor)) {
          broken.push(`${page}: ${target} (no such heading)`);
        }
      }
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("the architecture picture names every balancer and the member path", async () => {
  const svg = await Deno.readTextFile(new URL("docs/architecture.svg", ROOT));
  assert.match(README, /!\[[^\]]+\]\(docs\/architecture\.svg\)/);
  const source = await Deno.readTextFile(
    new URL("src/channel/balancer.ts", ROOT),
  );
  const union = /export type BalancerName =([^;]+);/.exec(source)?.[1];
  assert.ok(union, "src/channel/balancer.ts declares BalancerName");
  const names = [...union.matchAll(/"([\w-]+)"/g)].map((m) => m[1]!);
  assert.ok(names.length >= 3, names.join());
  for (const name of names) {
    assert.match(
      svg,
      new RegExp(`[ ,>]${name}[,<]`),
      `the picture names ${name}`,
    );
  }
  assert.ok(svg.includes("/rpc/calculator/server-&lt;uuid&gt;-0000000001"));
});
