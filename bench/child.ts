/**
 * Child Deno processes for the benchmarks: spawn with narrow permissions,
 * exchange JSON lines over stdin/stdout, and always kill and await them.
 *
 * @module
 */

/** Options for {@linkcode spawnChild}. */
export interface SpawnOptions {
  /** Extra `deno run` permission flags. @default ["--allow-net=127.0.0.1"] */
  permissions?: string[];
  /** Arguments passed to the script. @default [] */
  args?: string[];
  /** Label used in error messages. @default the script name */
  label?: string;
  /** Pin the process to this CPU with `taskset` when available. */
  cpu?: number;
}

let tasksetAvailable: boolean | undefined;

/**
 * Whether `taskset` can pin processes (Linux with at least two CPUs).
 *
 * @returns True when pinning is possible.
 */
export function canPin(): boolean {
  if (tasksetAvailable === undefined) {
    tasksetAvailable = false;
    if (Deno.build.os === "linux" && navigator.hardwareConcurrency >= 2) {
      try {
        const out = new Deno.Command("taskset", {
          args: ["-p", String(Deno.pid)],
        })
          .outputSync();
        tasksetAvailable = out.success;
      } catch {
        // not installed
      }
    }
  }
  return tasksetAvailable;
}

const live = new Set<ChildProcessHandle>();

/** A spawned Deno child that speaks JSON lines. */
export class ChildProcessHandle {
  #process: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #label: string;
  #status: Promise<Deno.CommandStatus>;
  #closed = false;

  /** @param process The spawned process. @param label Name for messages. */
  constructor(process: Deno.ChildProcess, label: string) {
    this.#process = process;
    this.#label = label;
    this.#writer = process.stdin.getWriter();
    this.#lines = readLines(process.stdout)[Symbol.asyncIterator]();
    this.#status = process.status;
    live.add(this);
    this.#status.finally(() => live.delete(this));
  }

  /** The OS process id. */
  get pid(): number {
    return this.#process.pid;
  }

  /** Resolves with the exit status. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  /**
   * Reads the next stdout line as JSON.
   *
   * @param timeoutMs Give up after this long.
   * @returns The parsed value.
   */
  async readJson<T>(timeoutMs = 30_000): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`Timed out reading from ${this.#label}: ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    });
    try {
      const next = await Promise.race([this.#lines.next(), timeout]);
      if (next.done) {
        throw new Error(`Child ${this.#label} exited before answering`);
      }
      return JSON.parse(next.value) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Writes one JSON line to the child's stdin.
   *
   * @param value Any JSON-serializable value.
   */
  async send(value: unknown): Promise<void> {
    await this.#writer.write(
      new TextEncoder().encode(JSON.stringify(value) + "\n"),
    );
  }

  /**
   * Sends a request line and reads one JSON answer line.
   *
   * @param value The request.
   * @param timeoutMs Give up after this long.
   * @returns The answer.
   */
  async request<T>(value: unknown, timeoutMs = 30_000): Promise<T> {
    await this.send(value);
    return await this.readJson<T>(timeoutMs);
  }

  /**
   * Sends a signal (ignored when the process has already exited).
   *
   * @param signal The signal, e.g. "SIGKILL".
   */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.#process.kill(signal);
    } catch {
      // already gone
    }
  }

  /** Closes stdin, waits briefly, then SIGKILLs; always awaits the exit. */
  async close(graceMs = 2_000): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        await this.#writer.close();
      } catch {
        // stdin already closed
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.#status.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!exited) this.kill("SIGKILL");
    await this.#status;
    await this.#lines.return?.();
  }
}

/**
 * Spawns `deno run <permissions> <script> <args>` with piped stdin/stdout
 * and inherited stderr.
 *
 * @param script Path or URL of the script.
 * @param options Permissions, arguments, label.
 * @returns The handle, registered for {@linkcode closeAllChildren}.
 */
export function spawnChild(
  script: string | URL,
  options: SpawnOptions = {},
): ChildProcessHandle {
  const path = script instanceof URL ? script.pathname : script;
  const permissions = options.permissions ?? ["--allow-net=127.0.0.1"];
  const denoArgs = [
    "run",
    "--quiet",
    ...permissions,
    path,
    ...(options.args ?? []),
  ];
  const pin = options.cpu !== undefined && canPin();
  const command = new Deno.Command(pin ? "taskset" : Deno.execPath(), {
    args: pin
      ? ["-c", String(options.cpu), Deno.execPath(), ...denoArgs]
      : denoArgs,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  });
  const label = options.label ?? path.split("/").pop() ?? path;
  return new ChildProcessHandle(command.spawn(), label);
}

/** Kills and awaits every child still running. */
export async function closeAllChildren(): Promise<void> {
  await Promise.allSettled([...live].map((child) => child.close(500)));
}

/**
 * Splits a byte stream into text lines.
 *
 * @param stream UTF-8 bytes.
 * @returns Lines without the terminator.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let buffered = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
    }
  }
  if (buffered.length > 0) yield buffered;
}

/**
 * Reads JSON-line commands from this process's stdin and calls `onCommand`
 * for each; resolves when stdin closes (the parent went away or is done).
 *
 * @param onCommand Handler returning the answer line (or undefined for none).
 */
export async function serveControl(
  onCommand: (command: Record<string, unknown>) => unknown | Promise<unknown>,
): Promise<void> {
  try {
    for await (const line of readLines(Deno.stdin.readable)) {
      if (line.trim() === "") continue;
      const answer = await onCommand(JSON.parse(line));
      if (answer !== undefined) writeJsonLine(answer);
    }
  } catch {
    // stdin broken: treat as closed
  }
}

/**
 * Writes one JSON line to stdout synchronously.
 *
 * @param value Any JSON-serializable value.
 */
export function writeJsonLine(value: unknown): void {
  const bytes = new TextEncoder().encode(JSON.stringify(value) + "\n");
  let written = 0;
  while (written < bytes.length) {
    written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}
