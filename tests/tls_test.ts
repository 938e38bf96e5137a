/**
 * TLS mismatches name TLS, in both directions and for an untrusted
 * certificate, on a bare connection and through `zkrpc`; `zkrpc --ca FILE`
 * (or `DENO_CERT`) calls a service whose certificate a private CA signed;
 * `--cert`/`--key` are refused as not supported yet. Real servers, a real
 * ZooKeeper, the CLI as a subprocess.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startZooKeeper } from "../testing.ts";
import { Connection, ConnectionError, serve } from "../mod.ts";
import { zooKeeperRegistrar, ZooKeeperSession } from "../zookeeper.ts";
import { zkrpc } from "./_cli_helpers.ts";
import { within } from "./_wait.ts";

const FIXTURES = new URL("./fixtures/tls/", import.meta.url);
const CA_FILE = "tests/fixtures/tls/ca.crt"; // relative to the CLI's cwd
const tls = {
  cert: await Deno.readTextFile(new URL("localhost.crt", FIXTURES)),
  key: await Deno.readTextFile(new URL("localhost.key", FIXTURES)),
};
const ca = await Deno.readTextFile(new URL("ca.crt", FIXTURES));
const handlers = { add: (a: number, b: number) => a + b };
const quiet = { hostname: "127.0.0.1", onError: () => {} };

/** Connects as given and returns the error it fails with. */
async function connectError(
  address: Parameters<typeof Connection.connect>[0],
  options: Parameters<typeof Connection.connect>[1] = {},
): Promise<Error> {
  try {
    const conn = await Connection.connect(address, {
      connectTimeout: 10_000,
      ...options,
    });
    await conn[Symbol.asyncDispose]();
  } catch (error) {
    return error as Error;
  }
  throw new assert.AssertionError({ message: "the connection opened" });
}

Deno.test("a plain client to a TLS server fails with a ConnectionError that names TLS", async () => {
  await using server = serve(handlers, { ...quiet, tls });
  const error = await connectError({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  assert.ok(error instanceof ConnectionError, String(error));
  assert.equal(error.written, false, "nothing ran: another server may retry");
  assert.match(
    error.message,
    /^Cannot connect to 127\.0\.0\.1:\d+: the server answered with TLS: .*connect with tls: true/,
  );
});

Deno.test("a TLS client to a plain server fails with a ConnectionError that names TLS", async () => {
  await using server = serve(handlers, quiet);
  const error = await connectError({
    hostname: "127.0.0.1",
    port: server.addr.port,
    tls: true,
  }, { caCerts: [ca] });
  assert.ok(error instanceof ConnectionError, String(error));
  assert.equal(error.written, false);
  assert.match(
    error.message,
    /TLS handshake failed: the server does not speak TLS \(it answered in plain TCP\)/,
  );
});

Deno.test("a TLS client that does not trust the server's certificate is told to pass its CA", async () => {
  await using server = serve(handlers, { ...quiet, tls });
  const error = await connectError({
    hostname: "localhost",
    port: server.addr.port,
    tls: true,
  });
  assert.ok(error instanceof ConnectionError, String(error));
  assert.match(
    error.message,
    /TLS handshake failed: the server's certificate is not trusted: pass the CA that signed it in caCerts .*UnknownIssuer/,
  );
  // With the CA the same address works: the error was about trust.
  await using conn = await Connection.connect({
    hostname: "localhost",
    port: server.addr.port,
    tls: true,
  }, { caCerts: [ca], connectTimeout: 10_000 });
  assert.equal(await conn.call("add", [1, 2], { timeout: 10_000 }), 3);
});

Deno.test("zkrpc --ca FILE or DENO_CERT calls a TLS service of a private CA; without either the hint names --ca", async () => {
  await using zk = await startZooKeeper();
  const zookeeper = zk.connectionString;
  const registrar = zooKeeperRegistrar({ zookeeper, service: "secure" });
  await using _server = serve(handlers, { ...quiet, tls, registrar });
  await within(registrar.registered(), 15_000, "the server to register");
  const permissions = ["--allow-net=127.0.0.1", "--allow-env", "--allow-read"];
  const call = ["call", "secure", "add", "1", "2", "--zookeeper", zookeeper];

  const untrusted = await zkrpc([...call, "--timeout", "3s"], { permissions });
  assert.equal(untrusted.stdout, "");
  assert.match(untrusted.stderr, /TLS handshake failed: .*not trusted/);
  assert.match(
    untrusted.stderr,
    /\nThe servers use TLS with a certificate this machine does not trust: pass the CA that signed it with --ca FILE \(or set DENO_CERT=FILE\)\.\n/,
  );
  assert.doesNotMatch(untrusted.stderr, /crashed server/, "not blamed");
  for (const command of [["health", "secure"], ["ls", "secure", "--probe"]]) {
    const run = await zkrpc([...command, "--zookeeper", zookeeper], {
      permissions,
    });
    assert.notEqual(run.code, 0, `${command[0]} fails without the CA`);
    assert.match(run.stdout, /TLS handshake failed: .*not trusted/);
    assert.match(run.stderr, /pass the CA that signed it with --ca FILE/);
  }

  const withCa = await zkrpc([...call, "--ca", CA_FILE], { permissions });
  assert.equal(withCa.code, 0, withCa.stderr);
  assert.equal(JSON.parse(withCa.stdout), 3);

  const withEnv = await zkrpc(call, {
    permissions,
    env: { DENO_CERT: CA_FILE },
  });
  assert.equal(withEnv.code, 0, withEnv.stderr);
  assert.equal(JSON.parse(withEnv.stdout), 3);

  for (const command of [["describe", "secure"], ["health", "secure"]]) {
    const run = await zkrpc([
      ...command,
      "--ca",
      CA_FILE,
      "--zookeeper",
      zookeeper,
    ], { permissions });
    assert.equal(run.code, 0, `${command[0]}: ${run.stderr}`);
  }
  const probe = await zkrpc([
    "ls",
    "secure",
    "--probe",
    "--ca",
    CA_FILE,
    "--zookeeper",
    zookeeper,
  ], { permissions });
  assert.equal(probe.code, 0, probe.stderr);
  assert.match(probe.stdout, /tls yes .* probe ok/);
});

Deno.test("zkrpc names the TLS mismatch when a member's registered tls flag or host name is wrong", async () => {
  await using zk = await startZooKeeper();
  await using tlsServer = serve(handlers, { ...quiet, tls });
  await using plainServer = serve(handlers, quiet);
  await using otherName = serve(handlers, {
    ...quiet,
    hostname: "127.0.0.2",
    tls,
  });
  await using session = await ZooKeeperSession.connect(zk.connectionString);
  const register = async (
    service: string,
    port: number,
    tls: boolean,
    host = "127.0.0.1",
  ) => {
    await session.mkdirp(`/rpc/${service}`);
    await session.create(
      `/rpc/${service}/member-1`,
      JSON.stringify({ host, port, tls }),
      { mode: "ephemeral" },
    );
  };
  await register("says-plain", tlsServer.addr.port, false);
  await register("says-tls", plainServer.addr.port, true);
  await register("other-name", otherName.addr.port, true, "127.0.0.2");
  const run = (service: string) =>
    zkrpc([
      "call",
      service,
      "add",
      "1",
      "2",
      "--ca",
      CA_FILE,
      "--timeout",
      "3s",
      "--zookeeper",
      zk.connectionString,
    ], {
      permissions: ["--allow-net=127.0.0.1", "--allow-env", "--allow-read"],
    });
  const saysTls = await run("says-tls");
  assert.notEqual(saysTls.code, 0);
  assert.match(
    saysTls.stderr,
    /TLS handshake failed: the server does not speak TLS/,
  );
  assert.match(
    saysTls.stderr,
    /registered with tls: true but answer in plain TCP/,
  );
  // --ca asks for TLS: a plaintext member is refused unless allowed; without
  // --ca the plain client meets the TLS server.
  const saysPlain = await zkrpc([
    "call",
    "says-plain",
    "add",
    "1",
    "2",
    "--timeout",
    "3s",
    "--zookeeper",
    zk.connectionString,
  ]);
  assert.notEqual(saysPlain.code, 0);
  assert.match(saysPlain.stderr, /the server answered with TLS/);
  assert.match(
    saysPlain.stderr,
    /serve TLS but are registered without tls: true/,
  );
  assert.doesNotMatch(saysPlain.stderr, /crashed server/);
  const wrongName = await zkrpc([
    "call",
    "other-name",
    "add",
    "1",
    "2",
    "--ca",
    CA_FILE,
    "--timeout",
    "3s",
    "--zookeeper",
    zk.connectionString,
  ], {
    permissions: [
      "--allow-net=127.0.0.1,127.0.0.2",
      "--allow-env",
      "--allow-read",
    ],
  });
  assert.notEqual(wrongName.code, 0);
  assert.match(wrongName.stderr, /certificate is not valid for "127\.0\.0\.2"/);
  assert.match(wrongName.stderr, /does not fit their registered host name/);
});

Deno.test("zkrpc --ca with a missing, unreadable or non-PEM file and --cert/--key exit 2 and say why", async () => {
  const cases: [string[], string[] | undefined, RegExp][] = [
    [
      ["--ca", "no/such.pem"],
      undefined,
      /Cannot read --ca "no\/such\.pem": no such file/,
    ],
    [
      ["--ca", CA_FILE],
      ["--allow-env"],
      /no read permission\nRun with --allow-read=tests\/fixtures\/tls\/ca\.crt\./,
    ],
    [["--ca", "deno.json"], undefined, /not a PEM certificate/],
    [
      ["--cert", "c.pem", "--key", "k.pem"],
      undefined,
      /Cannot use --cert or --key: client certificates are not supported yet/,
    ],
    [["--cert", "c.pem"], undefined, /not supported yet/],
  ];
  for (const [flags, permissions, message] of cases) {
    const run = await zkrpc(["ls", ...flags], {
      permissions: permissions ?? ["--allow-env", "--allow-read"],
    });
    assert.equal(run.code, 2, `${flags.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
});

Deno.test("a TLS client to a server whose certificate names other hosts is told the name does not match", async () => {
  await using server = serve(handlers, {
    ...quiet,
    hostname: "127.0.0.2",
    tls,
  });
  const error = await connectError({
    hostname: "127.0.0.2", // the certificate lists localhost and 127.0.0.1
    port: server.addr.port,
    tls: true,
  }, { caCerts: [ca] });
  assert.ok(error instanceof ConnectionError, String(error));
  assert.match(
    error.message,
    /TLS handshake failed: the server's certificate is not valid for "127\.0\.0\.2"/,
  );
});
