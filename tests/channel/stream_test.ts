/**
 * A channel's stream (`src/channel/stream.ts`) as a unit, with scripted
 * attempts and connections (no server): items in order, pinned to the
 * attempt that read the first item; a failure before it fails the stream
 * (or, through the channel, moves the attempt), one after it ends the
 * stream with that error; input sent once, never replayed; the caller's
 * signal and `cancel()` reach the attempt and the inner stream; no item
 * read ahead; and the options `channel.stream()` gives its call.
 */
import assert from "node:assert/strict";
import {
  channelStream,
  STREAM_ATTEMPT,
  type StreamAttempt,
  streamThroughChannel,
} from "../../src/channel/stream.ts";
import type { CallOptions, Connection } from "../../src/client/connection.ts";
import { CancelledError } from "../../src/errors.ts";
import type { ChannelCallOptions } from "../../src/channel/options.ts";
import { countedSignal } from "../_core_helpers.ts";
import { within } from "../_wait.ts";

/** What a scripted connection's `stream()` was asked. */
interface Opened {
  method: string;
  params: unknown[];
  options: CallOptions & { input?: unknown };
  /** Items the inner stream gave out (its pulls). */
  pulls: number;
  cancelled: unknown[];
}

/**
 * A connection whose `stream()` yields `items`, then fails with `failWith`
 * if given (after `failAfter` items), else ends.
 */
function connectionOf(
  items: unknown[],
  opened: Opened[],
  failWith?: Error,
): Connection {
  return {
    stream(method: string, params: unknown[], options: CallOptions) {
      const record: Opened = {
        method,
        params,
        options,
        pulls: 0,
        cancelled: [],
      };
      opened.push(record);
      let next = 0;
      return new ReadableStream({
        pull(controller) {
          record.pulls++;
          if (next < items.length) controller.enqueue(items[next++]);
          else if (failWith) controller.error(failWith);
          else controller.close();
        },
        cancel(reason) {
          record.cancelled.push(reason);
        },
      }, { highWaterMark: 0 });
    },
  } as unknown as Connection;
}

/** Lets the queued promise reactions (the streams' pulls) run. */
async function queued(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

async function readAll(stream: ReadableStream<unknown>): Promise<unknown[]> {
  const items: unknown[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

Deno.test("channelStream(): the items in order, the first item reported once, the attempt held until the stream ends", async () => {
  const opened: Opened[] = [];
  let firstItems = 0;
  let attemptEnded = false;
  const options = { timeout: 100 };
  const stream = channelStream(
    "count",
    undefined,
    undefined,
    async (attempt) => {
      await attempt(
        connectionOf([1, 2, 3], opened),
        "count",
        [3],
        options,
        () => firstItems++,
      );
      attemptEnded = true;
      return undefined;
    },
  );
  const reader = stream.getReader();
  assert.deepEqual(await within(reader.read(), 5000, "item 1"), {
    value: 1,
    done: false,
  });
  assert.equal(firstItems, 1);
  assert.equal(attemptEnded, false, "pinned while the stream lasts");
  assert.deepEqual(await reader.read(), { value: 2, done: false });
  assert.deepEqual(await reader.read(), { value: 3, done: false });
  assert.deepEqual(await reader.read(), { value: undefined, done: true });
  await queued();
  assert.equal(attemptEnded, true, "the attempt ends with the stream");
  assert.equal(firstItems, 1);
  assert.deepEqual([opened[0]!.method, opened[0]!.params], ["count", [3]]);
  assert.equal(opened[0]!.options, options, "no input: the options as given");
});

Deno.test("channelStream(): an empty stream ends; its attempt still reports a first read", async () => {
  const opened: Opened[] = [];
  let firstItems = 0;
  const stream = channelStream(
    "none",
    undefined,
    undefined,
    (attempt) =>
      attempt(connectionOf([], opened), "none", [], {}, () => firstItems++),
  );
  assert.deepEqual(await within(readAll(stream), 5000, "the stream"), []);
  assert.equal(firstItems, 1);
});

Deno.test("channelStream(): no item is read ahead of the consumer", async () => {
  const opened: Opened[] = [];
  const stream = channelStream(
    "count",
    undefined,
    undefined,
    (attempt) =>
      attempt(connectionOf([1, 2, 3], opened), "count", [], {}, () => {}),
  );
  const reader = stream.getReader();
  assert.deepEqual(await within(reader.read(), 5000, "item 1"), {
    value: 1,
    done: false,
  });
  await queued();
  assert.equal(opened[0]!.pulls, 1, "only the first item was read");
  assert.deepEqual(await reader.read(), { value: 2, done: false });
  await queued();
  assert.equal(opened[0]!.pulls, 2);
  await reader.cancel();
});

Deno.test("channelStream(): a failure before the first item fails the stream with that error", async () => {
  const failure = new Error("no servers");
  const stream = channelStream(
    "count",
    undefined,
    undefined,
    () => Promise.reject(failure),
  );
  await assert.rejects(
    within(readAll(stream), 5000, "the failed stream"),
    (error) => error === failure,
  );
  // An attempt failing on its first read fails the run (the channel's to retry).
  const opened: Opened[] = [];
  const broken = new Error("broken before the first item");
  let firstItems = 0;
  const failing = channelStream(
    "count",
    undefined,
    undefined,
    (attempt) =>
      attempt(
        connectionOf([], opened, broken),
        "count",
        [],
        {},
        () => firstItems++,
      ),
  );
  await assert.rejects(
    within(readAll(failing), 5000, "the failed stream"),
    (error) => error === broken,
  );
  assert.equal(firstItems, 0);
});

Deno.test("channelStream(): an attempt that fails before its first item is replaced by the next one", async () => {
  const opened: Opened[] = [];
  const broken = new Error("broken");
  const seen: unknown[] = [];
  const stream = channelStream(
    "count",
    undefined,
    undefined,
    async (attempt) => {
      try {
        await attempt(
          connectionOf([], opened, broken),
          "count",
          [],
          {},
          () => {},
        );
      } catch (error) {
        seen.push(error);
      }
      return attempt(connectionOf(["b"], opened), "count", [], {}, () => {});
    },
  );
  assert.deepEqual(await within(readAll(stream), 5000, "the stream"), ["b"]);
  assert.deepEqual(seen, [broken]);
  assert.equal(opened.length, 2);
});

Deno.test("channelStream(): a failure after the first item ends the stream with that error", async () => {
  const opened: Opened[] = [];
  const broken = new Error("broken after 2 items");
  const stream = channelStream(
    "count",
    undefined,
    undefined,
    (attempt) =>
      attempt(connectionOf([1, 2], opened, broken), "count", [], {}, () => {}),
  );
  const items: unknown[] = [];
  await assert.rejects(
    within(
      (async () => {
        for await (const item of stream) items.push(item);
      })(),
      5000,
      "the stream",
    ),
    (error) => error === broken,
  );
  assert.deepEqual(items, [1, 2]);
});

Deno.test("channelStream(): input is sent with the first attempt and never replayed", async () => {
  const opened: Opened[] = [];
  const input = new ReadableStream({ start: (c) => c.close() });
  const outcomes: unknown[] = [];
  const stream = channelStream("upload", input, undefined, async (attempt) => {
    const broken = new Error("broken");
    try {
      await attempt(connectionOf([], opened, broken), "upload", [], {
        timeout: 5,
      }, () => {});
    } catch (error) {
      outcomes.push(error);
    }
    return attempt(connectionOf([1], opened), "upload", [], {}, () => {});
  });
  await assert.rejects(within(readAll(stream), 5000, "the stream"), {
    name: "TypeError",
    message:
      'Cannot stream method "upload": its input was sent once and cannot be replayed',
  });
  assert.equal(opened.length, 1);
  assert.deepEqual(opened[0]!.options, { timeout: 5, input });
  assert.equal((outcomes[0] as Error).message, "broken");
  // Without input a second attempt is allowed.
  const again: Opened[] = [];
  const retried = channelStream(
    "count",
    undefined,
    undefined,
    async (attempt) => {
      await attempt(
        connectionOf([], again, new Error("x")),
        "count",
        [],
        {},
        () => {},
      )
        .catch(() => {});
      return attempt(connectionOf([7], again), "count", [], {}, () => {});
    },
  );
  assert.deepEqual(await within(readAll(retried), 5000, "the stream"), [7]);
});

Deno.test("channelStream(): cancel() aborts the attempt's signal (with a CancelledError unless a reason is given) and cancels the inner stream", async () => {
  for (const reason of [undefined, new Error("enough")]) {
    const opened: Opened[] = [];
    let runSignal: AbortSignal | undefined;
    const stream = channelStream(
      "count",
      undefined,
      undefined,
      (attempt, signal) => {
        runSignal = signal;
        return attempt(
          connectionOf([1, 2, 3], opened),
          "count",
          [],
          {},
          () => {},
        );
      },
    );
    const reader = stream.getReader();
    await within(reader.read(), 5000, "item 1");
    assert.equal(runSignal!.aborted, false);
    await within(reader.cancel(reason), 5000, "the cancel");
    assert.equal(runSignal!.aborted, true);
    if (reason === undefined) {
      assert.ok(runSignal!.reason instanceof CancelledError);
      assert.equal(runSignal!.reason.message, 'Stream "count" cancelled');
    } else {
      assert.equal(runSignal!.reason, reason);
    }
    assert.deepEqual(opened[0]!.cancelled, [reason]);
  }
});

Deno.test("channelStream(): the caller's signal aborts the attempt, before or during the stream; its listener goes when the stream ends", async () => {
  const early = new AbortController();
  const reason = new Error("gone");
  early.abort(reason);
  let seen: AbortSignal | undefined;
  const pre = channelStream("count", undefined, early.signal, (_, signal) => {
    seen = signal;
    return Promise.reject(signal.reason);
  });
  await assert.rejects(
    within(readAll(pre), 5000, "the stream"),
    (e) => e === reason,
  );
  assert.equal(seen!.reason, reason);

  const { controller, listeners } = countedSignal();
  let during: AbortSignal | undefined;
  const opened: Opened[] = [];
  const stream = channelStream(
    "count",
    undefined,
    controller.signal,
    (attempt, signal) => {
      during = signal;
      return attempt(connectionOf([1, 2], opened), "count", [], {}, () => {});
    },
  );
  assert.equal(listeners(), 1);
  const reader = stream.getReader();
  await within(reader.read(), 5000, "item 1");
  const stop = new Error("stop");
  controller.abort(stop);
  assert.equal(during!.aborted, true);
  assert.equal(during!.reason, stop);
  await reader.cancel();

  // A stream that ends normally lets go of the caller's signal.
  const shared = countedSignal();
  const ended = channelStream(
    "count",
    undefined,
    shared.controller.signal,
    (attempt) => attempt(connectionOf([1], []), "count", [], {}, () => {}),
  );
  assert.equal(shared.listeners(), 1);
  assert.deepEqual(await within(readAll(ended), 5000, "the stream"), [1]);
  assert.equal(shared.listeners(), 0);
  // So does one that failed, and one cancelled.
  const failed = channelStream(
    "count",
    undefined,
    shared.controller.signal,
    () => Promise.reject(new Error("x")),
  );
  await assert.rejects(within(readAll(failed), 5000, "the stream"));
  assert.equal(shared.listeners(), 0);
  const broken = channelStream(
    "count",
    undefined,
    shared.controller.signal,
    (attempt) =>
      attempt(connectionOf([1], [], new Error("y")), "count", [], {}, () => {}),
  );
  await assert.rejects(within(readAll(broken), 5000, "the stream"));
  assert.equal(shared.listeners(), 0);
  const cancelled = channelStream(
    "count",
    undefined,
    shared.controller.signal,
    (attempt) => attempt(connectionOf([1, 2], []), "count", [], {}, () => {}),
  );
  await cancelled.cancel();
  assert.equal(shared.listeners(), 0);
});

Deno.test("streamThroughChannel(): one call, never hedged, no timeout unless given, the stream's signal, and not idempotent with input", async () => {
  const calls: [
    string,
    unknown[],
    ChannelCallOptions & { [STREAM_ATTEMPT]?: StreamAttempt },
  ][] = [];
  const channel = {
    call(method: string, params: unknown[], options: ChannelCallOptions) {
      calls.push([method, params, options]);
      const attempt =
        (options as { [STREAM_ATTEMPT]: StreamAttempt })[STREAM_ATTEMPT];
      return attempt(
        connectionOf(["x"], []),
        method,
        params,
        options,
        () => {},
      );
    },
  };
  const caller = new AbortController();
  const items = await within(
    readAll(streamThroughChannel(channel, "tail", [1], {
      signal: caller.signal,
      metadata: { k: "v" },
      idempotent: true,
      waitForReady: true,
    })),
    5000,
    "the stream",
  );
  assert.deepEqual(items, ["x"]);
  const [method, params, options] = calls[0]!;
  assert.deepEqual([method, params], ["tail", [1]]);
  assert.equal(options.timeout, Infinity);
  assert.equal(options.hedge, false);
  assert.equal(options.idempotent, true);
  assert.equal(options.waitForReady, true);
  assert.deepEqual(options.metadata, { k: "v" });
  assert.ok(options.signal instanceof AbortSignal);
  assert.notEqual(options.signal, caller.signal, "the stream's own signal");
  assert.equal(typeof options[STREAM_ATTEMPT], "function");
  assert.ok(!("input" in options));

  const input = new ReadableStream({ start: (c) => c.close() });
  await within(
    readAll(streamThroughChannel(channel, "upload", [], {
      input,
      idempotent: true,
      timeout: 250,
    })),
    5000,
    "the upload",
  );
  const [, , upload] = calls[1]!;
  assert.equal(upload.timeout, 250);
  assert.equal(upload.idempotent, false, "input cannot be replayed");
  assert.ok(!("input" in upload));
  await within(
    readAll(streamThroughChannel(channel, "tail", [], {})),
    5000,
    "a stream without options",
  );
  assert.ok(!("idempotent" in calls[2]![2]));
});
