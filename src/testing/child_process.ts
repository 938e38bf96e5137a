/**
 * The one process launcher of zkrpc's tests, benchmarks and testing
 * module: which `deno` to run, a `deno` command with piped, decoded output
 * and a hang guard, its output as lines, and stopping a child (a signal, a
 * grace period, then `SIGKILL`).
 *
 * @module
 */

import { settleWithin } from "../_async.ts";

/**
 * The `deno` to run children with: this process's own executable when it may
 * run it, else `deno` from `PATH` (for a process granted `--allow-run=deno`).
 *
 * @returns The executable.
 *
 * @example Run the same Deno as this process
 * ```ts ignore
 * import { denoExecutable } from "./child_process.ts";
 *
 * const { code } = await new Deno.Command(denoExecutable(), {
 *   args: ["--version"],
 * }).output();
 * console.log(code);
 * ```
 */
export function denoExecutable(): string {
  const own = Deno.execPath();
  const { state } = Deno.permissions.querySync({ name: "run", command: own });
  return state === "granted" ? own : "deno";
}

/**
 * Splits a byte stream into text lines (without the terminator; a last line
 * without one is yielded too).
 *
 * @param stream UTF-8 bytes, e.g. a child's `stdout`.
 * @returns The lines.
 *
 * @example Lines of a stream
 * ```ts
 * import { lines } from "./child_process.ts";
 * import assert from "node:assert/strict";
 *
 * const stream = ReadableStream.from(["a\nb", "\nc"])
 *   .pipeThrough(new TextEncoderStream());
 * assert.deepEqual(await Array.fromAsync(lines(stream)), ["a", "b", "c"]);
 * ```
 */
export async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let newline;
    while ((newline = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, newline);
      rest = rest.slice(newline + 1);
    }
  }
  if (rest !== "") yield rest;
}

/** How {@linkcode denoCommand} and {@linkcode runDeno} run `deno`. */
export interface DenoCommandOptions {
  /**
   * The working directory.
   *
   * @default {the current directory}
   */
  cwd?: string | URL | undefined;
  /**
   * Extra environment variables; `NO_COLOR=1` is always set.
   *
   * @default {{}}
   */
  env?: Record<string, string> | undefined;
  /**
   * Kills the child after this many ms, so that a hang fails the caller
   * instead of holding it; `Infinity` for a child that runs until stopped.
   *
   * @default {60000}
   */
  timeout?: number | undefined;
  /**
   * Where the child's stderr goes.
   *
   * @default {"piped"}
   */
  stderr?: "piped" | "inherit" | "null" | undefined;
}

/**
 * A `deno` command (see {@linkcode denoExecutable}) with `NO_COLOR=1`, no
 * stdin, piped stdout (and stderr unless told) and a hang guard.
 *
 * @param args The arguments after `deno`.
 * @param options Directory, environment, timeout, stderr.
 * @returns The command, to `output()` or `spawn()`.
 *
 * @example Spawn a script and read its first line
 * ```ts ignore
 * import { denoCommand, lines } from "./child_process.ts";
 *
 * const child = denoCommand(["run", "server.ts"]).spawn();
 * const first = await lines(child.stdout).next();
 * console.log(first.value);
 * ```
 */
export function denoCommand(
  args: string[],
  options: DenoCommandOptions = {},
): Deno.Command {
  const timeout = options.timeout ?? 60_000;
  return new Deno.Command(denoExecutable(), {
    args,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: options.stderr ?? "piped",
    ...(timeout === Infinity ? {} : { signal: AbortSignal.timeout(timeout) }),
  });
}

/** What {@linkcode runDeno} returns: the exit code and the decoded output. */
export interface DenoOutput {
  /** The exit code. */
  code: number;
  /** Everything written on stdout. */
  stdout: string;
  /** Everything written on stderr (empty unless piped). */
  stderr: string;
}

/**
 * Runs `deno ...args` to the end (see {@linkcode denoCommand}) and decodes
 * its output.
 *
 * @param args The arguments after `deno`.
 * @param options Directory, environment, timeout.
 * @returns The exit code and the output.
 *
 * @example Ask deno for its version
 * ```ts ignore
 * import { runDeno } from "./child_process.ts";
 *
 * const { code, stdout } = await runDeno(["--version"]);
 * console.log(code, stdout);
 * ```
 */
export async function runDeno(
  args: string[],
  options: DenoCommandOptions = {},
): Promise<DenoOutput> {
  const output = await denoCommand(args, options).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: options.stderr === undefined || options.stderr === "piped"
      ? decoder.decode(output.stderr)
      : "",
  };
}

/**
 * Stops a child: sends `signal`, waits up to `graceMs` for it to exit, then
 * sends `SIGKILL`. Safe on a child that already exited.
 *
 * @param child The child.
 * @param signal The first signal.
 * @param graceMs How long to wait before `SIGKILL`.
 * @returns Its exit status.
 *
 * @example Give a server 5 s to shut down
 * ```ts ignore
 * import { denoCommand, stopChild } from "./child_process.ts";
 *
 * const child = denoCommand(["run", "server.ts"]).spawn();
 * const status = await stopChild(child, "SIGTERM", 5000);
 * console.log(status.code);
 * ```
 */
export async function stopChild(
  child: Deno.ChildProcess,
  signal: Deno.Signal = "SIGTERM",
  graceMs = 5000,
): Promise<Deno.CommandStatus> {
  const send = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  };
  send(signal);
  if (signal !== "SIGKILL" && !await settleWithin(child.status, graceMs)) {
    send("SIGKILL");
  }
  return await child.status;
}
