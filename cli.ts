/**
 * For operators and developers at a shell (and scripts, through
 * {@linkcode main}): `zkrpc`, the command line for a zkrpc registry in
 * ZooKeeper, and a trace viewer.
 *
 * - `zkrpc ls [SERVICE]`: services and their servers with registered data
 * - `zkrpc watch SERVICE`: joins and leaves as they happen
 * - `zkrpc call SERVICE METHOD [JSON-ARG...]`: one call, the result as JSON
 *   (the argument count is checked against the method's declaration first)
 * - `zkrpc describe SERVICE`: the methods a server exposes, with their
 *   declared parameter counts, its protocol version, codec and metadata
 * - `zkrpc health SERVICE`: each registered server's health (serving or not)
 * - `zkrpc traces`: a loopback OpenTelemetry receiver (OTLP/HTTP JSON) that
 *   prints each trace as a tree of spans (needs only `--allow-net=127.0.0.1`)
 *
 * Global flags: `--zookeeper` (default `$ZOOKEEPER_HOSTS`, else
 * `127.0.0.1:2181`), `--root` (default `/rpc`), `--timeout`, `--json`,
 * `--ca FILE` (trust a private CA for TLS services; or `DENO_CERT=FILE`)
 * and `--help` on every command. Everything printed that came from
 * ZooKeeper or a server has its control characters escaped and each field
 * capped at 200 characters. Exit codes: 0 ok, 1 remote error, 2 usage,
 * 3 ZooKeeper unreachable, 4 unknown service or no servers, 5 call failed
 * (deadline, connection), 130 a second Ctrl-C while `watch` stops. The whole
 * reference: `docs/cli.md`.
 *
 * Flags are parsed with `node:util` `parseArgs` (Deno ships it; no
 * dependency on `@std/cli`).
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=ZOOKEEPER_HOSTS cli.ts ls
 * deno run --allow-net=127.0.0.1 --allow-env=ZOOKEEPER_HOSTS cli.ts call calculator divide 10 2
 * deno install -g -n zkrpc --allow-net --allow-env=ZOOKEEPER_HOSTS --allow-read jsr:@zkrpc/zkrpc/cli
 * ```
 *
 * Permissions: `--allow-net` for ZooKeeper and the servers it lists (narrow
 * it to their hosts, e.g. `--allow-net=127.0.0.1`), `--allow-env=ZOOKEEPER_HOSTS`
 * to read the default connection string (optional), `--allow-read=FILE` for
 * `--ca FILE`.
 *
 * @example Call a method from a script
 * ```ts ignore
 * import { main } from "@zkrpc/zkrpc/cli";
 *
 * const code = await main(["call", "calculator", "divide", "10", "2"]);
 * if (code !== 0) console.error(`zkrpc call failed with exit code ${code}`);
 * ```
 *
 * @module
 */

import { call, CALL_HELP } from "./src/cli/call.ts";
import { describe, DESCRIBE_HELP } from "./src/cli/describe.ts";
import { health, HEALTH_HELP } from "./src/cli/health.ts";
import { ls, LS_HELP } from "./src/cli/ls.ts";
import { watch, WATCH_HELP } from "./src/cli/watch.ts";
import { traces, TRACES_HELP } from "./src/cli/traces.ts";
import {
  CliError,
  EXIT_HELP,
  ExitCode,
  GLOBAL_HELP,
  printError,
} from "./src/cli/_shared.ts";
import { printable, printableMessage } from "./src/_printable.ts";

export { ExitCode, type ExitCodeValue } from "./src/cli/_shared.ts";

const HELP = `zkrpc: inspect and call zkrpc services registered in ZooKeeper

Usage: zkrpc COMMAND [ARGS...] [options]

Commands:
  ls [SERVICE]                  list services and their servers
  watch SERVICE                 print servers joining and leaving
  call SERVICE METHOD [ARG...]  call a method, print the result as JSON
  describe SERVICE              list a server's methods and parameter counts
  health SERVICE                each server's health (serving / not-serving)
  traces                        receive OpenTelemetry traces, print span trees
  help [COMMAND]                show help

Examples:
  zkrpc ls
  zkrpc watch calculator
  zkrpc call calculator divide 10 2
  zkrpc describe calculator
  zkrpc health calculator
  ZOOKEEPER_HOSTS=zk1:2181,zk2:2181/prod zkrpc ls --json

${GLOBAL_HELP}

${EXIT_HELP}`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  ls,
  watch,
  call,
  describe,
  health,
  traces,
};

const HELPS: Record<string, string> = {
  ls: LS_HELP,
  watch: WATCH_HELP,
  call: CALL_HELP,
  describe: DESCRIBE_HELP,
  health: HEALTH_HELP,
  traces: TRACES_HELP,
};

/**
 * Runs the `zkrpc` command line with `args` (what follows the program name)
 * and returns the exit code instead of exiting. Output goes to
 * `console.log` (results) and `console.error` (errors, notes).
 *
 * @param args The command and its arguments, e.g. `["ls", "calculator"]`.
 * @returns The exit code: one of {@linkcode ExitCode}'s values.
 *
 * @example Show the help
 * ```ts
 * import { main } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["--help"]), 0);
 * assert.equal(await main(["frobnicate"]), 2);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (
    command === undefined || command === "--help" || command === "-h" ||
    (command === "help" && rest[0] === undefined)
  ) {
    console.log(HELP);
    return command === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  if (command === "help") {
    const help = HELPS[rest[0] as string];
    if (help === undefined) return unknownCommand(rest[0] as string);
    console.log(help);
    return ExitCode.Ok;
  }
  const run = COMMANDS[command];
  if (run === undefined) return unknownCommand(command);
  try {
    return await run(rest);
  } catch (error) {
    if (error instanceof CliError) {
      console.error(`zkrpc: ${printableMessage(error.message)}`);
      if (error.hint !== undefined) printError(error.hint);
      return error.exitCode;
    }
    printError(`zkrpc: ${command} failed: ${(error as Error)?.stack ?? error}`);
    return ExitCode.RemoteError;
  }
}

function unknownCommand(command: string): number {
  console.error(
    `zkrpc: Cannot run "${
      printable(command)
    }": unknown command; expected ls, watch, call, describe, health or traces`,
  );
  console.error('Run "zkrpc --help" for usage.');
  return ExitCode.Usage;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
