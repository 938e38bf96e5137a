/**
 * `WireClient` against a scripted ZooKeeper on 127.0.0.1
 * (`_scripted_zookeeper.ts`): the handshake, requests and replies in order,
 * the chroot, one-shot watches and their re-registration, the session's
 * first hearing of every event, errors by name, bad frames and replies out
 * of order (the connection is dropped and the session resumed), expiry,
 * rejected credentials, pings and the read timeout, the server rotation,
 * `endSession()` and `release()`. The same client against a real ZooKeeper:
 * the `tests/zookeeper_*_test.ts` system tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
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
} from "../../src/zookeeper/_jute.ts";
import {
  type ScriptedConnection,
  ScriptedZooKeeper,
} from "./_scripted_zookeeper.ts";
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

/** Calls `op` with a callback and returns its outcome as a promise. */
function call(
  start: (callback: (error: unknown, ...results: unknown[]) => void) => void,
): Promise<{ error: unknown; results: unknown[] }> {
  return new Promise((resolve) =>
    start((error, ...results) => resolve({ error, results }))
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
  });
  await waitFor(() => client.isConnected(), "connected");
  assert.deepEqual(states, [CM_CONNECTING, CM_CONNECTED]);
  assert.equal(client.sessionId, "0000000000000010");
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
      (side: ScriptedConnection) =>
        side.send(new Uint8Array([0x7f, 0xff, 0xff, 0xff])),
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
    assert.equal(((await lost).error as Error).name, "CONNECTION_LOSS");
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
  await side.reply(-4, -115);
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
  // The server stays silent: the client gives up on this connection.
  const next = await within(server.accepted(), 2000, "a new connection");
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
  client.connect();
  const side = await within(server.accepted(), 3000, "the live server");
  await side.handshake();
  await waitFor(() => client.isConnected(), "connected");
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
  const before = failures.length;
  alone.connect();
  await waitFor(() => failures.length >= before + 3, "three rounds");
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
