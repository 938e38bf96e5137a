/**
 * Running the `zkrpc` command line as a subprocess, for the CLI tests.
 *
 * @module
 */

import { within } from "./_wait.ts";
import {
  denoCommand,
  type DenoCommandOptions,
  type DenoOutput,
  runDeno,
} from "../src/testing/child_process.ts";

const ROOT = new URL("../", import.meta.url);

/** What a finished `zkrpc` run printed and returned. */
export type Run = DenoOutput;

/** How to run `zkrpc`. */
export interface ZkrpcOptions {
  /** Extra environment variables (`NO_COLOR=1` is always set). */
  env?: Record<string, string>;
  /** `deno run` permission flags. @default ["--allow-net=127.0.0.1", "--allow-env"] */
  permissions?: string[];
  /** Kill the run after this many ms (a hang fails the test). @default 60000 */
  timeout?: number;
}

/** The `deno` arguments and options that run `zkrpc …args`. */
function cli(
  args: string[],
  options: ZkrpcOptions,
): [string[], DenoCommandOptions] {
  return [[
    "run",
    ...(options.permissions ?? ["--allow-net=127.0.0.1", "--allow-env"]),
    "cli.ts",
    ...args,
  ], { cwd: ROOT, env: options.env, timeout: options.timeout }];
}

/**
 * Runs `deno run --allow-net=127.0.0.1 --allow-env cli.ts …args` to the end.
 *
 * @param args The command line after `zkrpc`.
 * @param options Environment, permissions, timeout.
 * @returns Exit code and output.
 */
export async function zkrpc(
  args: string[],
  options: ZkrpcOptions = {},
): Promise<Run> {
  return await runDeno(...cli(args, options));
}

/**
 * Starts `zkrpc …args` without waiting for it (for `watch`).
 *
 * @param args The command line after `zkrpc`.
 * @param options Environment, permissions, timeout.
 * @returns The child process, stdout and stderr piped.
 */
export function spawnZkrpc(
  args: string[],
  options: ZkrpcOptions = {},
): Deno.ChildProcess {
  return denoCommand(...cli(args, options)).spawn();
}

/**
 * Reads lines until one matches `pattern`; fails after `ms`. The generator
 * stays open for more reads.
 *
 * @param output Lines, e.g. from `lines(child.stdout)`.
 * @param pattern What to wait for.
 * @param ms Deadline.
 * @returns The matching line.
 */
export async function lineMatching(
  output: AsyncGenerator<string>,
  pattern: RegExp,
  ms: number,
): Promise<string> {
  const find = async () => {
    // next(), not for-await: leaving a for-await loop would end `output`.
    for (
      let line = await output.next();
      !line.done;
      line = await output.next()
    ) {
      if (pattern.test(line.value)) return line.value;
    }
    throw new Error(`the output ended before a line matching ${pattern}`);
  };
  return await within(find(), ms, `a line matching ${pattern}`);
}
