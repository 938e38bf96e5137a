/**
 * `zkrpc watch <service>`: the service's membership changes as they happen.
 *
 * @module
 */

import type { MemberData } from "../discovery/member.ts";
import type { MembershipChange } from "../discovery/membership.ts";
import { ZooKeeperDiscovery } from "../zookeeper/discovery.ts";
import {
  EXIT_HELP,
  ExitCode,
  GLOBAL_HELP,
  openKeeper,
  parseServiceCommand,
  parseStopFlags,
  servicePathOf,
  STOP_FLAGS,
} from "./_shared.ts";
import { printable, printableJson, printableMessage } from "../_printable.ts";
import { setLongTimeout } from "../_async.ts";

/** Help of `zkrpc watch`. */
export const WATCH_HELP = `Usage: zkrpc watch SERVICE [options]

Prints the servers of SERVICE, then every server that joins (+) or leaves (-)
as ZooKeeper reports it, and the discovery state when it changes (while
ZooKeeper is unreachable the last known list is kept). Runs until Ctrl-C,
--count changes or --duration; a second Ctrl-C while it closes its ZooKeeper
session exits at once with 130. A service that does not exist yet is waited
for (a note goes to stderr). With --json, prints one JSON object per line.

Options:
  --count N           stop after N joins or leaves
  --duration DURATION stop after this long: 500ms, 30s, 5m

Examples:
  zkrpc watch calculator
  zkrpc watch calculator --json --count 1   # wait for the next change

${GLOBAL_HELP}

${EXIT_HELP}`;

function now(): string {
  return new Date().toISOString().slice(11, 23);
}

function describe(id: string, member: MemberData): string {
  return `${printable(id)}  ${printable(member.host)}:${
    printable(member.port)
  }  pid ${printable(member.pid ?? "?")}`;
}

/**
 * Runs `zkrpc watch`.
 *
 * @param args The arguments after `watch`.
 * @returns The exit code.
 */
export async function watch(args: string[]): Promise<number> {
  const parsed = parseServiceCommand("watch", args, WATCH_HELP, {
    ...STOP_FLAGS,
  });
  if (parsed === undefined) return ExitCode.Ok;
  const { options, service, values } = parsed;
  const { count, duration } = parseStopFlags(values);
  const path = servicePathOf(options, service);
  const what = `watch service "${service}"`;
  const { keeper, session } = await openKeeper(what, options);
  const stop = new AbortController();
  // Ctrl-C stops gracefully; a second one while that runs exits at once.
  const onSignal = () => {
    if (stop.signal.aborted) Deno.exit(130);
    console.error(`${now()}  stopping (Ctrl-C again to exit at once)`);
    stop.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  const timer = duration === undefined
    ? undefined
    : setLongTimeout(() => stop.abort(), duration); // a --duration of 30 days too
  const emit = (event: Record<string, unknown>, text: string) => {
    if (options.json) {
      console.log(
        printableJson({ time: new Date().toISOString(), ...event }),
      );
    } else {
      console.log(`${now()}  ${text}`);
    }
  };
  const membership = new ZooKeeperDiscovery({
    zookeeper: keeper,
    root: options.root || "/",
  }).membership(service, {
    onInvalidMember: (id, error) =>
      console.error(
        `${now()}  skipping member ${printable(id)}: ${
          printableMessage(error)
        }`,
      ),
  });
  const known = new Map<string, MemberData>();
  let changes = 0;
  let snapshot = false;
  let reported = membership.state;
  const onState = () => {
    const state = membership.state;
    const previous = reported;
    reported = state;
    if (!snapshot && state === "fresh") {
      snapshot = true;
      for (const [id, member] of membership.members) known.set(id, member);
      const members = [...known].map(([id, member]) => ({ id, member }));
      emit(
        { type: "members", service, path, members },
        `${service}: ${known.size} server${known.size === 1 ? "" : "s"}${
          options.json ? "" : " (Ctrl-C to stop)"
        }`,
      );
      if (!options.json) {
        for (const { id, member } of members) {
          console.log(`${now()}    ${describe(id, member)}`);
        }
      }
      return;
    }
    // "fresh" again without a loss in between confirms nothing new.
    if (
      !snapshot || state === "closed" ||
      (state === "fresh" && previous === "fresh")
    ) {
      return;
    }
    const detail = state === "disconnected"
      ? `ZooKeeper unreachable: keeping the last known ${known.size} server(s)`
      : state === "resyncing"
      ? "ZooKeeper session expired: reading the list again"
      : state === "fresh"
      ? "ZooKeeper reachable again: list confirmed"
      : state;
    emit({ type: "state", state }, `! ${detail}`);
  };
  const onChange = (event: Event) => {
    if (!snapshot) return;
    const { added, removed } = (event as CustomEvent<MembershipChange>).detail;
    for (const id of removed) {
      const member = known.get(id);
      if (member === undefined) continue;
      known.delete(id);
      changes++;
      emit(
        { type: "removed", id, member },
        `- ${describe(id, member)}  (${known.size} left)`,
      );
    }
    for (const [id, member] of added) {
      if (known.has(id)) continue;
      known.set(id, member);
      changes++;
      emit(
        { type: "added", id, member },
        `+ ${describe(id, member)}  (${known.size} now)`,
      );
    }
    if (changes >= count) stop.abort();
  };
  membership.addEventListener("state", onState);
  membership.addEventListener("change", onChange);
  try {
    if (await session.exists(path).catch(() => undefined) === undefined) {
      console.error(
        `${now()}  service "${service}" does not exist yet under ${
          printable(options.root)
        }: waiting for it`,
      );
    }
    if (!snapshot && membership.state === "fresh") onState();
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      stop.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    return ExitCode.Ok;
  } finally {
    timer?.clear();
    stop.abort(); // a Ctrl-C from here on exits at once
    membership.removeEventListener("state", onState);
    membership.removeEventListener("change", onChange);
    try {
      await membership.close();
      await keeper.close();
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
    }
  }
}
