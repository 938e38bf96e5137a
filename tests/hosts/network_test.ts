/**
 * The simulated-hosts harness itself: reachability, silent partitions, and
 * that it leaves nothing behind (namespaces, links, rules, processes), also
 * when the test using it fails or its process is killed.
 *
 * Run with `deno task test:hosts` (root, `ip`, `iptables`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { hostsSkipReason, SimulatedNetwork } from "./_network.ts";
import { startZooKeeper, type ZooKeeperServer } from "../../testing.ts";
import { waitFor } from "../_discovery_helpers.ts";
import { denoExecutable, lines } from "../../src/testing/child_process.ts";

const skip = hostsSkipReason();
if (skip !== undefined) console.warn(`tests/hosts: ignored: ${skip}`);

/** The root namespace's firewall, which the harness must never change. */
function rootRules(): string {
  const { stdout } = new Deno.Command("iptables", { args: ["-w", "-S"] })
    .outputSync();
  return new TextDecoder().decode(stdout);
}

/** Tries a TCP connect from host `from` to `address:port` within `ms`. */
async function canConnect(
  net: SimulatedNetwork,
  from: string,
  address: string,
  port: number,
  ms = 1000,
): Promise<boolean> {
  const script =
    `const c = await Deno.connect({hostname: "${address}", port: ${port}}); c.close();`;
  const child = net.spawn(from, [
    Deno.execPath(),
    "eval",
    `const t = setTimeout(() => Deno.exit(3), ${ms}); ${script} clearTimeout(t);`,
  ], { stdout: "null", stderr: "null" });
  return (await child.status).success;
}

/** Starts a TCP listener on `host:port` inside a host; resolves when it listens. */
async function listen(
  net: SimulatedNetwork,
  name: string,
  port: number,
): Promise<Deno.ChildProcess> {
  const child = net.spawn(name, [
    Deno.execPath(),
    "eval",
    `const l = Deno.listen({hostname: "0.0.0.0", port: ${port}}); console.log("up"); for await (const c of l) c.close();`,
  ], { stderr: "null" });
  for await (const line of lines(child.stdout)) {
    if (line === "up") break;
  }
  return child;
}

Deno.test({
  name:
    "Simulated hosts reach each other, and a cut drops packets silently until healed",
  ignore: skip !== undefined,
  async fn() {
    const before = rootRules();
    await using net = await SimulatedNetwork.create(["a", "b", "c"]);
    for (const host of net.hosts) {
      assert.match(host.address, /^198\.18\.0\.\d+$/);
    }
    const server = await listen(net, "b", 7000);
    const b = net.host("b").address;
    assert.equal(await canConnect(net, "a", b, 7000), true);
    await net.cut("a", "b");
    // A dropped SYN: the connect hangs (no RST), so the bounded try fails.
    assert.equal(await canConnect(net, "a", b, 7000), false);
    assert.equal(await canConnect(net, "c", b, 7000), true);
    assert.deepEqual(await net.rules("b"), [
      `-A INPUT -s ${net.host("a").address}/32 -j DROP`,
    ]);
    await net.heal();
    assert.deepEqual(await net.rules("b"), []);
    assert.equal(await canConnect(net, "a", b, 7000), true);
    // One way: only b drops what a sends.
    await net.cut("a", "b", { oneWay: true });
    assert.deepEqual(await net.rules("a"), []);
    assert.deepEqual(await net.rules("b"), [
      `-A INPUT -s ${net.host("a").address}/32 -j DROP`,
    ]);
    assert.equal(await canConnect(net, "a", b, 7000), false);
    await net.heal();
    await net.isolate("b");
    assert.equal(await canConnect(net, "c", b, 7000), false);
    await net.heal();
    server.kill("SIGKILL");
    await server.status;
    await server.stdout.cancel().catch(() => {});
    assert.equal(rootRules(), before);
  },
});

Deno.test({
  name:
    "The harness leaves no namespace, link, rule or process behind, also when the scenario fails",
  ignore: skip !== undefined,
  async fn() {
    const before = rootRules();
    let net: SimulatedNetwork | undefined;
    let zk: ZooKeeperServer | undefined;
    const pids: number[] = [];
    await assert.rejects(async () => {
      await using created = await SimulatedNetwork.create(["a", "b"]);
      net = created;
      const sleeper = created.spawn("a", ["sleep", "600"], {
        stdout: "null",
        stderr: "null",
      });
      pids.push(sleeper.pid);
      // A ZooKeeper JVM inside host b, bound to b's address, that the
      // failing scenario never stops.
      const server = await startZooKeeper({
        host: created.host("b").address,
        port: 2181,
        commandPrefix: created.prefixFor("b"),
      });
      zk = server;
      assert.equal(
        server.connectionString,
        `${created.host("b").address}:2181`,
      );
      created.track(server.pid!);
      pids.push(server.pid!);
      await created.cut("a", "b");
      assert.equal(created.resources().namespaces.length, 3);
      assert.equal(created.resources().links.length, 1);
      assert.equal(created.resources().processes.length, 2);
      throw new Error("scenario failed");
    }, /scenario failed/);
    assert.ok(net !== undefined && pids.length === 2);
    assert.deepEqual(net.resources(), {
      namespaces: [],
      links: [],
      processes: [],
    });
    // The launcher learns of the kill when its child's status settles.
    await waitFor(() => !zk!.running, "the launcher to see the JVM gone", 5000);
    await zk!.stop(); // removes its temporary directory
    assert.equal(rootRules(), before);
  },
});

Deno.test({
  name: "A run killed with SIGKILL is swept by the next run",
  ignore: skip !== undefined,
  async fn() {
    const child = new Deno.Command(denoExecutable(), {
      args: [
        "eval",
        `import { SimulatedNetwork } from "${
          new URL("./_network.ts", import.meta.url).href
        }";
         const net = await SimulatedNetwork.create(["a"]);
         const sleeper = net.spawn("a", ["sleep", "600"], { stdout: "null", stderr: "null" });
         console.log(net.prefix, sleeper.pid);
         // wait-ok: source of a child program that must hang (killed by the test)
         await new Promise(() => {});`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let prefix = "";
    let pid = "";
    for await (const line of lines(child.stdout)) {
      [prefix = "", pid = ""] = line.split(" ");
      break;
    }
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    assert.match(prefix, /^zkh\d+x0$/);
    const leftover = () =>
      new TextDecoder().decode(
        new Deno.Command("ip", { args: ["netns", "list"] }).outputSync().stdout,
      ).includes(prefix);
    const running = () =>
      new Deno.Command("ps", { args: ["-p", pid] }).outputSync().success;
    assert.equal(leftover(), true, "the killed run left its namespaces");
    assert.equal(running(), true, "and its process in a host");
    await using _next = await SimulatedNetwork.create(["a"]);
    assert.equal(leftover(), false, "the next run swept the namespaces");
    await waitFor(() => !running(), "the swept process to end", 5000);
  },
});
