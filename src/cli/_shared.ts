/**
 * What every `zkrpc` command shares: exit codes, the error that carries one,
 * global options, duration parsing and the ZooKeeper connection.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { isZooKeeperError, ZooKeeperSession } from "../zookeeper/session.ts";
import { SessionKeeper } from "../zookeeper/keeper.ts";
import { servicePath } from "../discovery/service_path.ts";
import {
  defaultZooKeeperHosts,
  parseConnectionString,
} from "../zookeeper/config.ts";
import { MESSAGE_LIMIT, printable, printableJson } from "../_printable.ts";

/**
 * The exit codes of the `zkrpc` command line.
 *
 * @example Tell "no servers" from "ZooKeeper down" in a script
 * ```ts
 * import { ExitCode, main } from "@zkrpc/zkrpc/cli";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ExitCode.NoServers, 4);
 * assert.equal(await main(["ls", "--no-such-flag"]), ExitCode.Usage);
 * ```
 */
export const ExitCode = {
  /** Everything worked. */
  Ok: 0,
  /** The remote handler threw (or the method does not exist). */
  RemoteError: 1,
  /** Wrong command, flag or argument. */
  Usage: 2,
  /** ZooKeeper did not answer within `--timeout`. */
  ZooKeeperUnreachable: 3,
  /** The service does not exist or has no servers. */
  NoServers: 4,
  /** The call did not complete: deadline, connection or protocol failure. */
  CallFailed: 5,
} as const;

/**
 * One of the values of {@linkcode ExitCode}.
 *
 * @example Describing an exit code
 * ```ts
 * import { ExitCode } from "@zkrpc/zkrpc/cli";
 * import type { ExitCodeValue } from "@zkrpc/zkrpc/cli";
 * import assert from "node:assert/strict";
 *
 * const describe = (code: ExitCodeValue): string =>
 *   code === ExitCode.Ok ? "ok" : `failed with ${code}`;
 * assert.equal(describe(ExitCode.NoServers), "failed with 4");
 * ```
 */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** A failure that ends the command with a message and an exit code. */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: ExitCodeValue;
  /** Extra lines printed after the message (hints). */
  readonly hint: string | undefined;

  /**
   * @param exitCode The process exit code.
   * @param message What failed, std style: `Cannot ...: detail`.
   * @param hint An optional hint printed after the message.
   */
  constructor(exitCode: ExitCodeValue, message: string, hint?: string) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/** Options every command accepts. */
export interface GlobalOptions {
  /** ZooKeeper connection string. */
  zookeeper: string;
  /** Root of the registry. */
  root: string;
  /** Timeout in ms for ZooKeeper and for a call. */
  timeout: number;
  /** Machine-readable output. */
  json: boolean;
  /** PEM certificates of the CAs to trust for TLS services (`--ca`). */
  caCerts: string[] | undefined;
}

/** Flags every command accepts, in `parseArgs` form. */
export const GLOBAL_FLAGS = {
  zookeeper: { type: "string" },
  root: { type: "string", default: "/rpc" },
  timeout: { type: "string", default: "5s" },
  json: { type: "boolean", default: false },
  ca: { type: "string", multiple: true },
  cert: { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Help text of the global flags. */
export const GLOBAL_HELP = `Global options:
  --zookeeper HOSTS   ZooKeeper connection string, host:port[,host:port...][/chroot]
                      (default: $ZOOKEEPER_HOSTS, else 127.0.0.1:2181)
  --root PATH         registry root (default /rpc)
  --timeout DURATION  how long to wait for ZooKeeper and for a call: 500ms, 5s, 1m
                      or plain milliseconds (default 5s)
  --json              machine-readable output
  --ca FILE           trust the CA certificate(s) in FILE (PEM) for TLS services,
                      besides the system's; repeatable (alternative: DENO_CERT=FILE)
  --cert FILE, --key FILE
                      reserved for client certificates: not supported yet
  -h, --help          show help

Everything printed from ZooKeeper or a server has its control characters
escaped (\\x1b, \\u202e...) and each field capped at 200 characters.`;

/** Exit codes, as the help text lists them. */
export const EXIT_HELP = `Exit codes:
  0  ok
  1  the remote handler threw (the error's name and message go to stderr)
  2  wrong command, flag or argument
  3  ZooKeeper unreachable
  4  unknown service, or no servers registered for it
  5  the call did not complete (deadline exceeded, connection failed)
  130 a second Ctrl-C while stopping (watch)`;

/** What {@linkcode parseCommandArgs} returns. */
export interface ParsedArgs {
  /** Flag values by name. */
  values: Record<string, string | string[] | boolean | undefined>;
  /** Arguments that are not flags. */
  positionals: string[];
}

/**
 * Parses a command's arguments with `node:util` `parseArgs`, turning its
 * errors into usage errors.
 *
 * @param command The command, for messages.
 * @param args The arguments after the command name.
 * @param options The command's own flags.
 * @returns The values and positionals.
 */
export function parseCommandArgs(
  command: string,
  args: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...GLOBAL_FLAGS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (error) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot run "zkrpc ${command}": ${(error as Error).message}`,
      `Run "zkrpc ${command} --help" for usage.`,
    );
  }
}

/**
 * Parses a duration: `250ms`, `5s`, `2m`, or plain milliseconds.
 *
 * @param flag The flag's name, for messages.
 * @param text What the user wrote.
 * @returns Milliseconds.
 */
export function parseDuration(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (match === null) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot parse --${flag}: expected a duration such as 500ms, 5s or 1m, got "${text}"`,
    );
  }
  const unit = match[2] === "s" ? 1000 : match[2] === "m" ? 60_000 : 1;
  return Number(match[1]) * unit;
}

/**
 * Parses a count: a whole number of 1 or more.
 *
 * @param flag The flag's name, for messages.
 * @param text What the user wrote.
 * @returns The number.
 */
export function parseCount(flag: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot parse --${flag}: expected a whole number of 1 or more, got "${text}"`,
    );
  }
  return value;
}

/**
 * The flags of the commands that run until stopped (`watch`, `traces`):
 * `--count N` and `--duration DURATION`.
 */
export const STOP_FLAGS = {
  count: { type: "string" },
  duration: { type: "string" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/**
 * Reads {@linkcode STOP_FLAGS} out of parsed values.
 *
 * @param values The values from {@linkcode parseCommandArgs}.
 * @returns `count` (`Infinity` when not given) and `duration` in ms
 * (`undefined` when not given).
 */
export function parseStopFlags(
  values: ParsedArgs["values"],
): { count: number; duration: number | undefined } {
  return {
    count: values.count === undefined
      ? Infinity
      : parseCount("count", values.count as string),
    duration: values.duration === undefined
      ? undefined
      : parseDuration("duration", values.duration as string),
  };
}

/**
 * Reads the global options out of parsed values.
 *
 * @param values The values from {@linkcode parseCommandArgs}.
 * @returns The options.
 */
export function globalOptions(values: ParsedArgs["values"]): GlobalOptions {
  const given = {
    zookeeper: values.zookeeper as string | undefined,
    root: values.root as string,
    timeout: values.timeout as string,
    json: values.json === true,
  };
  const root = given.root.replace(/\/+$/, "");
  if (!root.startsWith("/")) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot parse --root: expected an absolute path such as /rpc, got "${given.root}"`,
    );
  }
  const timeout = parseDuration("timeout", given.timeout);
  if (timeout <= 0) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot parse --timeout: expected more than 0, got "${given.timeout}"`,
    );
  }
  if (values.cert !== undefined || values.key !== undefined) {
    throw new CliError(
      ExitCode.Usage,
      "Cannot use --cert or --key: client certificates are not supported yet (zkrpc servers do not ask for one, so it would authenticate nothing)",
      "--ca FILE (or DENO_CERT=FILE) is what calling a TLS service with a private CA needs.",
    );
  }
  const caCerts = values.ca === undefined
    ? undefined
    : (values.ca as string[]).map(readCa);
  const zookeeper = given.zookeeper ?? defaultZooKeeperHosts();
  try {
    parseConnectionString(zookeeper);
  } catch (error) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot parse --zookeeper: ${withoutPrefix(error)}`,
      given.zookeeper === undefined
        ? "It came from $ZOOKEEPER_HOSTS."
        : undefined,
    );
  }
  return {
    zookeeper,
    root,
    timeout,
    json: given.json,
    caCerts,
  };
}

/** Reads one `--ca` file: PEM certificates. */
function readCa(file: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot read --ca "${file}": ${
        error instanceof Deno.errors.NotFound
          ? "no such file"
          : error instanceof Deno.errors.NotCapable ||
              error instanceof Deno.errors.PermissionDenied
          ? "no read permission"
          : (error as Error).message
      }`,
      error instanceof Deno.errors.NotCapable
        ? `Run with --allow-read=${file}.`
        : undefined,
    );
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot read --ca "${file}": not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
    );
  }
  return text;
}

/**
 * Checks a service name the way the registry does.
 *
 * @param command The command, for messages.
 * @param service The name given.
 * @returns The name.
 */
export function checkService(command: string, service: string): string {
  try {
    servicePath({ service });
  } catch (error) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot ${command}: ${
        (error as Error).message.replace(/^Cannot find service path: /, "")
      }`,
    );
  }
  return service;
}

/**
 * The one SERVICE argument of `watch` and `describe`, checked.
 *
 * @param command The command (`watch`), for messages.
 * @param positionals The arguments that are not flags.
 * @returns The service name.
 */
export function oneService(command: string, positionals: string[]): string {
  if (positionals.length !== 1) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot ${command}: expected one SERVICE, got ${positionals.length}`,
      `Run "zkrpc ${command} --help" for usage.`,
    );
  }
  return checkService(command, positionals[0] as string);
}

/** What {@linkcode parseServiceCommand} returns. */
export interface ServiceCommand {
  /** The global options. */
  options: GlobalOptions;
  /** The one SERVICE argument, checked. */
  service: string;
  /** Flag values by name, the command's own flags included. */
  values: ParsedArgs["values"];
}

/**
 * The start of every command on one service (`watch`, `describe`,
 * `health`): parses the arguments, prints `help` for `--help`, reads the
 * global options and the one SERVICE argument.
 *
 * @param command The command, for messages.
 * @param args The arguments after the command name.
 * @param help The command's help text.
 * @param flags The command's own flags.
 * @returns The parsed command, or `undefined` when it printed the help.
 */
export function parseServiceCommand(
  command: string,
  args: string[],
  help: string,
  flags: NonNullable<ParseArgsConfig["options"]> = {},
): ServiceCommand | undefined {
  const { values, positionals } = parseCommandArgs(command, args, flags);
  if (values.help) {
    console.log(help);
    return undefined;
  }
  return {
    options: globalOptions(values),
    service: oneService(command, positionals),
    values,
  };
}

/**
 * The ZooKeeper path of a service under the `--root` option.
 *
 * @param options The parsed global options.
 * @param service A checked service name.
 * @returns E.g. `/rpc/calculator`.
 */
export function servicePathOf(options: GlobalOptions, service: string): string {
  return servicePath({ root: options.root || "/", service });
}

function unreachable(
  what: string,
  options: GlobalOptions,
  reason: unknown,
): CliError {
  return new CliError(
    ExitCode.ZooKeeperUnreachable,
    `Cannot ${what}: ZooKeeper at ${options.zookeeper} is unreachable (no session within ${options.timeout} ms${
      reason instanceof Error ? `; last attempt: ${reason.message}` : ""
    })`,
    "Check --zookeeper (or $ZOOKEEPER_HOSTS) and that ZooKeeper runs: echo ruok | nc HOST PORT",
  );
}

/**
 * Opens one ZooKeeper session for a one-shot command.
 *
 * @param what What the command is doing, for messages (`list services`).
 * @param options The global options.
 * @returns The connected session.
 */
export async function openSession(
  what: string,
  options: GlobalOptions,
): Promise<ZooKeeperSession> {
  try {
    return await ZooKeeperSession.connect(options.zookeeper, {
      connectTimeout: options.timeout,
      operationTimeout: options.timeout,
    });
  } catch (error) {
    throw translateZooKeeperError(what, options, error);
  }
}

/**
 * Opens a {@linkcode SessionKeeper} and waits for its first session.
 *
 * @param what What the command is doing, for messages.
 * @param options The global options.
 * @returns The keeper and its session.
 */
export async function openKeeper(
  what: string,
  options: GlobalOptions,
): Promise<{ keeper: SessionKeeper; session: ZooKeeperSession }> {
  let keeper: SessionKeeper;
  try {
    keeper = new SessionKeeper(options.zookeeper, {
      connectTimeout: options.timeout,
      operationTimeout: options.timeout,
    });
  } catch (error) {
    throw translateZooKeeperError(what, options, error);
  }
  try {
    const session = await keeper.current(AbortSignal.timeout(options.timeout));
    return { keeper, session };
  } catch (error) {
    const reason = keeper.lastError;
    await keeper.close();
    throw translateZooKeeperError(what, options, error, reason);
  }
}

/**
 * Turns a ZooKeeper failure into a {@linkcode CliError}.
 *
 * @param what What the command was doing.
 * @param options The global options.
 * @param error What was thrown.
 * @param reason Why ZooKeeper could not be reached, when known (else the
 * connect timeout's cause).
 * @returns The error to report.
 */
export function translateZooKeeperError(
  what: string,
  options: GlobalOptions,
  error: unknown,
  reason?: Error,
): Error {
  if (error instanceof CliError) return error;
  if (error instanceof TypeError || error instanceof RangeError) {
    return new CliError(
      ExitCode.Usage,
      `Cannot ${what}: invalid --zookeeper "${options.zookeeper}": ${
        withoutPrefix(error)
      }`,
    );
  }
  if (
    (error instanceof DOMException && error.name === "TimeoutError") ||
    isZooKeeperError(error, "TIMEOUT") ||
    isZooKeeperError(error, "CONNECTION_LOSS") ||
    isZooKeeperError(error, "CLOSED")
  ) {
    return unreachable(
      what,
      options,
      reason ?? (isZooKeeperError(error, "TIMEOUT") ? error.cause : undefined),
    );
  }
  if (isZooKeeperError(error)) {
    return new CliError(
      ExitCode.ZooKeeperUnreachable,
      `Cannot ${what}: ${error.message}`,
    );
  }
  return error as Error;
}

/** A library message without its "Cannot connect to ZooKeeper: " start. */
function withoutPrefix(error: unknown): string {
  return (error as Error).message.replace(/^Cannot [^:]*: /, "");
}

/**
 * Formats how long ago an ISO time was, e.g. `3m12s`.
 *
 * @param iso An ISO 8601 time.
 * @returns The age, or `?` when the time is not valid.
 */
export function age(iso: unknown): string {
  const then = typeof iso === "string" ? Date.parse(iso) : NaN;
  if (Number.isNaN(then)) return "?";
  let seconds = Math.max(0, Math.round((Date.now() - then) / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (seconds >= size || parts.length > 0) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  parts.push(`${seconds}s`);
  return parts.slice(0, 2).join("");
}

/**
 * Prints each line of `text` on stderr, every line made printable (control
 * characters escaped, capped): for hints and stacks that carry data from
 * ZooKeeper or a server.
 *
 * @param text One or more lines.
 *
 * @example A hint with a hostile service name
 * ```ts
 * import { printError } from "./_shared.ts";
 *
 * printError("Known services: calc\x1b[2J\nRun zkrpc ls"); // two escaped lines
 * ```
 */
export function printError(text: string): void {
  for (const line of text.split("\n")) {
    console.error(printable(line, { max: MESSAGE_LIMIT }));
  }
}

/**
 * The most registered fields of one member printed in text output.
 *
 * @example
 * ```ts
 * import { FIELDS_SHOWN, printableFields } from "./_shared.ts";
 * import assert from "node:assert/strict";
 *
 * const many = Object.fromEntries([...Array(30)].map((_, i) => [`f${i}`, i]));
 * assert.equal(printableFields(many).length, FIELDS_SHOWN + 1);
 * ```
 */
export const FIELDS_SHOWN = 20;

/**
 * A member's registered fields as printable `key=value` texts (the value as
 * JSON), at most {@linkcode FIELDS_SHOWN} of them and a count of the rest.
 *
 * @param record The fields.
 * @returns One text per field, and `... (N more fields...)` when some are left.
 *
 * @example Escaped keys and values
 * ```ts
 * import { printableFields } from "./_shared.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(printableFields({ "z\x1b": "a\u202e", n: 1 }), [
 *   'z\\x1b="a\\u202e"',
 *   "n=1",
 * ]);
 * ```
 */
export function printableFields(record: Record<string, unknown>): string[] {
  const entries = Object.entries(record);
  const shown = entries.slice(0, FIELDS_SHOWN).map(([key, value]) =>
    `${printable(key)}=${printable(printableJson(value))}`
  );
  if (entries.length > FIELDS_SHOWN) {
    shown.push(
      `\u2026 (${
        entries.length - FIELDS_SHOWN
      } more fields; --json shows them)`,
    );
  }
  return shown;
}
