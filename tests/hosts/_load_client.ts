/**
 * A load-generating client for the multi-host suite, run as its own process
 * inside a simulated host:
 *
 * ```sh
 * deno run --allow-net=198.18.0.0/24 tests/hosts/_load_client.ts '{"zookeeper": "…", …}'
 * ```
 *
 * Every `1000 / rate` ms it starts two `divide(10, 2)` calls through one
 * {@linkcode DistributedChannel}: one declared idempotent, one not. It writes
 * JSON lines on stdout: `{"type":"ready"}` once an endpoint is known, a
 * `status` line every 200 ms (discovery state, endpoints, the counters of the
 * current window), and a `failure` line per failed call. On stdin, `reset`
 * starts a new window and `stop` (or end of input) closes the channel, writes
 * the last status and exits.
 *
 * @module
 */
import { ConnectionError } from "../../mod.ts";
import { lines } from "../../src/testing/server_process.ts";
import { zooKeeperChannel } from "../../zookeeper.ts";

/** The client's configuration (its one argument, as JSON). */
export interface LoadClientConfig {
  /** ZooKeeper connection string. */
  zookeeper: string;
  /** Service to call. */
  service: string;
  /** Pairs of calls started per second. */
  rate: number;
  /** Channel call timeout, ms. */
  timeout: number;
  /** ZooKeeper session timeout, ms. */
  sessionTimeout: number;
  /** Connect timeout to an endpoint, ms. */
  connectTimeout: number;
  /** Keepalive ping after this much silence, ms. */
  keepaliveInterval: number;
  /** Keepalive: declare the peer dead this long after a ping, ms. */
  keepaliveTimeout: number;
  /** Longest ejection of a failing endpoint, ms. */
  maxEjectionTime: number;
}

/** Counters of one window. */
export interface LoadWindow {
  /** Which window: 0, then one more per `reset`. */
  epoch: number;
  /** Calls started. */
  started: number;
  /** Calls that succeeded. */
  ok: number;
  /** Calls that failed, by `idempotent`/`other` and then class. */
  failed: { idempotent: Record<string, number>; other: Record<string, number> };
  /** Longest time between two successful completions, ms. */
  longestGap: number;
  /** Slowest successful call, ms. */
  slowest: number;
}

/** One `status` line. */
export interface LoadStatus {
  type: "status";
  /** Discovery state (`fresh`, `disconnected` = serving from cache, …). */
  state: string;
  /** Known endpoints, `host:port` and state. */
  endpoints: { key: string; host: string; state: string; calls: number }[];
  /** The current window. */
  window: LoadWindow;
  /** Calls in flight now. */
  inFlight: number;
}

/** One `failure` line. */
export interface LoadFailure {
  type: "failure";
  idempotent: boolean;
  /** Error class; `ConnectionError:may-have-run` or `:not-sent`. */
  class: string;
  message: string;
  /** How long the call took, ms. */
  ms: number;
}

/**
 * The class a failure is counted under.
 *
 * @param error What the call rejected with.
 * @returns E.g. `DeadlineExceededError`, `ConnectionError:may-have-run`.
 */
export function failureClass(error: unknown): string {
  if (error instanceof ConnectionError) {
    return `ConnectionError:${error.written ? "may-have-run" : "not-sent"}`;
  }
  return error instanceof Error ? error.name : typeof error;
}

function emptyWindow(epoch: number): LoadWindow {
  return {
    epoch,
    started: 0,
    ok: 0,
    failed: { idempotent: {}, other: {} },
    longestGap: 0,
    slowest: 0,
  };
}

function write(line: unknown): void {
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(line) + "\n"));
}

async function main(config: LoadClientConfig): Promise<void> {
  const channel = zooKeeperChannel({
    zookeeper: config.zookeeper,
    service: config.service,
    timeout: config.timeout,
    session: {
      sessionTimeout: config.sessionTimeout,
      connectTimeout: config.connectTimeout,
    },
    outlierDetection: { maxEjectionTime: config.maxEjectionTime },
    connection: {
      connectTimeout: config.connectTimeout,
      keepaliveInterval: config.keepaliveInterval,
      keepaliveTimeout: config.keepaliveTimeout,
    },
  });
  let window = emptyWindow(0);
  let lastOk = performance.now();
  let inFlight = 0;
  const calls = new Set<Promise<void>>();
  const status = (): LoadStatus => ({
    type: "status",
    state: channel.state,
    endpoints: channel.endpoints().map((e) => ({
      key: e.key,
      host: e.member.host,
      state: e.state,
      calls: e.calls,
    })),
    window,
    inFlight,
  });
  const one = (idempotent: boolean): void => {
    const started = performance.now();
    window.started++;
    inFlight++;
    const call = channel.call("divide", [10, 2], { idempotent }).then(
      () => {
        const now = performance.now();
        window.ok++;
        window.longestGap = Math.max(window.longestGap, now - lastOk);
        window.slowest = Math.max(window.slowest, now - started);
        lastOk = now;
      },
      (error: unknown) => {
        const kind = failureClass(error);
        const counts = idempotent
          ? window.failed.idempotent
          : window.failed.other;
        counts[kind] = (counts[kind] ?? 0) + 1;
        write(
          {
            type: "failure",
            idempotent,
            class: kind,
            message: (error as Error).message,
            ms: Math.round(performance.now() - started),
          } satisfies LoadFailure,
        );
      },
    ).finally(() => {
      inFlight--;
      calls.delete(call);
    });
    calls.add(call);
  };
  await channel.ready({ timeout: 30_000 });
  write({ type: "ready" });
  const load = setInterval(() => {
    one(true);
    one(false);
  }, 1000 / config.rate);
  const report = setInterval(() => write(status()), 200);
  for await (const line of lines(Deno.stdin.readable)) {
    if (line === "reset") {
      window = emptyWindow(window.epoch + 1);
      lastOk = performance.now();
    } else if (line === "stop") {
      break;
    }
  }
  clearInterval(load);
  await Promise.all(calls);
  clearInterval(report);
  write(status());
  await channel.close();
}

if (import.meta.main) {
  await main(JSON.parse(Deno.args[0] ?? "{}") as LoadClientConfig);
}
