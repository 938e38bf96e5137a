/**
 * `zkrpc call <service> <method> [json-args…]`: one call through a
 * discovery channel, the result printed as JSON.
 *
 * @module
 */

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
import { jsonCodec } from "../protocol/codec.ts";
import { msgpackCodec } from "../protocol/msgpack_codec.ts";
import {
  checkService,
  CliError,
  EXIT_HELP,
  ExitCode,
  type ExitCodeValue,
  GLOBAL_HELP,
  globalOptions,
  openKeeper,
  parseCommandArgs,
  servicePathOf,
  toJson,
  translateZooKeeperError,
} from "./_shared.ts";

const CODECS = { json: jsonCodec, msgpack: msgpackCodec };

/** Help of `zkrpc call`. */
export const CALL_HELP = `Usage: zkrpc call SERVICE METHOD [ARG…] [options]

Calls METHOD on one server of SERVICE (found in ZooKeeper, chosen at random,
with failover) and prints the result as JSON on stdout. Each ARG is one JSON
value: numbers as they are, strings quoted ('"text"'), objects in single
quotes ('{"a":1}'). A handler error prints its name and message on stderr and
exits with 1; with --json it prints {"error": {...}} on stdout instead.

Examples:
  zkrpc call calculator divide 10 2
  zkrpc call calculator divide 1 0            # InvalidOperation, exit 1
  zkrpc call calculator divide -- -4 2        # or just: divide -4 2
  zkrpc call calculator greet '"Ada"' --timeout 500ms
  zkrpc call calculator divide 10 2 --codec json   # JSON on the wire

Options:
  --codec NAME   the payload codec to use: json or msgpack (default: the
                 server's choice of msgpack, json)

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
      ...(codec ? { connection: { codec } } : {}),
    });
    let result: unknown;
    try {
      result = await channel.call(method, params);
    } catch (error) {
      return report(error, options.json);
    }
    console.log(toJson(result, options.json ? undefined : 2));
    return ExitCode.Ok;
  } finally {
    await keeper.close();
  }
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

function report(error: unknown, json: boolean): number {
  const exitCode = exitCodeOf(error);
  const name = error instanceof RemoteError
    ? error.remoteName
    : (error as Error).name ?? "Error";
  const message = (error as Error).message ?? String(error);
  if (json) {
    const detail: Record<string, unknown> = { name, message, exitCode };
    if (error instanceof RemoteError && error.data !== undefined) {
      detail.data = error.data;
    }
    console.log(toJson({ error: detail }));
  } else {
    console.error(`${name}: ${message}`);
    if (error instanceof RemoteError && error.data !== undefined) {
      console.error(`data: ${toJson(error.data)}`);
    }
    if (error instanceof NoServersError) {
      console.error(
        'A crashed server stays registered until its ZooKeeper session expires; "zkrpc ls SERVICE" shows each one\'s pid and age.',
      );
    }
  }
  return exitCode;
}
