/**
 * `zkrpc call <service> <method> [json-args...]`: one call through a
 * discovery channel, the result printed as JSON.
 *
 * @module
 */

import type { DistributedChannel } from "../channel/channel.ts";
import { type Codec, jsonCodec } from "../protocol/codec.ts";
import { msgpackCodec } from "../protocol/msgpack_codec.ts";
import { DESCRIBE_METHOD, type ServiceDescription } from "../server/server.ts";
import { ZooKeeperDiscovery } from "../zookeeper/discovery.ts";
import {
  CancelledError,
  ConnectionError,
  DeadlineExceededError,
  MethodNotFoundError,
  NoServersError,
  ProtocolError,
  RemoteError,
  RpcError,
} from "../errors.ts";
import { isZooKeeperError } from "../zookeeper/session.ts";
import {
  checkService,
  CliError,
  EXIT_HELP,
  ExitCode,
  type ExitCodeValue,
  GLOBAL_HELP,
  type GlobalOptions,
  globalOptions,
  openKeeper,
  parseCommandArgs,
  parseServiceCommand,
  type ServiceCommand,
  servicePathOf,
  translateZooKeeperError,
} from "./_shared.ts";
import {
  MESSAGE_LIMIT,
  printable,
  printableJson,
  printableMessage,
} from "../_printable.ts";

const CODECS = { json: jsonCodec, msgpack: msgpackCodec };

/** Help of `zkrpc call`. */
export const CALL_HELP = `Usage: zkrpc call SERVICE METHOD [ARG...] [options]

Calls METHOD on one server of SERVICE (found in ZooKeeper, chosen at random,
with failover) and prints the result as JSON on stdout, each string capped at
200 characters ("\u2026 (N chars)"); --json prints it whole, on one line. Each ARG is one JSON
value: numbers as they are, strings quoted ('"text"'), objects in single
quotes ('{"a":1}'). A handler error prints its name and message on stderr and
exits with 1; with --json it prints {"error": {...}} on stdout instead.

Before sending, the call asks a server to describe the service (zkrpc
describe) and exits with 2, sending nothing, when fewer ARGs are given than
METHOD declares. The declared count is a minimum: parameters with a default
value or a rest parameter are optional and not counted; a TypeScript
optional parameter (b?: number) has no default at run time and counts.

Options:
  --no-check          skip the argument-count check (no describe call)
  --stream            call a streaming method: print each item as one JSON
                      line as it arrives (JSON lines); an error after some
                      items prints them, then the error (exit 1)
  --codec NAME        the payload codec: json or msgpack (default: msgpack
                      if the server has it, else json)

Examples:
  zkrpc call calculator divide 10 2
  zkrpc call calculator divide 1 0            # InvalidOperation, exit 1
  zkrpc call calculator divide -- -4 2        # or just: divide -4 2
  zkrpc call calculator greet '"Ada"' --timeout 500ms
  zkrpc call calculator divide 10 2 --codec json   # JSON on the wire
  zkrpc call counter count 3 --stream         # 0, 1, 2 on three lines

${GLOBAL_HELP}

${EXIT_HELP}`;

/**
 * Runs `zkrpc call`.
 *
 * @param args The arguments after `call`.
 * @returns The exit code.
 */
export async function call(args: string[]): Promise<number> {
  // Negative numbers are arguments, not flags: `zkrpc call calc divide -4 2`.
  const negatives = new Map<string, string>();
  const escaped = args.map((arg) => {
    if (!/^-\d/.test(arg)) return arg;
    const key = `\u0000${negatives.size}`;
    negatives.set(key, arg);
    return key;
  });
  const parsed = parseCommandArgs("call", escaped, {
    "no-check": { type: "boolean", default: false },
    stream: { type: "boolean", default: false },
    codec: { type: "string" },
  });
  const values = parsed.values;
  const positionals = parsed.positionals.map((arg) =>
    negatives.get(arg) ?? arg
  );
  if (values.help) {
    console.log(CALL_HELP);
    return ExitCode.Ok;
  }
  const options = globalOptions(values);
  const codecName = (values as { codec?: string }).codec;
  const codec = codecName === undefined
    ? undefined
    : CODECS[codecName as keyof typeof CODECS];
  if (codecName !== undefined && codec === undefined) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot call: unknown codec "${codecName}", expected json or msgpack`,
      'Run "zkrpc call --help" for usage.',
    );
  }
  const [serviceName, method, ...rawParams] = positionals;
  if (serviceName === undefined || method === undefined) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot call: expected SERVICE and METHOD, got ${
        positionals.length === 0 ? "neither" : "only SERVICE"
      }`,
      'Run "zkrpc call --help" for usage.',
    );
  }
  const service = checkService(`call method "${method}"`, serviceName);
  const params = rawParams.map((text, index) => parseParam(text, index));
  const what = `call method "${method}" of service "${service}"`;
  return await withServiceChannel(
    what,
    options,
    service,
    codec,
    async (channel) => {
      let description: ServiceDescription | undefined;
      let result: unknown;
      let describing = false;
      try {
        if (values["no-check"] !== true) {
          describing = true;
          description = await describeForCheck(channel);
          describing = false;
          checkArity(what, service, method, params.length, description);
        }
        if (values.stream === true) {
          for await (const item of channel.stream(method, params)) {
            console.log(
              printableJson(item, { max: options.json ? Infinity : 200 }),
            );
          }
          return ExitCode.Ok;
        }
        result = await channel.call(method, params);
      } catch (error) {
        if (error instanceof CliError) throw error;
        const code = report(error, options.json);
        if (describing && !options.json) {
          console.error(
            `(while asking for the argument count of "${
              printable(method)
            }"; nothing was sent; --no-check skips that)`,
          );
        }
        if (error instanceof MethodNotFoundError && description !== undefined) {
          console.error(
            `Methods of service "${service}": ${
              description.methods.map((m) => printable(m.name)).join(", ") ||
              "none"
            }`,
          );
        }
        return code;
      }
      // Escaped either way; for a terminal each string is capped, with
      // --json the result is whole (it is what was asked for).
      console.log(
        options.json
          ? printableJson(result, { max: Infinity })
          : printableJson(result, { indent: 2 }),
      );
      return ExitCode.Ok;
    },
  );
}

/**
 * Runs a command on one service through a discovery channel (`describe`,
 * `health`): parses the arguments as {@linkcode parseServiceCommand} does,
 * then runs `fn` inside {@linkcode withServiceChannel}.
 *
 * @param command The command, for messages.
 * @param args The arguments after the command name.
 * @param help The command's help text.
 * @param doing What the command does to the service, for messages
 * (`describe service "calculator"`).
 * @param fn What to do with the channel; returns the exit code.
 * @returns The exit code (0 after printing the help).
 */
export async function runOnService(
  command: string,
  args: string[],
  help: string,
  doing: (service: string) => string,
  fn: (
    channel: DistributedChannel,
    parsed: ServiceCommand & { what: string },
  ) => Promise<number>,
): Promise<number> {
  const parsed = parseServiceCommand(command, args, help);
  if (parsed === undefined) return ExitCode.Ok;
  const what = doing(parsed.service);
  return await withServiceChannel(
    what,
    parsed.options,
    parsed.service,
    undefined,
    (channel) => fn(channel, { ...parsed, what }),
  );
}

/**
 * Opens a ZooKeeper session, checks that the service has registered
 * servers, and runs `fn` with a discovery channel to them.
 *
 * @param what What the command is doing, for messages.
 * @param options The global options.
 * @param service A checked service name.
 * @param codec The payload codec to insist on, or undefined for the default
 * negotiation.
 * @param fn What to do with the channel; returns the exit code.
 * @returns The exit code from `fn`.
 */
export async function withServiceChannel(
  what: string,
  options: GlobalOptions,
  service: string,
  codec: Codec | undefined,
  fn: (channel: DistributedChannel) => Promise<number>,
): Promise<number> {
  const { keeper, session } = await openKeeper(what, options);
  try {
    const path = servicePathOf(options, service);
    let members: string[];
    try {
      members = await session.getChildren(path);
    } catch (error) {
      if (!isZooKeeperError(error, "NO_NODE")) {
        throw translateZooKeeperError(what, options, error);
      }
      throw new CliError(
        ExitCode.NoServers,
        `Cannot ${what}: no such service under ${options.root} on ${options.zookeeper}`,
        'Run "zkrpc ls" to see the registered services.',
      );
    }
    if (members.length === 0) {
      throw new CliError(
        ExitCode.NoServers,
        `Cannot ${what}: no servers registered`,
      );
    }
    await using channel = new ZooKeeperDiscovery({
      zookeeper: keeper,
      root: options.root || "/",
    }).channel(service, {
      timeout: options.timeout,
      onWarning: (message) =>
        console.error(`zkrpc: ${printableMessage(message)}`),
      onInvalidMember: (id, error) =>
        console.error(
          `zkrpc: skipping member ${printable(id)}: ${printableMessage(error)}`,
        ),
      connection: {
        ...(codec ? { codec } : {}),
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
      },
    });
    return await fn(channel);
  } finally {
    await keeper.close();
  }
}

/**
 * Asks one server of the channel's service for its description.
 *
 * @param channel The channel.
 * @returns The description, or `undefined` when the server predates
 * `zkrpc.describe` (it answers "method not found").
 */
export async function describeService(
  channel: DistributedChannel,
): Promise<ServiceDescription | undefined> {
  let description: unknown;
  try {
    description = await channel.call(DESCRIBE_METHOD, []);
  } catch (error) {
    if (error instanceof MethodNotFoundError) return undefined;
    throw error;
  }
  const methods = (description as ServiceDescription | null)?.methods;
  if (
    !Array.isArray(methods) ||
    !methods.every((m) => typeof m?.name === "string")
  ) {
    throw new ProtocolError(
      `Cannot describe service "${channel.service}": the server's description has no list of methods`,
    );
  }
  return description as ServiceDescription;
}

/**
 * The description for `call`'s argument check, or `undefined` to skip it.
 * A server that answers nothing in time is reported at once (the call
 * itself would time out as well); other failures (no live server, a
 * connection lost) leave the check out and the call reports them with its
 * own method name.
 */
async function describeForCheck(
  channel: DistributedChannel,
): Promise<ServiceDescription | undefined> {
  try {
    return await describeService(channel);
  } catch (error) {
    if (error instanceof DeadlineExceededError) throw error;
    return undefined;
  }
}

function checkArity(
  what: string,
  service: string,
  method: string,
  given: number,
  description: ServiceDescription | undefined,
): void {
  const declared = description?.methods.find((m) => m.name === method);
  if (declared === undefined || given >= declared.params) return;
  throw new CliError(
    ExitCode.Usage,
    `Cannot ${what}: missing argument: "${method}" takes at least ${
      printable(declared.params)
    } argument${
      declared.params === 1 ? "" : "s"
    }, got ${given} (nothing was sent)`,
    `See "zkrpc describe ${service}"; --no-check skips this check.`,
  );
}

function parseParam(text: string, index: number): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot parse argument ${index + 1}: not JSON: ${JSON.stringify(text)}: ${
        (error as Error).message
      }`,
      `Each argument is one JSON value; quote strings: '"${
        text.replaceAll("'", "")
      }"'`,
    );
  }
}

function exitCodeOf(error: unknown): ExitCodeValue {
  if (error instanceof RemoteError || error instanceof MethodNotFoundError) {
    return ExitCode.RemoteError;
  }
  if (error instanceof NoServersError) return ExitCode.NoServers;
  if (
    error instanceof DeadlineExceededError ||
    error instanceof CancelledError ||
    error instanceof ConnectionError ||
    error instanceof ProtocolError ||
    error instanceof RpcError ||
    error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionReset
  ) {
    return ExitCode.CallFailed;
  }
  return ExitCode.RemoteError;
}

function errorName(error: unknown): string {
  return error instanceof RemoteError
    ? error.remoteName
    : (error as Error)?.name ?? "Error";
}

/**
 * Prints a failed call's error (stderr, or stdout as JSON with `--json`).
 *
 * @param error What the call rejected with.
 * @param json Whether to print JSON.
 * @returns The exit code for it.
 */
export function report(error: unknown, json: boolean): number {
  const exitCode = exitCodeOf(error);
  const name = errorName(error);
  const message = error instanceof RemoteError
    ? error.remoteMessage
    : (error as Error)?.message ?? String(error);
  if (json) {
    const detail: Record<string, unknown> = { name, message, exitCode };
    if (error instanceof RemoteError && error.data !== undefined) {
      detail.data = error.data;
    }
    if (error instanceof RemoteError && error.fields !== undefined) {
      detail.fields = error.fields;
    }
    console.log(printableJson({ error: detail }, { max: MESSAGE_LIMIT }));
  } else {
    console.error(`${printable(name)}: ${printableMessage(message)}`);
    if (error instanceof RemoteError && error.data !== undefined) {
      console.error(`data: ${printableMessage(printableJson(error.data))}`);
    }
    if (error instanceof RemoteError && error.fields !== undefined) {
      console.error(
        `fields: ${printableMessage(printableJson(error.fields))}`,
      );
    }
    const hint = hintFor(error);
    if (hint !== undefined) console.error(hint);
  }
  return exitCode;
}

/** The messages of an error and of its causes, outermost first. */
function causeMessages(error: unknown): string {
  const messages: string[] = [];
  for (let e = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    messages.push(e.message);
    e = e.cause;
  }
  return messages.join("\n");
}

/**
 * The hint for connection failures whose messages are `messages`, when TLS
 * is their cause: a TLS mismatch or an untrusted certificate is not a
 * crashed server.
 *
 * @param messages Error messages (and their causes'), one per line.
 * @returns The hint, or `undefined` when TLS is not the cause.
 *
 * @example
 * ```ts
 * import { tlsHint } from "./call.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(
 *   tlsHint("TLS handshake failed: the server's certificate is not trusted")!,
 *   /--ca FILE/,
 * );
 * assert.equal(tlsHint("Connection refused"), undefined);
 * ```
 */
export function tlsHint(messages: string): string | undefined {
  if (/certificate is not trusted/.test(messages)) {
    return "The servers use TLS with a certificate this machine does not trust: pass the CA that signed it with --ca FILE (or set DENO_CERT=FILE).";
  }
  if (/does not speak TLS/.test(messages)) {
    return "The servers are registered with tls: true but answer in plain TCP: check how they were started (serve({ tls })).";
  }
  if (/answered with TLS/.test(messages)) {
    return "The servers serve TLS but are registered without tls: true: check their registrar.";
  }
  if (/certificate is not valid for|certificate has expired/.test(messages)) {
    return "The servers' TLS certificate does not fit their registered host name or is out of date: fix the certificate or the registered host (--ca does not help).";
  }
  if (/TLS handshake failed/.test(messages)) {
    return "The TLS handshake with the servers failed (a TLS problem, not a crashed server): see the error above.";
  }
  return undefined;
}

/** The hint for a failed call, matching its cause. */
function hintFor(error: unknown): string | undefined {
  return tlsHint(causeMessages(error)) ??
    (error instanceof NoServersError
      ? 'A crashed server stays registered until its ZooKeeper session expires; "zkrpc ls SERVICE" shows each one\'s pid and age.'
      : undefined);
}
