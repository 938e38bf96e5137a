/**
 * `WireClient` against a scripted ZooKeeper on 127.0.0.1
 * (`_scripted_zookeeper.ts`): the handshake, requests and replies in order,
 * the chroot, one-shot watches and their re-registration, the session's
 * first hearing of every event, errors by name, bad frames and replies out
 * of order (the connection is dropped and the session resumed), expiry,
 * rejected credentials, pings and the read timeout, the server rotation,
 * `endSession()` and `release()`. Over connections in memory
 * (`_memory_connector.ts`): a connect, a connect failure, a write or a read
 * that completes after the attempt that replaced it. The same client against
 * a real ZooKeeper: the `tests/zookeeper_*_test.ts` system tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  clients,
  type ClientWatchEvent,
  CM_AUTH_FAILED,
  CM_CLOSED,
  CM_CONNECTED,
  CM_CONNECTING,
  CM_DISCONNECTED,
  CM_SESSION_EXPIRED,
  connectError,
  OP,
  WireClient,
  wireError,
} from "../../src/zookeeper/_wire_client.ts";
import {
  JuteError,
  JuteReader,
  JuteWriter,
  MAX_FRAME_BYTES,
} from "../../src/zookeeper/_jute.ts";
import {
  type ScriptedConnection,
  ScriptedZooKeeper,
} from "./_scripted_zookeeper.ts";
import { MemoryConnector } from "./_memory_connector.ts";
import { waitFor, within } from "../_wait.ts";

const STAT = (w: JuteWriter) =>
  w.long(1n).long(2n).long(3n).long(4n).int(5).int(6).int(7).long(0n).int(8)
    .int(9).long(10n);

/** A client on `server`, connected, and the server's side of it. */
async function connected(
  server: ScriptedZooKeeper,
  options: { chroot?: string; timeout?: number } = {},
): Promise<{
  client: WireClient;
  side: ScriptedConnection;
  states: number[];
}> {
  const client = new WireClient(
    server.address + (options.chroot ?? ""),
    options.timeout ?? 30_000,
  );
  const states: number[] = [];
  client.onState((state) => states.push(state));
  client.connect();
  const side = await within(server.accepted(), 2000, "a connection");
  await side.handshake();
  await waitFor(() => client.state === CM_CONNECTED, "connected");
  return { client, side, states };
}

/**
 * Calls `op` with a callback and returns its outcome as a promise, which
 * fails if the callback has not come within 5 s (every test's answer comes
 * in milliseconds).
 */
function call(
  start: (callback: (error: unknown, ...results: unknown[]) => void) => void,
): Promise<{ error: unknown; results: unknown[] }> {
  return within(
    new Promise((resolve) =>
      start((error, ...results) => resolve({ error, results }))
    ),
    5000,
    "the request's callback",
  );
}

Deno.test("wire client: the handshake asks for the session timeout with a new session, and takes the server's id, password and timeout", async () => {
  await using server = new ScriptedZooKeeper();
  const client = new WireClient(server.address, 12_000);
  const states: number[] = [];
  client.onState((state) => states.push(state));
  client.connect();
  const side = await server.accepted();
  const request = await side.handshake({
    timeout: 9000,
    sessionId: 0x10n,
    password: new Uint8Array(16).fill(3),
  });
  assert.deepEqual(request, {
    protocolVersion: 0,
    lastZxid: 0n,
    timeout: 12_000,
    sessionId: 0n,
    password: new Uint8Array(16),
    readOnly: false,
  });
  await waitFor(() => client.isConnected(), "connected");
  assert.deepEqual(states, [CM_CONNECTING, CM_CONNECTED]);
  assert.equal(client.sessionId, "0000000000000010");
  assert.deepEqual(client.sessionPassword, new Uint8Array(16).fill(3));
  client.sessionPassword.fill(0); // a copy: the session's stays
  assert.deepEqual(client.sessionPassword, new Uint8Array(16).fill(3));
  assert.equal(client.sessionTimeout, 9000);
  await client.release();
});

Deno.test("wire client: requests carry their opcode, path and fields, replies come back decoded, in order, with the chroot removed", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server, { chroot: "/app" });
  const created = call((cb) =>
    client.create(
      "/a",
      new Uint8Array([7]),
      [{ permission: 31, id: { scheme: "world", id: "anyone" } }],
      3,
      cb,
    )
  );
  const read = call((cb) => client.getData("/", undefined, cb));
  const create = await side.request();
  assert.equal(create.op, OP.create);
  assert.equal(create.body.text(), "/app/a");
  assert.deepEqual(create.body.buffer(), new Uint8Array([7]));
  assert.deepEqual(create.body.acl(), [
    { permission: 31, id: { scheme: "world", id: "anyone" } },
  ]);
  assert.equal(create.body.int(), 3);
  const getData = await side.request();
  assert.equal(getData.op, OP.getData);
  assert.equal(getData.body.text(), "/app");
  assert.equal(getData.body.bool(), false);
  assert.equal(getData.xid, create.xid + 1);
  await side.reply(create.xid, 0, (w) => w.string("/app/a0000000001"));
  await side.reply(getData.xid, 0, (w) => STAT(w.buffer(null)));
  assert.deepEqual((await created).results, ["/a0000000001"]);
  const { error, results } = await read;
  assert.equal(error, null);
  assert.equal(results[0], null);
  assert.equal((results[1] as { version: number }).version, 5);
  assert.equal((results[1] as { pzxid: bigint }).pzxid, 10n);
  await client.release();
});

Deno.test("wire client: an error reply calls back with the error named after its code, an unknown code as ERROR_<code>; exists on no node is null", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  const removed = call((cb) => client.remove("/a", 4, cb));
  const odd = call((cb) => client.setData("/b", new Uint8Array(), -1, cb));
  const missing = call((cb) => client.exists("/c", undefined, cb));
  const remove = await side.request();
  assert.deepEqual([remove.op, remove.body.text(), remove.body.int()], [
    OP.delete,
    "/a",
    4,
  ]);
  await side.reply(remove.xid, -103);
  await side.reply((await side.request()).xid, -999);
  await side.reply((await side.request()).xid, -101);
  const bad = (await removed).error as Error & { code: number };
  assert.equal(bad.name, "BAD_VERSION");
  assert.equal(bad.code, -103);
  assert.match(bad.message, /BAD_VERSION \(-103\) at \/a/);
  assert.equal(((await odd).error as Error).name, "ERROR_-999");
  assert.deepEqual(await missing, { error: null, results: [null] });
  assert.equal(wireError(-4).name, "CONNECTION_LOSS");
  await client.release();
});

Deno.test("wire client: every watch event reaches the session first; a one-shot watch fires once for the types it covers, never for others", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server, { chroot: "/app" });
  const heard: ClientWatchEvent[] = [];
  client.onWatchEvent((event) => heard.push(event));
  const data: ClientWatchEvent[] = [];
  const children: ClientWatchEvent[] = [];
  const exists: ClientWatchEvent[] = [];
  const read = call((cb) =>
    client.getData("/n", (event) => data.push(event), cb)
  );
  const list = call((cb) =>
    client.getChildren("/n", (event) => children.push(event), cb)
  );
  const absent = call((cb) =>
    client.exists("/m", (event) => exists.push(event), cb)
  );
  const getData = await side.request();
  assert.equal(getData.body.text(), "/app/n");
  assert.equal(getData.body.bool(), true);
  await side.reply(getData.xid, 0, (w) => STAT(w.buffer(new Uint8Array())));
  const getChildren = await side.request();
  assert.equal(getChildren.op, OP.getChildren2);
  await side.reply(getChildren.xid, 0, (w) => STAT(w.strings(["x", "y"])));
  await side.reply((await side.request()).xid, -101);
  await read;
  assert.deepEqual((await list).results[0], ["x", "y"]);
  assert.deepEqual(await absent, { error: null, results: [null] });
  await side.event(7, "/app/n"); // a persistent watch removed: session only
  await side.event(4, "/app/n"); // children changed
  await side.event(3, "/app/n"); // data changed
  await side.event(3, "/app/n"); // again: the one-shot watch is spent
  await side.event(1, "/app/m"); // created: the exists watch
  await waitFor(() => heard.length === 5, "five events");
  assert.deepEqual(heard.map((e) => [e.type, e.path]), [
    [7, "/n"],
    [4, "/n"],
    [3, "/n"],
    [3, "/n"],
    [1, "/m"],
  ]);
  assert.deepEqual(children.map((e) => e.type), [4]);
  assert.deepEqual(data.map((e) => e.type), [3]);
  assert.deepEqual(exists.map((e) => [e.type, e.path]), [[1, "/m"]]);
  await client.release();
});

Deno.test("wire client: addWatch and removeWatches send their opcode, path and mode number", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  const added = call((cb) =>
    client.addWatch("/rpc", "persistent_recursive", cb)
  );
  const add = await side.request();
  assert.deepEqual([add.op, add.body.text(), add.body.int()], [
    OP.addWatch,
    "/rpc",
    1,
  ]);
  await side.reply(add.xid);
  assert.deepEqual(await added, { error: null, results: [] });
  const removed = call((cb) => client.removeWatches("/rpc", "persistent", cb));
  const remove = await side.request();
  assert.deepEqual([remove.op, remove.body.text(), remove.body.int()], [
    OP.removeWatches,
    "/rpc",
    3,
  ]);
  await side.reply(remove.xid, -121);
  assert.equal(((await removed).error as Error).name, "NO_WATCHER");
  await client.release();
});

for (
  const [name, bad] of [
    [
      "a frame longer than any ZooKeeper sends",
      // Just over the limit, and the server then waits: only the limit
      // ends the connection.
      (side: ScriptedConnection) =>
        side.send(new JuteWriter().int(MAX_FRAME_BYTES + 1).frame().slice(4)),
    ],
    [
      "a negative frame length",
      (side: ScriptedConnection) =>
        side.send(new Uint8Array([0xff, 0xff, 0xff, 0xfe])),
    ],
    [
      "a reply out of order",
      (side: ScriptedConnection, xid: number) => side.reply(xid + 1),
    ],
    ["a reply shorter than its record", (
      side: ScriptedConnection,
      xid: number,
    ) => side.send(new JuteWriter().int(xid).long(1n).int(0).int(50).frame())],
    [
      "an event whose path is not UTF-8",
      (side: ScriptedConnection) =>
        side.send(
          new JuteWriter().int(-1).long(-1n).int(0).int(3).int(3)
            .buffer(new Uint8Array([0x2f, 0xff])).frame(),
        ),
    ],
  ] as const
) {
  Deno.test(`wire client: ${name} drops the connection: what was sent fails with CONNECTION_LOSS, and the session is resumed on a new one with its watches and credentials`, async () => {
    await using server = new ScriptedZooKeeper();
    const { client, side, states } = await connected(server);
    client.addAuthInfo("digest", new TextEncoder().encode("u:p"));
    const watched = call((cb) => client.exists("/w", () => {}, cb));
    await side.reply((await side.request()).xid, 0, STAT, 42n);
    await watched;
    const lost = call((cb) => client.getData("/d", undefined, cb));
    const { xid } = await side.request();
    await bad(side, xid);
    // At once, not by the read timeout (20 s here).
    const outcome = await within(lost, 5000, "the request's failure");
    assert.equal((outcome.error as Error).name, "CONNECTION_LOSS");
    const next = await within(server.accepted(), 2000, "a new connection");
    const resumed = await next.handshake();
    assert.equal(resumed.sessionId, 0x0123456789abcdefn);
    assert.deepEqual(resumed.password, new Uint8Array(16).fill(9));
    assert.equal(resumed.lastZxid, 42n);
    const auth = await next.request();
    assert.deepEqual([auth.xid, auth.op, auth.body.int(), auth.body.text()], [
      -4,
      OP.auth,
      0,
      "digest",
    ]);
    assert.equal(new TextDecoder().decode(auth.body.buffer()!), "u:p");
    const watches = await next.request();
    assert.deepEqual([watches.xid, watches.op, watches.body.long()], [
      -8,
      OP.setWatches,
      42n,
    ]);
    assert.deepEqual(
      [watches.body.strings(), watches.body.strings(), watches.body.strings()],
      [["/w"], [], []],
    );
    await waitFor(() => client.isConnected(), "connected again");
    assert.deepEqual(states.slice(2), [
      CM_DISCONNECTED,
      CM_CONNECTING,
      CM_CONNECTED,
    ]);
    await client.release();
  });
}

Deno.test("wire client: a request made while reconnecting is sent once the session is back", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  await side.close();
  await waitFor(() => client.state !== CM_CONNECTED, "disconnected");
  const read = call((cb) => client.getChildren("/q", undefined, cb));
  const next = await within(server.accepted(), 2000, "a new connection");
  await next.handshake();
  const request = await next.request();
  assert.equal(request.body.text(), "/q");
  await next.reply(request.xid, 0, (w) => STAT(w.strings([])));
  assert.deepEqual((await read).results[0], []);
  await client.release();
});

Deno.test("wire client: a session the server says expired ends in SESSION_EXPIRED, and what is queued fails with it", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side, states } = await connected(server);
  await side.close();
  await waitFor(() => client.state !== CM_CONNECTED, "disconnected");
  const queued = call((cb) => client.exists("/x", undefined, cb));
  const next = await within(server.accepted(), 2000, "a new connection");
  await next.handshake({ timeout: 0 });
  assert.equal(((await queued).error as Error).name, "SESSION_EXPIRED");
  assert.equal(client.state, CM_SESSION_EXPIRED);
  assert.equal(client.isConnected(), false);
  assert.equal(states.at(-1), CM_SESSION_EXPIRED);
  const after = call((cb) => client.exists("/x", undefined, cb));
  assert.equal(((await after).error as Error).name, "SESSION_EXPIRED");
  await client.release();
});

Deno.test("wire client: rejected credentials end in AUTH_FAILED", async () => {
  await using server = new ScriptedZooKeeper();
  const client = new WireClient(server.address, 30_000);
  client.addAuthInfo("digest", new TextEncoder().encode("u:wrong"));
  client.connect();
  const side = await server.accepted();
  await side.handshake();
  const auth = await side.request();
  assert.equal(auth.op, OP.auth);
  const sent = call((cb) => client.exists("/sent", undefined, cb));
  await side.request();
  await side.reply(-4, -115);
  assert.equal(((await sent).error as Error).name, "AUTH_FAILED");
  assert.equal(client.isConnected(), false);
  await waitFor(() => client.state === CM_AUTH_FAILED, "auth failed");
  const after = call((cb) => client.exists("/x", undefined, cb));
  assert.equal(((await after).error as Error).name, "AUTH_FAILED");
  await client.release();
});

Deno.test("wire client: it pings a third of the session timeout apart, and drops a connection that received nothing for two thirds of it", async () => {
  await using server = new ScriptedZooKeeper();
  const client = new WireClient(server.address, 30_000);
  client.connect();
  const side = await server.accepted();
  await side.handshake({ timeout: 300 }); // granted: 300 ms
  await waitFor(() => client.isConnected(), "connected");
  const ping = await within(side.request(), 1000, "a ping");
  assert.deepEqual([ping.xid, ping.op], [-2, OP.ping]);
  // The server stays silent: the client gives up on this connection, 200 ms
  // after the last byte it received (checked at each ping, 100 ms apart).
  const next = await within(server.accepted(), 1000, "a new connection");
  assert.equal((await next.handshake()).sessionId, 0x0123456789abcdefn);
  await client.release();
});

Deno.test("wire client: a refused server is reported with its address and the next one is tried; after a full round it pauses and starts again", async () => {
  await using server = new ScriptedZooKeeper();
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refused = `127.0.0.1:${closed.addr.port}`;
  closed.close();
  const failures: string[] = [];
  const client = new WireClient(`${refused},${server.address}`, 30_000, {
    onSocketError: (error, address) =>
      failures.push(`${address} ${(error as Error & { code: string }).code}`),
  });
  const states: number[] = [];
  client.onState((state) => states.push(state));
  client.connect();
  const side = await within(server.accepted(), 3000, "the live server");
  await side.handshake();
  await waitFor(() => client.isConnected(), "connected");
  // A state is heard once, however many attempts it took.
  assert.deepEqual(states, [CM_CONNECTING, CM_CONNECTED]);
  // Shuffled: the refused one was tried first, or not at all.
  assert.ok(
    failures.length <= 1 &&
      failures.every((f) => f === `${refused} ECONNREFUSED`),
    failures.join(),
  );
  await client.release();
  const alone = new WireClient(refused, 30_000, {
    onSocketError: (_error, address) => failures.push(address),
  });
  const aloneStates: number[] = [];
  alone.onState((state) => aloneStates.push(state));
  const before = failures.length;
  alone.connect();
  await waitFor(() => failures.length >= before + 3, "three rounds");
  // Rounds are paused (up to 250 ms each): a refused connect takes well
  // under a millisecond, so without the pauses this would be thousands.
  const counted = failures.length;
  // sleep-ok: counts the attempts made while time passes: the pace is the property
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.ok(failures.length - counted < 100, `${failures.length - counted}`);
  assert.deepEqual(aloneStates, [CM_CONNECTING]);
  await alone.release();
});

Deno.test("wire client: a failed connect says what and where, as Node.js does", () => {
  const refused = Object.assign(
    new Error("Connection refused (os error 111)"),
    {
      code: "ECONNREFUSED",
    },
  );
  const wrapped = connectError(refused, "h", "h:1") as Error & { code: string };
  assert.equal(wrapped.code, "ECONNREFUSED");
  assert.equal(wrapped.cause, refused);
  assert.match(
    wrapped.message,
    /^connect ECONNREFUSED h:1: Connection refused/,
  );
  const lookup = connectError(
    new Error(
      "failed to lookup address information: Name or service not known",
    ),
    "nowhere.invalid",
    "nowhere.invalid:2181",
  ) as Error & { code: string };
  assert.equal(lookup.code, "ENOTFOUND");
  assert.ok(lookup.cause instanceof Error);
  assert.match(lookup.message, /^getaddrinfo ENOTFOUND nowhere.invalid/);
  const again = connectError(
    new Error(
      "failed to lookup address information: Temporary failure in name resolution",
    ),
    "h",
    "h:1",
  ) as Error & { code: string };
  assert.equal(again.code, "EAI_AGAIN");
  const denied = new Deno.errors.NotCapable("Requires net access");
  assert.equal(connectError(denied, "h", "h:1"), denied);
  // An OS permission error carries a code too; it stays as it is.
  const forbidden = Object.assign(
    new Deno.errors.PermissionDenied("Operation not permitted (os error 1)"),
    { code: "EPERM" },
  );
  assert.equal(connectError(forbidden, "h", "h:1"), forbidden);
  const other = new Error("something else");
  assert.equal(connectError(other, "h", "h:1"), other);
});

Deno.test("wire client: endSession sends closeSession and ends CLOSED once the server closes; release fails what is pending", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side, states } = await connected(server);
  const ending = client.endSession();
  const close = await side.request();
  assert.equal(close.op, OP.closeSession);
  await side.reply(close.xid);
  await side.close();
  await within(ending, 2000, "endSession");
  assert.equal(client.state, CM_CLOSED);
  assert.equal(states.at(-1), CM_CLOSED);
  const second = await connected(server);
  const pending = call((cb) => second.client.getData("/p", undefined, cb));
  await second.side.request();
  await second.client.release();
  assert.equal(((await pending).error as Error).name, "CONNECTION_LOSS");
});

Deno.test("wire client: the reader refuses vectors, buffers and strings longer than their frame, negative lengths and bytes that are not UTF-8", () => {
  const reader = (w: JuteWriter) => new JuteReader(w.frame().subarray(4));
  const refuses = (read: () => unknown, message: string) =>
    assert.throws(read, (error: Error) => {
      assert.ok(error instanceof JuteError);
      assert.equal(error.name, "JuteError");
      assert.equal(error.message, message);
      return true;
    });
  refuses(
    () => reader(new JuteWriter().int(1000)).strings(),
    "Cannot read 1000 strings: 0 bytes left",
  );
  refuses(
    () => reader(new JuteWriter().int(3).int(0).int(0)).strings(),
    "Cannot read 3 strings: 8 bytes left",
  );
  refuses(
    () => reader(new JuteWriter().int(-2)).acl(),
    "Cannot read -2 ACL entries: 0 bytes left",
  );
  refuses(
    () => reader(new JuteWriter().int(-5)).buffer(),
    "Cannot read a buffer of length -5",
  );
  refuses(
    () => reader(new JuteWriter().int(-1)).text(),
    "Cannot read a string of length -1",
  );
  refuses(
    () => reader(new JuteWriter().int(10)).buffer(),
    "Cannot read a buffer: needs 10 bytes, 0 left in the frame",
  );
  refuses(
    () => reader(new JuteWriter().int(6)).text(),
    "Cannot read a string: needs 6 bytes, 0 left in the frame",
  );
  refuses(
    () => reader(new JuteWriter().buffer(new Uint8Array([0xc3]))).text(),
    "Cannot read a string: not UTF-8",
  );
  refuses(
    () => reader(new JuteWriter()).int(),
    "Cannot read an int: needs 4 bytes, 0 left in the frame",
  );
  refuses(
    () => reader(new JuteWriter()).long(),
    "Cannot read a long: needs 8 bytes, 0 left in the frame",
  );
  refuses(
    () => reader(new JuteWriter()).bool(),
    "Cannot read a boolean: needs 1 bytes, 0 left in the frame",
  );
  assert.deepEqual(reader(new JuteWriter().int(-1)).strings(), []);
  assert.equal(reader(new JuteWriter().string("")).text(), "");
  assert.equal(reader(new JuteWriter().int(-1)).buffer(), null);
  // The writer grows past its first 256 bytes and keeps what it wrote.
  const long = "x".repeat(1000);
  const r = reader(new JuteWriter().int(7).string(long).bool(true).long(-3n));
  assert.deepEqual([r.int(), r.text(), r.bool(), r.long(), r.remaining], [
    7,
    long,
    true,
    -3n,
    0,
  ]);
});

Deno.test("wire client: every error code ZooKeeper defines gets its name; the session knows the ones it maps", () => {
  // ZooKeeper's KeeperException.Code, by number.
  const codes: Record<number, string> = {
    [-1]: "SYSTEM_ERROR",
    [-2]: "RUNTIME_INCONSISTENCY",
    [-3]: "DATA_INCONSISTENCY",
    [-4]: "CONNECTION_LOSS",
    [-5]: "MARSHALLING_ERROR",
    [-6]: "UNIMPLEMENTED",
    [-7]: "OPERATION_TIMEOUT",
    [-8]: "BAD_ARGUMENTS",
    [-13]: "NEW_CONFIG_NO_QUORUM",
    [-14]: "RECONFIG_IN_PROGRESS",
    [-15]: "UNKNOWN_SESSION",
    [-16]: "THROTTLED_OP",
    [-100]: "API_ERROR",
    [-101]: "NO_NODE",
    [-102]: "NO_AUTH",
    [-103]: "BAD_VERSION",
    [-108]: "NO_CHILDREN_FOR_EPHEMERALS",
    [-110]: "NODE_EXISTS",
    [-111]: "NOT_EMPTY",
    [-112]: "SESSION_EXPIRED",
    [-113]: "INVALID_CALLBACK",
    [-114]: "INVALID_ACL",
    [-115]: "AUTH_FAILED",
    [-118]: "SESSION_MOVED",
    [-119]: "NOT_READ_ONLY",
    [-120]: "EPHEMERAL_ON_LOCAL_SESSION",
    [-121]: "NO_WATCHER",
    [-122]: "REQUEST_TIMEOUT",
    [-124]: "RECONFIG_DISABLED",
    [-125]: "SESSION_CLOSED_REQUIRE_SASL_AUTH",
    [-127]: "QUOTA_EXCEEDED",
  };
  for (const [code, name] of Object.entries(codes)) {
    const error = wireError(Number(code), "/p") as Error & { code: number };
    assert.equal(error.name, name, code);
    assert.equal(error.code, Number(code));
    assert.equal(error.message, `ZooKeeper error ${name} (${code}) at /p`);
  }
  assert.equal(wireError(-4).message, "ZooKeeper error CONNECTION_LOSS (-4)");
  assert.equal(wireError(-126).name, "ERROR_-126");
});

Deno.test("wire client: before its first session it has no id and the timeout it asked for", async () => {
  await using server = new ScriptedZooKeeper();
  const client = new WireClient(server.address, 7000);
  assert.equal(client.sessionId, "");
  assert.equal(client.sessionTimeout, 7000);
  assert.equal(client.state, CM_DISCONNECTED);
  assert.equal(client.isConnected(), false);
  const early = call((cb) => client.exists("/", undefined, cb));
  client.connect();
  const side = await server.accepted();
  await side.handshake({ sessionId: -2n });
  const request = await side.request();
  assert.equal(request.op, OP.exists);
  await side.reply(request.xid, 0, STAT);
  assert.equal((await early).error, null);
  assert.equal(client.sessionId, "fffffffffffffffe");
  await client.release();
  const late = call((cb) => client.exists("/", undefined, cb));
  assert.equal(((await late).error as Error).name, "CONNECTION_LOSS");
});

Deno.test("wire client: the chroot is the root: its own path reads as /, a path outside it is left as it is", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server, { chroot: "/app" });
  const heard: string[] = [];
  client.onWatchEvent((event) => heard.push(event.path));
  const created = call((cb) => client.create("/", undefined, [], 0, cb));
  const create = await side.request();
  assert.equal(create.body.text(), "/app");
  assert.equal(create.body.buffer(), null);
  await side.reply(create.xid, 0, (w) => w.string("/app"));
  assert.deepEqual((await created).results, ["/"]);
  await side.event(2, "/app");
  await side.event(2, "/other");
  await side.event(2, "/application");
  await waitFor(() => heard.length === 3, "three events");
  assert.deepEqual(heard, ["/", "/other", "/application"]);
  await client.release();
});

Deno.test("wire client: frames split over reads, several in one read, and one larger than the read buffer all decode", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  const first = call((cb) => client.getData("/big", undefined, cb));
  const second = call((cb) => client.getChildren("/c", undefined, cb));
  const third = call((cb) => client.exists("/e", undefined, cb));
  const a = await side.request();
  const b = await side.request();
  const c = await side.request();
  const frame = (xid: number, body: (w: JuteWriter) => void) => {
    const w = new JuteWriter().int(xid).long(7n).int(0);
    body(w);
    return w.frame();
  };
  const bigFrame = frame(a.xid, (w) => STAT(w.buffer(big)));
  // The big one in two pieces, the second piece with the next two frames.
  await side.send(bigFrame.subarray(0, 1000));
  await side.send(
    new Uint8Array([
      ...bigFrame.subarray(1000),
      ...frame(b.xid, (w) => STAT(w.strings(["x"]))),
      ...frame(c.xid, STAT),
    ]),
  );
  assert.deepEqual((await first).results[0], big);
  assert.deepEqual((await second).results[0], ["x"]);
  assert.equal((await third).error, null);
  await client.release();
});

Deno.test("wire client: a server that accepts but never answers the session request is left after the handshake timeout, with ETIMEDOUT and its address", async () => {
  await using server = new ScriptedZooKeeper();
  const failures: { message: string; code: string; address: string }[] = [];
  const client = new WireClient(server.address, 30_000, {
    onSocketError: (error, address) =>
      failures.push({
        message: error.message,
        code: (error as Error & { code: string }).code,
        address,
      }),
    handshakeTimeout: 300,
  });
  client.connect();
  const silent = await server.accepted();
  await silent.next(); // the connect request, never answered
  const next = await within(server.accepted(), 5000, "the next attempt");
  assert.deepEqual(failures, [{
    message:
      "the server accepted the connection but did not answer the session request within 300 ms",
    code: "ETIMEDOUT",
    address: server.address,
  }]);
  await next.handshake();
  await waitFor(() => client.isConnected(), "connected");
  await client.release();
});

Deno.test("wire client: while the session is closing, new requests fail with CONNECTION_LOSS; release ends endSession's wait for the server", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  const ending = client.endSession();
  await side.request(); // closeSession, never answered
  const during = call((cb) => client.getData("/x", undefined, cb));
  assert.equal(((await during).error as Error).name, "CONNECTION_LOSS");
  await client.release();
  // Not the two seconds endSession gives a server that never closes.
  await within(ending, 1500, "endSession, once released");
});

Deno.test("wire client: each operation writes its fields and nothing more, and calls back with exactly its record", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  const acl = [{ permission: 1, id: { scheme: "digest", id: "u:x" } }];
  const seen = () => {};
  const outcomes = [
    call((cb) => client.remove("/r", 7, cb)),
    call((cb) => client.setData("/s", new Uint8Array([1, 2]), 3, cb)),
    call((cb) => client.getChildren("/c", seen, cb)),
    call((cb) => client.getChildren("/c2", undefined, cb)),
    call((cb) => client.exists("/e", seen, cb)),
    call((cb) => client.exists("/e2", undefined, cb)),
    call((cb) => client.getACL("/g", cb)),
    call((cb) => client.setACL("/h", acl, 4, cb)),
    call((cb) => client.removeWatches("/w", "persistent_recursive", cb)),
    call((cb) => client.setData("/denied", new Uint8Array(), -1, cb)),
  ];
  const fields = async (
    reply: (w: JuteWriter) => void,
    read: (body: JuteReader) => unknown[],
    err = 0,
  ) => {
    const request = await side.request();
    const written = [request.op, request.body.text(), ...read(request.body)];
    assert.equal(request.body.remaining, 0, `${written}`);
    await side.reply(request.xid, err, reply);
    return written;
  };
  const none = () => {};
  assert.deepEqual(await fields(none, (b) => [b.int()]), [OP.delete, "/r", 7]);
  assert.deepEqual(await fields(STAT, (b) => [b.buffer(), b.int()]), [
    OP.setData,
    "/s",
    new Uint8Array([1, 2]),
    3,
  ]);
  const list = (w: JuteWriter) => STAT(w.strings(["a", "b"]));
  assert.deepEqual(await fields(list, (b) => [b.bool()]), [
    OP.getChildren2,
    "/c",
    true,
  ]);
  assert.deepEqual(await fields(list, (b) => [b.bool()]), [
    OP.getChildren2,
    "/c2",
    false,
  ]);
  assert.deepEqual(await fields(STAT, (b) => [b.bool()]), [
    OP.exists,
    "/e",
    true,
  ]);
  assert.deepEqual(await fields(STAT, (b) => [b.bool()]), [
    OP.exists,
    "/e2",
    false,
  ]);
  assert.deepEqual(await fields((w) => STAT(w.acl(acl)), () => []), [
    OP.getACL,
    "/g",
  ]);
  assert.deepEqual(await fields(STAT, (b) => [b.acl(), b.int()]), [
    OP.setACL,
    "/h",
    acl,
    4,
  ]);
  assert.deepEqual(await fields(none, (b) => [b.int()]), [
    OP.removeWatches,
    "/w",
    3,
  ]);
  assert.deepEqual(
    await fields(none, (b) => [b.buffer(), b.int()], -103),
    [OP.setData, "/denied", new Uint8Array(), -1],
  );
  const results = await Promise.all(outcomes);
  const shape = (
    { error, results }: { error: unknown; results: unknown[] },
  ) => [
    error === null ? null : (error as Error).name,
    results.map((r) =>
      Array.isArray(r)
        ? r.length > 0 && typeof r[0] === "object" ? "acl" : r
        : r === null
        ? null
        : typeof r
    ),
  ];
  assert.deepEqual(results.map(shape), [
    [null, []],
    [null, ["object"]],
    [null, [["a", "b"], "object"]],
    [null, [["a", "b"], "object"]],
    [null, ["object"]],
    [null, ["object"]],
    [null, ["acl", "object"]],
    [null, ["object"]],
    [null, []],
    ["BAD_VERSION", []],
  ]);
  assert.deepEqual(results[6]!.results[0] as unknown[], acl);
  await client.release();
});

Deno.test("wire client: closeSession is its header alone; endSession without a session sends nothing and changes nothing", async () => {
  await using server = new ScriptedZooKeeper();
  const idle = new WireClient(server.address, 30_000);
  await within(idle.endSession(), 1000, "endSession without a session");
  assert.equal(idle.state, CM_DISCONNECTED);
  await idle.release();
  const { client, side } = await connected(server);
  const ending = client.endSession();
  const close = await side.request();
  assert.deepEqual([close.op, close.body.remaining], [OP.closeSession, 0]);
  await side.reply(close.xid);
  await side.close();
  await within(ending, 2000, "endSession");
});

Deno.test("wire client: watches are re-registered by kind: exists on no node as an exist watch, exists on a node and getData as data watches, getChildren as a child watch; a failed read registers none; every watcher of a path fires", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  const fired: string[] = [];
  const watcher = (name: string) => (event: ClientWatchEvent) =>
    fired.push(`${name} ${event.type} ${event.path}`);
  const reads = [
    call((cb) => client.exists("/missing", watcher("m"), cb)),
    call((cb) => client.exists("/there", watcher("t"), cb)),
    call((cb) => client.getData("/d", watcher("d1"), cb)),
    call((cb) => client.getData("/d", watcher("d2"), cb)),
    call((cb) => client.getData("/denied", watcher("x"), cb)),
    call((cb) => client.getChildren("/k", watcher("k"), cb)),
    call((cb) => client.getChildren("/d", watcher("dc"), cb)),
    call((cb) => client.getData("/gone", watcher("g"), cb)),
    call((cb) => client.getData("/nodata", watcher("nd"), cb)),
    call((cb) => client.getChildren("/nochildren", watcher("nc"), cb)),
  ];
  await side.reply((await side.request()).xid, -101, none, 40n);
  await side.reply((await side.request()).xid, 0, STAT, 41n);
  const data = (w: JuteWriter) => STAT(w.buffer(new Uint8Array()));
  await side.reply((await side.request()).xid, 0, data, 42n);
  await side.reply((await side.request()).xid, 0, data, 43n);
  await side.reply((await side.request()).xid, -102, none, 44n);
  // A reply that names no transaction (zxid 0) leaves the last one seen.
  const list = (w: JuteWriter) => STAT(w.strings([]));
  await side.reply((await side.request()).xid, 0, list, 0n);
  await side.reply((await side.request()).xid, 0, list, 0n);
  await side.reply((await side.request()).xid, 0, data, 0n);
  // No node: ZooKeeper sets no watch for these reads, nor does the client.
  await side.reply((await side.request()).xid, -101, none, 0n);
  await side.reply((await side.request()).xid, -101, none, 0n);
  const outcomes = await Promise.all(reads);
  assert.deepEqual(outcomes.map((o) => (o.error as Error | null)?.name), [
    undefined,
    undefined,
    undefined,
    undefined,
    "NO_AUTH",
    undefined,
    undefined,
    undefined,
    "NO_NODE",
    "NO_NODE",
  ]);
  await side.close();
  const next = await within(server.accepted(), 2000, "a new connection");
  assert.equal((await next.handshake()).lastZxid, 44n);
  const watches = await next.request();
  assert.deepEqual([watches.op, watches.body.long()], [OP.setWatches, 44n]);
  assert.deepEqual(
    [watches.body.strings(), watches.body.strings(), watches.body.strings()],
    [["/there", "/d", "/gone"], ["/missing"], ["/k", "/d"]],
  );
  await next.reply(-8);
  await waitFor(() => client.isConnected(), "connected again");
  await next.event(3, "/d");
  await next.event(2, "/k");
  await next.event(1, "/missing");
  await next.event(2, "/denied");
  await next.event(2, "/gone");
  await next.event(4, "/d");
  await waitFor(() => fired.length >= 6, "six watchers");
  // Data changed is not a child watch's event; deleted is a data watch's.
  assert.deepEqual(fired.sort(), [
    "d1 3 /d",
    "d2 3 /d",
    "dc 4 /d",
    "g 2 /gone",
    "k 2 /k",
    "m 1 /missing",
  ]);
  await client.release();
});

function none(): void {}

Deno.test("wire client: ping and SetWatches replies are not answers to requests; a reply out of order is refused even when it would decode", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side, states } = await connected(server);
  const first = call((cb) => client.remove("/a", -1, cb));
  const second = call((cb) => client.remove("/b", -1, cb));
  const a = await side.request();
  const b = await side.request();
  await side.reply(-2); // a ping's answer
  await side.reply(-8); // SetWatches' answer
  await side.reply(a.xid);
  assert.deepEqual(await first, { error: null, results: [] });
  assert.deepEqual(states, [CM_CONNECTING, CM_CONNECTED]);
  const third = call((cb) => client.remove("/c", -1, cb));
  const c = await side.request();
  // Both remove replies are empty: only the order tells them apart.
  await side.reply(c.xid);
  assert.equal(((await second).error as Error).name, "CONNECTION_LOSS");
  assert.equal(((await third).error as Error).name, "CONNECTION_LOSS");
  assert.equal(b.xid + 1, c.xid);
  await client.release();
});

Deno.test("wire client: accepted credentials keep the session; a session answered in time is kept past the handshake timeout", async () => {
  await using server = new ScriptedZooKeeper();
  const client = new WireClient(server.address, 30_000, {
    handshakeTimeout: 200,
  });
  client.addAuthInfo("digest", new TextEncoder().encode("u:p"));
  client.connect();
  const side = await server.accepted();
  await side.handshake();
  const auth = await side.request();
  assert.equal(auth.op, OP.auth);
  await side.reply(-4, 0);
  await waitFor(() => client.isConnected(), "connected");
  // sleep-ok: the handshake timeout (200 ms) must pass: the session outliving it is the property
  await new Promise((resolve) => setTimeout(resolve, 400));
  const read = call((cb) => client.exists("/x", undefined, cb));
  const request = await within(side.request(), 1000, "the request");
  await side.reply(request.xid, 0, STAT);
  assert.equal((await read).error, null);
  assert.equal(client.isConnected(), true);
  await client.release();
});

Deno.test("wire client: a server that closes the connection before the session answer is reported as ECONNRESET with its address; release fails what waits to be sent", async () => {
  await using server = new ScriptedZooKeeper();
  const failures: string[] = [];
  const client = new WireClient(server.address, 30_000, {
    onSocketError: (error, address) =>
      failures.push(
        `${address} ${
          (error as Error & { code: string }).code
        } ${error.message}`,
      ),
  });
  client.connect();
  const first = await server.accepted();
  const waiting = call((cb) => client.getData("/q", undefined, cb));
  await first.next(); // the connect request, then the server goes
  await first.close();
  await waitFor(() => failures.length > 0, "the failure");
  assert.equal(
    failures[0],
    `${server.address} ECONNRESET the server closed the connection`,
  );
  await within(server.accepted(), 2000, "the next attempt");
  await client.release();
  assert.equal(((await waiting).error as Error).name, "CONNECTION_LOSS");
});

Deno.test("wire client: a read that holds a whole reply and the start of the next decodes both, small or large", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  const big = new Uint8Array(200_000).map((_, i) => i % 253);
  const reads = [
    call((cb) => client.getData("/1", undefined, cb)),
    call((cb) => client.getData("/2", undefined, cb)),
    call((cb) => client.getData("/3", undefined, cb)),
    call((cb) => client.getData("/4", undefined, cb)),
    call((cb) => client.getData("/5", undefined, cb)),
    call((cb) => client.getData("/6", undefined, cb)),
  ];
  const xids: number[] = [];
  for (let i = 0; i < 6; i++) xids.push((await side.request()).xid);
  // Every reply's bytes differ (data, and the stat's last field), so a
  // frame cut at the wrong place, or read from stale bytes, shows.
  const frame = (xid: number, data: Uint8Array) => {
    const w = new JuteWriter().int(xid).long(7n).int(0).buffer(data);
    w.long(1n).long(2n).long(3n).long(4n).int(5).int(6).int(7).long(0n)
      .int(8).int(9).long(BigInt(xid) * 1000n);
    return w.frame();
  };
  const small = [1, 3, 4, 5, 6].map((i) => new Uint8Array([i, i, i]));
  const frames = [
    frame(xids[0]!, small[0]!),
    frame(xids[1]!, big),
    frame(xids[2]!, small[1]!),
    frame(xids[3]!, small[2]!),
    frame(xids[4]!, small[3]!),
    frame(xids[5]!, small[4]!),
  ];
  // sleep-ok: paces the pieces so that each arrives in a read of its own
  const pause = () => new Promise((resolve) => setTimeout(resolve, 50));
  // 1 whole + the start of 2 (large); the rest of 2 + the start of 3
  // (small); the rest of 3 + 4.
  await side.send(
    new Uint8Array([...frames[0]!, ...frames[1]!.subarray(0, 100)]),
  );
  await pause();
  await side.send(
    new Uint8Array([...frames[1]!.subarray(100), ...frames[2]!.subarray(0, 9)]),
  );
  await pause();
  await side.send(new Uint8Array([...frames[2]!.subarray(9), ...frames[3]!]));
  await pause();
  // A small reply and 9 bytes of the next; then all of it but 5 bytes.
  const last = frames[5]!;
  await side.send(new Uint8Array([...frames[4]!, ...last.subarray(0, 9)]));
  await pause();
  await side.send(last.subarray(9, last.length - 5));
  await pause();
  await side.send(last.subarray(last.length - 5));
  const outcomes = await Promise.all(reads);
  assert.deepEqual(outcomes.map((o) => o.results[0]), [
    small[0],
    big,
    small[1],
    small[2],
    small[3],
    small[4],
  ]);
  assert.deepEqual(
    outcomes.map((o) => (o.results[1] as { pzxid: bigint }).pzxid),
    xids.map((xid) => BigInt(xid) * 1000n),
  );
  await client.release();
});

Deno.test("wire client: the servers are tried in a shuffled order: each is sometimes first", async () => {
  const ports: number[] = [];
  for (let i = 0; i < 4; i++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    ports.push(listener.addr.port);
    listener.close();
  }
  const servers = ports.map((port) => `127.0.0.1:${port}`);
  const firsts = new Set<string>();
  for (let i = 0; i < 40 && firsts.size < servers.length; i++) {
    const tried: string[] = [];
    const client = new WireClient(servers.join(","), 30_000, {
      onSocketError: (_error, address) => tried.push(address),
    });
    client.connect();
    await waitFor(() => tried.length > 0, "an attempt");
    await client.release();
    firsts.add(tried[0]!);
  }
  assert.deepEqual([...firsts].sort(), [...servers].sort());
});

Deno.test("wire client: clients.create makes a WireClient", async () => {
  const client = clients.create("127.0.0.1:1", 4000, {});
  assert.ok(client instanceof WireClient);
  await (client as WireClient).release();
});

Deno.test("wire client: a lost connection of an established session is not reported as a failed attempt", async () => {
  await using server = new ScriptedZooKeeper();
  const failures: string[] = [];
  const client = new WireClient(server.address, 30_000, {
    onSocketError: (_error, address) => failures.push(address),
  });
  client.connect();
  const side = await server.accepted();
  await side.handshake();
  await waitFor(() => client.isConnected(), "connected");
  await side.close();
  const next = await within(server.accepted(), 2000, "a new connection");
  await next.handshake();
  await waitFor(() => client.isConnected(), "connected again");
  assert.deepEqual(failures, []);
  await client.release();
});

// Connections in memory (`_memory_connector.ts`): a connect, a write or a
// read completed after the attempt that replaced it.

/** Two servers, so that a failed attempt is followed at once by the next. */
const TWO_SERVERS = "127.0.0.1:2181,127.0.0.2:2181";

/** A client whose connects wait for the test, and what it reports. */
function heldClient(connector: MemoryConnector, handshakeTimeout = 30_000): {
  client: WireClient;
  failures: { error: Error; server: string }[];
  states: number[];
} {
  const failures: { error: Error; server: string }[] = [];
  const client = new WireClient(TWO_SERVERS, 30_000, {
    connect: connector.connect,
    handshakeTimeout,
    onSocketError: (error, server) => failures.push({ error, server }),
  });
  const states: number[] = [];
  client.onState((state) => states.push(state));
  client.connect();
  return { client, failures, states };
}

/** Accepts `connector`'s next attempt and answers its session request. */
async function acceptNext(connector: MemoryConnector, client: WireClient) {
  const attempt = await within(connector.next(), 5000, "an attempt");
  const ends = attempt.accept();
  await within(ends.server.handshake(), 5000, "the session request");
  await waitFor(() => client.isConnected(), "connected");
  return ends;
}

Deno.test("wire client: a connect not accepted within the handshake timeout fails its attempt as ETIMEDOUT and is aborted; its late connection is closed unused", async () => {
  await using connector = new MemoryConnector();
  const { client, failures, states } = heldClient(connector, 1000);
  const first = await within(connector.next(), 5000, "the first attempt");
  const second = await within(connector.next(), 5000, "the next attempt");
  assert.equal(first.signal.aborted, true);
  assert.equal(second.signal.aborted, false);
  assert.equal(failures.length, 1);
  const [{ error, server }] = failures as [{ error: Error; server: string }];
  assert.equal(
    error.message,
    "the connection was not accepted within 1000 ms",
  );
  assert.equal((error as Error & { code: string }).code, "ETIMEDOUT");
  assert.equal(server, `${first.hostname}:${first.port}`);
  assert.notEqual(second.hostname, first.hostname);

  const late = first.accept();
  await waitFor(() => late.client.closed, "the late connection closed");
  assert.equal(late.client.writes, 0, "no session request on it");

  const { server: side } = second.accept();
  await within(side.handshake(), 5000, "the session request");
  await waitFor(() => client.isConnected(), "connected");
  assert.deepEqual(states, [CM_CONNECTING, CM_CONNECTED]);
  assert.equal(failures.length, 1);
  assert.equal(connector.attempts.length, 2);
  await client.release();
});

Deno.test("wire client: a connect that fails after its attempt was replaced is not reported, and starts no attempt", async () => {
  await using connector = new MemoryConnector();
  const { client, failures } = heldClient(connector, 1000);
  const first = await within(connector.next(), 5000, "the first attempt");
  const second = await within(connector.next(), 5000, "the next attempt");
  first.refuse(
    Object.assign(new Error("Connection refused"), { code: "ECONNREFUSED" }),
  );
  const { server: side } = second.accept();
  await within(side.handshake(), 5000, "the session request");
  await waitFor(() => client.isConnected(), "connected");
  assert.deepEqual(failures.map(({ error }) => error.message), [
    "the connection was not accepted within 1000 ms",
  ]);
  assert.equal(connector.attempts.length, 2);
  await client.release();
});

Deno.test("wire client: release gives up on a pending connect: its signal aborts, and its late connection is closed unused", async () => {
  await using connector = new MemoryConnector();
  const { client, failures, states } = heldClient(connector);
  const attempt = await within(connector.next(), 5000, "an attempt");
  await client.release();
  assert.equal(attempt.signal.aborted, true);
  const late = attempt.accept();
  await waitFor(() => late.client.closed, "the late connection closed");
  assert.equal(late.client.writes, 0);
  assert.equal(client.isConnected(), false);
  assert.deepEqual(states, [CM_CONNECTING]);
  assert.deepEqual(failures, []);
  assert.equal(connector.attempts.length, 1);
});

Deno.test("wire client: writes queued for a replaced connection are dropped, and its failing write does not drop the new one", async () => {
  await using connector = new MemoryConnector();
  const { client, failures } = heldClient(connector);
  const one = await acceptNext(connector, client);
  assert.equal(one.client.writes, 1); // the session request
  const gate = Promise.withResolvers<void>();
  one.client.writeGate = gate.promise; // the next write hangs
  const a = call((cb) => client.getData("/a", undefined, cb));
  const b = call((cb) => client.getData("/b", undefined, cb));
  await waitFor(() => one.client.writes === 2, "the first request's write");
  // The server ends the connection: the client closes its end, which fails
  // the hung write; the write queued behind it belongs to the old
  // connection and is not made.
  await one.server.close();
  for (const outcome of [await a, await b]) {
    assert.equal((outcome.error as Error).name, "CONNECTION_LOSS");
  }
  const two = await acceptNext(connector, client);
  const c = call((cb) => client.getData("/c", undefined, cb));
  const request = await within(two.server.request(), 5000, "a request");
  assert.equal(request.op, OP.getData);
  await two.server.reply(request.xid, -101);
  assert.equal(((await c).error as Error).name, "NO_NODE");
  assert.equal(one.client.writes, 2);
  assert.equal(one.client.written.length, 1);
  assert.deepEqual(failures, []);
  assert.equal(connector.attempts.length, 2);
  assert.equal(client.isConnected(), true);
  await client.release();
});

Deno.test("wire client: after a failed write replaced the connection, the old connection's read neither reconnects again nor is decoded", async () => {
  await using connector = new MemoryConnector();
  const { client, failures, states } = heldClient(connector);
  const one = await acceptNext(connector, client);
  const seen: ClientWatchEvent[] = [];
  client.onWatchEvent((event) => seen.push(event));
  // A read that completed (an event the server sent) but whose caller runs
  // after the write failure below.
  const hold = Promise.withResolvers<void>();
  one.client.readHold = hold.promise;
  await one.server.event(3, "/x");
  await waitFor(() => one.client.heldReads === 1, "the read to take it");
  one.client.writeError = Object.assign(new Error("Broken pipe"), {
    code: "EPIPE",
  });
  const a = call((cb) => client.exists("/a", undefined, cb));
  assert.equal(((await a).error as Error).name, "CONNECTION_LOSS");
  hold.resolve();
  const two = await acceptNext(connector, client);
  await two.server.event(3, "/y");
  await waitFor(() => seen.length === 1, "the new connection's event");
  assert.deepEqual(seen.map((event) => event.path), ["/y"]);
  assert.deepEqual(failures, []);
  assert.equal(connector.attempts.length, 2);
  assert.deepEqual(states, [
    CM_CONNECTING,
    CM_CONNECTED,
    CM_DISCONNECTED,
    CM_CONNECTING,
    CM_CONNECTED,
  ]);
  await client.release();
});

Deno.test("wire client: a watched read that fails with another error than NO_NODE leaves no watch, exists included", async () => {
  await using server = new ScriptedZooKeeper();
  const { client, side } = await connected(server);
  const fired: string[] = [];
  const watch = (event: ClientWatchEvent) => fired.push(event.path);
  const reads = [
    call((cb) => client.exists("/e", watch, cb)),
    call((cb) => client.getData("/d", watch, cb)),
    call((cb) => client.getChildren("/c", watch, cb)),
  ];
  for (let i = 0; i < reads.length; i++) {
    const request = await side.request();
    await side.reply(request.xid, -102); // NO_AUTH
  }
  for (const read of reads) {
    assert.equal(((await read).error as Error).name, "NO_AUTH");
  }
  // A watch that was set: the events below reach only it.
  const set = call((cb) => client.exists("/set", watch, cb));
  const request = await side.request();
  await side.reply(request.xid, 0, STAT);
  assert.equal((await set).error, null);
  await side.event(1, "/e");
  await side.event(2, "/d");
  await side.event(4, "/c");
  await side.event(2, "/set");
  await waitFor(() => fired.length > 0, "the set watch to fire");
  assert.deepEqual(fired, ["/set"]);
  await client.release();
});

Deno.test("wire client: a frame read together with the refusal of its credentials is not handled: no watch event after AUTH_FAILED", async () => {
  await using connector = new MemoryConnector();
  const { client } = heldClient(connector);
  client.addAuthInfo("digest", new TextEncoder().encode("u:wrong"));
  const { server } = await acceptNext(connector, client);
  const seen: string[] = [];
  client.onWatchEvent((event) => seen.push(event.path));
  const auth = await within(server.request(), 5000, "the credentials");
  assert.equal(auth.op, OP.auth);
  const refusal = new JuteWriter().int(-4).long(100n).int(-115).frame();
  const event = new JuteWriter().int(-1).long(-1n).int(0).int(3).int(3)
    .string("/late").frame();
  const both = new Uint8Array(refusal.length + event.length);
  both.set(refusal);
  both.set(event, refusal.length);
  await server.send(both); // one write: the client reads both at once
  await waitFor(() => client.state === CM_AUTH_FAILED, "auth failed");
  assert.deepEqual(seen, []);
  await client.release();
});

Deno.test("wire client: a session answer that does not decode fails its attempt with the decode error", async () => {
  await using connector = new MemoryConnector();
  const { client, failures } = heldClient(connector);
  const first = await within(connector.next(), 5000, "an attempt");
  const { server } = first.accept();
  await within(server.next(), 5000, "the session request");
  await server.send(new JuteWriter().int(0).frame()); // the version alone
  await within(connector.next(), 5000, "the next attempt");
  assert.equal(failures.length, 1);
  assert.ok(
    failures[0]!.error instanceof JuteError,
    String(failures[0]!.error),
  );
  assert.equal(client.isConnected(), false);
  await client.release();
});
