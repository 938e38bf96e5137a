/**
 * Readiness is one truth: `server.ready` resolves only when the member is
 * visible in ZooKeeper (waiting while ZooKeeper is down), rejects when the
 * server closed first, and `finished` rejects when the server closed itself
 * because registration failed, so that `await server.finished` exits
 * non-zero.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type RpcServer, serve } from "../src/server/server.ts";
import { zooKeeperRegistrar } from "../src/zookeeper/registrar.ts";
import { ZooKeeperSession } from "../src/zookeeper/session.ts";
import { parseMember } from "../src/discovery/member.ts";
import { ServerClosingError } from "../src/errors.ts";
import { startZooKeeper } from "../testing.ts";
import { runDeno } from "../src/testing/child_process.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";
const SESSION = { sessionTimeout: 4000, connectTimeout: 5000 };

Deno.test("right after await server.ready the member is listed by a fresh ZooKeeper client (5 of 5)", async () => {
  await using zk = await startZooKeeper();
  const servers: RpcServer[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      servers.push(serve({ who: () => i }, {
        hostname: HOST,
        registrar: zooKeeperRegistrar({
          zookeeper: zk.connectionString,
          service: "inventory",
          session: SESSION,
          warnAfter: 0,
        }),
      }));
    }
    // Each server is checked by a client that never saw it register.
    for (const server of servers) {
      await within(server.ready, 30_000, "the server to be ready");
      await using session = await within(
        ZooKeeperSession.connect(zk.connectionString),
        10_000,
        "a fresh ZooKeeper session",
      );
      const ports: number[] = [];
      for (const name of await session.getChildren("/rpc/inventory")) {
        const { data } = await session.getData(`/rpc/inventory/${name}`);
        ports.push(parseMember(data).port);
      }
      assert.ok(
        ports.includes(server.addr.port),
        `${server.addr.port} listed in ${ports}`,
      );
    }
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
});

Deno.test("with ZooKeeper stopped, ready does not resolve until ZooKeeper is back", async () => {
  await using zk = await startZooKeeper();
  await zk.kill(); // an outage: restart() keeps the data and the port
  const notices: string[] = [];
  const warned = Promise.withResolvers<void>();
  let settled = "pending";
  await using server = serve({ ok: () => true }, {
    hostname: HOST,
    registrar: zooKeeperRegistrar({
      zookeeper: zk.connectionString,
      service: "inventory",
      session: SESSION,
      warnAfter: 300,
      log: (message) => {
        notices.push(message);
        if (/not registered/.test(message)) warned.resolve();
      },
    }),
  });
  server.ready.then(() => settled = "resolved", () => settled = "rejected");
  // The registrar's own notice proves it tried and is still waiting.
  await within(warned.promise, 15_000, "the not-registered notice");
  assert.equal(settled, "pending", "ready must wait while ZooKeeper is down");
  await zk.restart();
  await within(server.ready, 30_000, "ready once ZooKeeper is back");
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  const children = await session.getChildren("/rpc/inventory");
  assert.equal(children.length, 1, "visible when ready resolved");
  assert.match(notices.join("\n"), /registered under "\/rpc\/inventory"/);
});

Deno.test("ready rejects with ServerClosingError when close() comes before registration", async () => {
  const server = serve({ ok: () => true }, {
    hostname: HOST,
    registrar: {
      register: () =>
        Promise.resolve({
          registered: () => new Promise(() => {}), // never visible
          deregister: () => Promise.resolve(),
        }),
    },
  });
  await within(server.close(), 5000, "close()");
  await assert.rejects(server.ready, ServerClosingError);
  await within(server.finished, 5000, "finished resolves: closed on purpose");
});

Deno.test("a server process whose registration fails for good exits non-zero through await server.finished", async () => {
  // The README's server bound to 0.0.0.0 without --allow-sys: it cannot
  // find the address to advertise, so registration fails for good.
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/server.ts`;
    const mod = new URL("../mod.ts", import.meta.url).href;
    const zookeeper = new URL("../zookeeper.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { serve } from ${JSON.stringify(mod)};
import { zooKeeperRegistrar } from ${JSON.stringify(zookeeper)};
const server = serve({ ok: () => true }, {
  hostname: "0.0.0.0",
  registrar: zooKeeperRegistrar({ zookeeper: "127.0.0.1:1", service: "x" }),
});
await server.finished;
console.log("unreachable: finished resolved");
`,
    );
    const { code, stdout, stderr } = await runDeno([
      "run",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      "--allow-net=0.0.0.0,127.0.0.1",
      "--allow-read",
      script,
    ]);
    assert.notEqual(code, 0, `exit code; stderr: ${stderr}`);
    assert.match(stderr, /--allow-sys=networkInterfaces/);
    assert.doesNotMatch(stdout, /unreachable/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
