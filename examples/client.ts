/**
 * The seed's client: finds the calculator servers in ZooKeeper through a
 * {@linkcode DistributedChannel} and calls `divide(i, i % 4)` 50 times, one
 * call a second, printing each result or the `InvalidOperation` message.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/client.ts
 * deno run --allow-net=127.0.0.1 examples/client.ts --zookeeper 127.0.0.1:2181 --count 10 --interval 100
 * ```
 *
 * Permissions: `--allow-net` for ZooKeeper and the servers it registers
 * (`127.0.0.1` when all run on loopback).
 *
 * Exits with 1 when a call failed (anything but a result or an
 * `InvalidOperation`), with 2 on wrong arguments.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { DistributedChannel } from "../mod.ts";
import { type Handlers, InvalidOperation } from "./calculator.ts";
import { zooKeeperChannel } from "../zookeeper.ts";

const USAGE =
  `Usage: deno run --allow-net=127.0.0.1 examples/client.ts [options]

Options:
  --zookeeper HOSTS   ZooKeeper connection string (default 127.0.0.1:2181)
  --service NAME      service to call (default calculator)
  --count N           number of calls (default 50)
  --interval MS       pause between calls (default 1000)
  --timeout MS        timeout of each call (default 5000)
  -h, --help          show this help`;

function usage(message?: string): never {
  if (message) console.error(`client: ${message}\n`);
  console.error(USAGE);
  Deno.exit(message ? 2 : 0);
}

function wholeNumber(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    usage(`--${name} must be a whole number, got "${text}"`);
  }
  return value;
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      zookeeper: { type: "string", default: "127.0.0.1:2181" },
      service: { type: "string", default: "calculator" },
      count: { type: "string", default: "50" },
      interval: { type: "string", default: "1000" },
      timeout: { type: "string", default: "5000" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (error) {
  usage((error as Error).message);
}
const { values } = parsed;
if (values.help) usage();
const count = wholeNumber("count", values.count);
const interval = wholeNumber("interval", values.interval);
const timeout = wholeNumber("timeout", values.timeout);

function openChannel(): DistributedChannel {
  try {
    return zooKeeperChannel({
      zookeeper: values.zookeeper,
      service: values.service,
      errors: [InvalidOperation],
      idempotent: ["divide"],
      timeout,
      // Like the tutorial's client, wait for a server (one restarting, or not
      // registered yet) until each call's deadline rather than failing fast.
      waitForReady: true,
    });
  } catch (error) {
    usage((error as Error).message); // a malformed --zookeeper or --service
  }
}

await using channel = openChannel();
const calc = channel.stub<typeof Handlers>();

let failed = 0;
for (let i = 0; i < count; i++) {
  try {
    console.log(`divide(${i}, ${i % 4}) = ${await calc.divide(i, i % 4)}`);
  } catch (error) {
    if (error instanceof InvalidOperation) {
      console.log(`divide(${i}, ${i % 4}): ${error.message}`);
    } else {
      failed++;
      console.error(`divide(${i}, ${i % 4}) failed: ${error}`);
    }
  }
  if (i < count - 1) await new Promise((r) => setTimeout(r, interval));
}
console.log(`${count - failed} of ${count} calls answered, ${failed} failed`);
if (failed > 0) Deno.exitCode = 1;
