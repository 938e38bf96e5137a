/**
 * One endpoint (`src/channel/subchannel.ts`) as a unit, against in-process
 * servers and scripted members on 127.0.0.1: its weight, its reported
 * state through connect, goaway, ejection and close, its failure and
 * latency averages, one shared connect at a time, a connect that fails or
 * is dropped, and what it tells its pool (broken, goaway).
 */
import assert from "node:assert/strict";
import { Subchannel } from "../../src/channel/subchannel.ts";
import { Connection } from "../../src/client/connection.ts";
import { ConnectionError } from "../../src/errors.ts";
import type { MemberData } from "../../src/discovery/member.ts";
import { serve } from "../../src/server/server.ts";
import { closedPort } from "../_core_helpers.ts";
import { startFakeMember } from "../_fake_member.ts";
import { waitFor, within } from "../_wait.ts";

const HOST = "127.0.0.1";

/** A subchannel for `member` and what it told its pool. */
function subchannelOf(member: MemberData, connectTimeout = 5000) {
  const broken: Error[] = [];
  let goaways = 0;
  const subchannel = new Subchannel(member, { connectTimeout }, {
    onBroken: (s, error) => {
      assert.equal(s, subchannel);
      broken.push(error);
    },
    onGoaway: (s) => {
      assert.equal(s, subchannel);
      goaways++;
    },
  });
  return { subchannel, broken, goaways: () => goaways };
}

Deno.test("subchannel: its key and candidate come from the member; a weight that is not a positive finite number is 1", () => {
  const cases: [unknown, number][] = [
    [undefined, 1],
    [2, 2],
    [0.5, 0.5],
    [0, 1],
    [-3, 1],
    [Infinity, 1],
    [NaN, 1],
    ["3", 1],
  ];
  for (const [weight, expected] of cases) {
    const member = { host: HOST, port: 9, weight } as MemberData;
    const { subchannel } = subchannelOf(member);
    assert.equal(subchannel.key, `${HOST}:9`);
    assert.equal(subchannel.candidate.key, `${HOST}:9`);
    assert.equal(subchannel.candidate.weight, expected, String(weight));
    assert.equal(subchannel.member, member);
    assert.equal(subchannel.candidate.inFlight, 0);
    assert.equal(subchannel.candidate.latency, undefined);
  }
  const { subchannel } = subchannelOf({ host: HOST, port: 9 });
  const next = { host: HOST, port: 9, weight: 4 };
  subchannel.member = next;
  assert.equal(subchannel.member, next);
  assert.equal(subchannel.candidate.member, next);
  assert.equal(subchannel.candidate.weight, 4);
  subchannel.member = { host: HOST, port: 9, weight: -1 };
  assert.equal(subchannel.candidate.weight, 1);
});

Deno.test("subchannel: state and usability: draining before ejected before the connection", () => {
  const { subchannel } = subchannelOf({ host: HOST, port: 9 });
  assert.equal(subchannel.state, "idle");
  assert.equal(subchannel.usable, true);
  subchannel.ejected = true;
  assert.equal(subchannel.state, "ejected");
  assert.equal(subchannel.usable, false);
  subchannel.draining = true;
  assert.equal(subchannel.state, "draining");
  assert.equal(subchannel.usable, false);
  subchannel.ejected = false;
  assert.equal(subchannel.state, "draining");
  assert.equal(subchannel.usable, false);
  subchannel.draining = false;
  assert.equal(subchannel.usable, true);
});

Deno.test("subchannel: answers and failures move the counters and the 0.1 moving averages exactly", () => {
  const { subchannel } = subchannelOf({ host: HOST, port: 9 });
  subchannel.failed();
  subchannel.failed();
  assert.equal(subchannel.failures, 2);
  assert.equal(subchannel.outcomes, 2);
  assert.ok(Math.abs(subchannel.failureRate - 0.19) < 1e-12);
  subchannel.succeeded(undefined);
  assert.equal(subchannel.failures, 0, "an answer ends the run of failures");
  assert.equal(subchannel.calls, 1);
  assert.equal(subchannel.outcomes, 3);
  assert.ok(Math.abs(subchannel.failureRate - 0.171) < 1e-12);
  assert.equal(
    subchannel.candidate.latency,
    undefined,
    "no sample, no latency",
  );
  subchannel.succeeded(100);
  assert.equal(
    subchannel.candidate.latency,
    100,
    "the first sample is taken whole",
  );
  subchannel.succeeded(200);
  assert.equal(subchannel.candidate.latency, 110);
  subchannel.succeeded(undefined);
  assert.equal(subchannel.candidate.latency, 110);
  subchannel.succeeded(10);
  assert.equal(subchannel.candidate.latency, 100);
  assert.equal(subchannel.calls, 5);
  subchannel.ejected = true;
  subchannel.failed();
  subchannel.ejections = 2;
  subchannel.admit(1234);
  assert.deepEqual(
    [
      subchannel.ejected,
      subchannel.failures,
      subchannel.failureRate,
      subchannel.outcomes,
      subchannel.admittedAt,
      subchannel.ejections,
      subchannel.calls,
    ],
    [false, 0, 0, 0, 1234, 2, 5],
  );
});

Deno.test("subchannel: one shared connect; connecting, then ready; disconnect() closes it without a broken report", async () => {
  await using server = serve({ who: () => "me" }, { hostname: HOST, port: 0 });
  const { subchannel, broken } = subchannelOf({
    host: HOST,
    port: server.addr.port,
  });
  const first = subchannel.connect();
  assert.equal(subchannel.connect(), first, "one connect at a time");
  assert.equal(subchannel.state, "connecting");
  assert.equal(subchannel.live, undefined);
  const connection = await within(first, 10_000, "the connect");
  assert.equal(subchannel.live, connection);
  assert.equal(subchannel.state, "ready");
  assert.equal(subchannel.connect(), first, "the open connection is shared");
  assert.equal(await connection.call("who", [], { timeout: 10_000 }), "me");
  await subchannel.disconnect();
  assert.equal(connection.isClosed, true);
  assert.equal(subchannel.live, undefined);
  assert.equal(subchannel.state, "idle");
  assert.deepEqual(broken, []);
  // A new connect after the disconnect opens a new connection.
  const again = subchannel.connect();
  assert.notEqual(again, first);
  const second = await within(again, 10_000, "the second connect");
  assert.notEqual(second, connection);
  await subchannel.disconnect();
  assert.equal(second.isClosed, true);
});

Deno.test("subchannel: a refused connect is a ConnectionError, not written, and the next connect tries again", async () => {
  const port = closedPort();
  const { subchannel, broken } = subchannelOf({ host: HOST, port });
  const first = subchannel.connect();
  await assert.rejects(within(first, 10_000, "the refusal"), (error) => {
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.written, false);
    return true;
  });
  assert.equal(subchannel.state, "idle");
  const second = subchannel.connect();
  assert.notEqual(second, first, "a failed connect is not kept");
  await assert.rejects(within(second, 10_000, "the second refusal"));
  assert.deepEqual(broken, [], "a connect failure is the caller's to report");
  await subchannel.disconnect();
});

Deno.test("subchannel: a refused connect names the endpoint and keeps the cause; a connect timeout passes through as it is", async () => {
  const port = closedPort();
  const { subchannel } = subchannelOf({ host: HOST, port });
  await assert.rejects(
    within(subchannel.connect(), 10_000, "the connect"),
    (error: unknown) => {
      assert.ok(error instanceof ConnectionError, String(error));
      assert.match(
        error.message,
        new RegExp(`^Cannot connect to ${HOST}:${port}: `),
      );
      assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
      return true;
    },
  );
  // A listener that never answers the handshake: the connect times out.
  using silent = Deno.listen({ hostname: HOST, port: 0 });
  const slow = subchannelOf({ host: HOST, port: silent.addr.port }, 20);
  await assert.rejects(
    within(slow.subchannel.connect(), 10_000, "the connect timeout"),
    (error: unknown) => {
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.written, false);
      assert.equal(
        error.message,
        `Cannot connect to ${HOST}:${silent.addr.port}: no preface from the server within 20 ms`,
      );
      assert.equal(error.cause, undefined);
      return true;
    },
  );
  await slow.subchannel.disconnect();
});

Deno.test("subchannel: an endpoint dropped while connecting closes the late connection and fails the connect", async () => {
  await using server = serve({ who: () => "me" }, { hostname: HOST, port: 0 });
  const { subchannel } = subchannelOf({ host: HOST, port: server.addr.port });
  const connecting = subchannel.connect();
  const dropped = subchannel.disconnect();
  await assert.rejects(
    within(connecting, 10_000, "the dropped connect"),
    {
      name: "ConnectionError",
      message:
        `Cannot connect to ${HOST}:${server.addr.port}: the endpoint was dropped`,
    },
  );
  await within(dropped, 10_000, "the disconnect");
  assert.equal(subchannel.live, undefined);
  assert.equal(subchannel.state, "idle");
  await waitFor(() => server.connections === 0, "the server to see the close");
});

Deno.test("subchannel: a connection that breaks is reported once and forgotten", async () => {
  const fake = startFakeMember("run-then-closing");
  const { subchannel, broken, goaways } = subchannelOf({
    host: HOST,
    port: fake.port,
  });
  const connection = await within(subchannel.connect(), 10_000, "the connect");
  assert.equal(subchannel.state, "ready");
  await fake.close();
  await waitFor(() => broken.length > 0, "the broken report");
  assert.equal(broken.length, 1);
  assert.ok(broken[0] instanceof Error);
  assert.equal(goaways(), 0);
  assert.equal(subchannel.live, undefined);
  assert.equal(subchannel.state, "idle");
  assert.equal(connection.isClosed, true);
  await subchannel.disconnect();
});

Deno.test("subchannel: after goaway the connection is forgotten, kept for its calls, closed by disconnect(); its close is not a breakage", async () => {
  await using fake = startFakeMember("goaway-then-closing");
  const { subchannel, broken, goaways } = subchannelOf({
    host: HOST,
    port: fake.port,
  });
  const connection = await within(subchannel.connect(), 10_000, "the connect");
  // The fake answers the first call with goaway and a "closing" error.
  await assert.rejects(connection.call("x", [], { timeout: 10_000 }));
  await waitFor(() => goaways() === 1, "the goaway report");
  assert.equal(subchannel.live, undefined);
  assert.equal(subchannel.state, "idle");
  assert.equal(connection.isClosed, false, "left to finish its calls");
  // The next connect opens a new connection.
  const next = await within(subchannel.connect(), 10_000, "a new connect");
  assert.notEqual(next, connection);
  assert.equal(subchannel.live, next);
  await subchannel.disconnect();
  assert.equal(connection.isClosed, true, "disconnect() closes the old one");
  assert.equal(next.isClosed, true);
  assert.deepEqual(broken, []);
  assert.equal(goaways(), 1);
});

Deno.test("subchannel: a connection closed by the client with no error is not reported broken", async () => {
  await using server = serve({ who: () => "me" }, { hostname: HOST, port: 0 });
  const { subchannel, broken } = subchannelOf({
    host: HOST,
    port: server.addr.port,
  });
  const connection = await within(subchannel.connect(), 10_000, "the connect");
  connection.close();
  await within(connection.closed, 10_000, "the close");
  assert.equal(subchannel.live, undefined);
  assert.equal(subchannel.state, "idle");
  assert.deepEqual(broken, []);
  await subchannel.disconnect();
});

/**
 * Runs `body` with `Connection.connect` replaced by `connect` (the
 * endpoints it is asked for are recorded), then restores it.
 */
async function withConnect(
  connect: () => Promise<Connection>,
  body: (
    asked: { hostname: string; port: number; tls?: boolean }[],
  ) => Promise<void>,
): Promise<void> {
  const original = Connection.connect;
  const asked: { hostname: string; port: number; tls?: boolean }[] = [];
  Connection.connect = ((endpoint: typeof asked[number]) => {
    asked.push(endpoint);
    return connect();
  }) as typeof Connection.connect;
  try {
    await body(asked);
  } finally {
    Connection.connect = original;
  }
}

Deno.test("subchannel: a new one is not retired; connects use TLS exactly when the member says tls: true", async () => {
  assert.equal(subchannelOf({ host: HOST, port: 9 }).subchannel.retired, false);
  await withConnect(
    () => Promise.reject(new ConnectionError("no", { written: false })),
    async (asked) => {
      for (const tls of [true, false, undefined]) {
        const member: MemberData = { host: HOST, port: 9 };
        if (tls !== undefined) member.tls = tls;
        await assert.rejects(subchannelOf(member).subchannel.connect());
      }
      assert.deepEqual(asked, [
        { hostname: HOST, port: 9, tls: true },
        { hostname: HOST, port: 9, tls: false },
        { hostname: HOST, port: 9, tls: false },
      ]);
    },
  );
});

Deno.test("subchannel: a connect failing with an error that is not a refusal is wrapped: named endpoint, not written, cause kept", async () => {
  const bug = new TypeError("boom");
  await withConnect(() => Promise.reject(bug), async () => {
    const { subchannel } = subchannelOf({ host: HOST, port: 9 });
    await assert.rejects(subchannel.connect(), (error: unknown) => {
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.message, `Cannot connect to ${HOST}:9: boom`);
      assert.equal(error.written, false);
      assert.equal(error.cause, bug);
      return true;
    });
  });
});

Deno.test("subchannel: a dropped connect that fails late leaves the newer connect in place", async () => {
  const pending: PromiseWithResolvers<Connection>[] = [];
  await withConnect(() => {
    const next = Promise.withResolvers<Connection>();
    pending.push(next);
    return next.promise;
  }, async () => {
    const { subchannel } = subchannelOf({ host: HOST, port: 9 });
    const first = subchannel.connect();
    const dropped = subchannel.disconnect();
    for (let i = 0; i < 5; i++) await Promise.resolve(); // the drop
    const second = subchannel.connect();
    assert.notEqual(second, first);
    // The first connect's failure arrives after the second started.
    pending[0]!.reject(new ConnectionError("late", { written: false }));
    await assert.rejects(first);
    await dropped;
    assert.equal(subchannel.state, "connecting");
    assert.equal(subchannel.connect(), second);
    pending[1]!.reject(new ConnectionError("refused", { written: false }));
    await assert.rejects(second);
    assert.notEqual(subchannel.connect(), second, "a failed connect is let go");
    pending[2]!.reject(new ConnectionError("refused", { written: false }));
    await assert.rejects(subchannel.connect());
  });
});

Deno.test("subchannel: closing its connection makes it idle at once; the dropped connect's error is not written", async () => {
  await using server = serve({ who: () => "me" }, { hostname: HOST, port: 0 });
  const { subchannel } = subchannelOf({ host: HOST, port: server.addr.port });
  const connection = await within(subchannel.connect(), 10_000, "the connect");
  connection.close();
  assert.equal(subchannel.state, "idle", "closed, before its close event");
  await within(connection.closed, 10_000, "the close");
  const connecting = subchannel.connect();
  const dropped = subchannel.disconnect();
  await assert.rejects(within(connecting, 10_000, "the connect"), (error) => {
    assert.ok(error instanceof ConnectionError);
    assert.equal(error.written, false);
    return true;
  });
  await dropped;
});

Deno.test("subchannel: the old connection closing after a goaway leaves the new one live; disconnect() waits for the old one", async () => {
  await using fake = startFakeMember("goaway-then-closing");
  const { subchannel, broken } = subchannelOf({ host: HOST, port: fake.port });
  const old = await within(subchannel.connect(), 10_000, "the connect");
  await assert.rejects(old.call("x", [], { timeout: 10_000 }));
  await waitFor(() => subchannel.live === undefined, "the goaway");
  const next = await within(subchannel.connect(), 10_000, "a new connect");
  // The old connection breaking is not the endpoint's breakage.
  old.dispatchEvent(
    new CustomEvent("close", { detail: { error: new Error("late") } }),
  );
  assert.deepEqual(broken, []);
  assert.equal(subchannel.live, next);
  old.close();
  await within(old.closed, 10_000, "the old connection to close");
  assert.equal(subchannel.live, next, "the new connection stays live");
  assert.equal(subchannel.state, "ready");
  assert.deepEqual(broken, []);
  // A second goaway'd connection: disconnect() resolves once it is closed.
  await assert.rejects(next.call("x", [], { timeout: 10_000 }));
  await waitFor(() => subchannel.live === undefined, "the second goaway");
  let closed = false;
  next.closed.then(() => closed = true);
  await subchannel.disconnect();
  assert.equal(closed, true);
});
