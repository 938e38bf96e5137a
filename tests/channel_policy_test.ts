/**
 * What the channel refuses to do silently: downgrade to plaintext when it is
 * configured for TLS, prompt for a permission it lacks, or blame "no
 * servers" when ZooKeeper is the problem.
 */
import assert from "node:assert/strict";
import { DistributedChannel } from "../mod.ts";
import { NoServersError } from "../src/errors.ts";
import { StaticMembership } from "../src/discovery/static.ts";
import { serve } from "../src/server/server.ts";
import { closedPort, startChildServer } from "./_core_helpers.ts";
import { within } from "./_wait.ts";
import { zooKeeperChannel } from "../zookeeper.ts";
import { runDeno } from "../src/testing/child_process.ts";

const HOST = "127.0.0.1";
const TLS_DIR = new URL("./fixtures/tls/", import.meta.url);

Deno.test("a channel with TLS options never calls a plaintext member, and warns once", async () => {
  const ca = await Deno.readTextFile(new URL("ca.crt", TLS_DIR));
  const secure = serve({ who: () => "tls" }, {
    hostname: HOST,
    port: 0,
    tls: {
      cert: await Deno.readTextFile(new URL("localhost.crt", TLS_DIR)),
      key: await Deno.readTextFile(new URL("localhost.key", TLS_DIR)),
    },
  });
  const plain = serve({ who: () => "plain" }, { hostname: HOST, port: 0 });
  const members = [
    { host: "localhost", port: secure.addr.port, tls: true },
    { host: HOST, port: plain.addr.port },
  ];
  try {
    const warnings: string[] = [];
    await using channel = new DistributedChannel({
      membership: new StaticMembership(members),
      tls: { caCerts: [ca] },
      balancer: "round-robin",
      onWarning: (message) => warnings.push(message),
    });
    const answers = new Set<unknown>();
    for (let i = 0; i < 10; i++) answers.add(await channel.call("who", []));
    assert.deepEqual([...answers], ["tls"]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /does not use TLS.*tls\.allowPlaintext/);
    await channel.close();

    // tls.allowPlaintext: a mixed fleet, with one warning for the plaintext
    // member. (`connection.caCerts` implies TLS as well.)
    const mixedWarnings: string[] = [];
    await using mixed = new DistributedChannel({
      membership: new StaticMembership(members),
      connection: { caCerts: [ca] },
      tls: { allowPlaintext: true },
      balancer: "round-robin",
      onWarning: (message) => mixedWarnings.push(message),
    });
    const mixedAnswers = new Set<unknown>();
    for (let i = 0; i < 10; i++) mixedAnswers.add(await mixed.call("who", []));
    assert.deepEqual([...mixedAnswers].sort(), ["plain", "tls"]);
    assert.equal(mixedWarnings.length, 1);
    assert.match(mixedWarnings[0]!, /plaintext/);
    await mixed.close();

    // Only plaintext members: the error says they were skipped, and why.
    await using strict = new DistributedChannel({
      membership: new StaticMembership([members[1]!]),
      tls: {},
      onWarning: () => {},
    });
    await assert.rejects(
      strict.call("who", []),
      (error: unknown) =>
        error instanceof NoServersError &&
        /skipped .*does not use TLS/.test(error.message),
    );
  } finally {
    await secure.close();
    await plain.close();
  }
});

Deno.test("a member outside the process's --allow-net is skipped with one warning, never a prompt", async () => {
  const allowed = await startChildServer();
  const forbidden = await startChildServer();
  try {
    const output = await runDeno([
      "run",
      `--allow-net=${HOST}:${allowed.port}`,
      new URL("./fixtures/narrow_net_client.ts", import.meta.url).pathname,
      String(allowed.port),
      String(forbidden.port),
    ], { timeout: 30_000 });
    assert.equal(output.code, 0, output.stderr);
    const result = JSON.parse(output.stdout) as {
      results: number[];
      warnings: string[];
      states: string[];
    };
    assert.deepEqual(result.results, [0, 1, 2, 3, 4, 5]);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0]!, /no --allow-net permission/);
    assert.deepEqual(result.states, [`${HOST}:${allowed.port}`]);
  } finally {
    await allowed.kill();
    await forbidden.kill();
  }
});

Deno.test("with ZooKeeper down a call and ready() fail fast with an error that names ZooKeeper and how long", async () => {
  await using channel = zooKeeperChannel({
    zookeeper: `${HOST}:${closedPort()}`,
    service: "calculator",
    timeout: 30_000,
    discoveryTimeout: 1000,
    session: { connectTimeout: 500 },
  });
  // discoveryTimeout (1 s) ends it, not the call's 30 s deadline.
  await assert.rejects(
    within(channel.call("divide", [1, 2]), 10_000, "the discovery timeout"),
    (error: unknown) =>
      error instanceof NoServersError &&
      /Cannot call method "divide": no servers for service "calculator": ZooKeeper at 127\.0\.0\.1:\d+ unreachable \(discovery connecting since .*, \d+\.\d s ago(; last attempt: .+)?\)/
        .test(error.message),
  );
  await assert.rejects(
    within(channel.ready(), 10_000, "ready() to give up"),
    (error: unknown) =>
      error instanceof NoServersError &&
      /Cannot find servers: .*ZooKeeper at .* unreachable/.test(error.message),
  );
  // An explicit timeout is waited out, and the message says for how long.
  await assert.rejects(
    channel.ready({ timeout: 300 }),
    (error: unknown) =>
      error instanceof NoServersError &&
      /ZooKeeper at .* unreachable \(discovery connecting since .*, \d+\.\d s ago/
        .test(error.message),
  );
});
