/**
 * Simulated hosts on one machine: network namespaces on a private bridge,
 * addresses only in 198.18.0.0/24 (the benchmarking range), no route out, and
 * partitions made with `iptables` inside the namespaces. Needs root, `ip` and
 * `iptables`; {@linkcode hostsSkipReason} says why a run cannot use it.
 *
 * Layout of one {@linkcode SimulatedNetwork} (prefix `zkh<pid>x<n>`, unique
 * per run):
 *
 * - a "switch" namespace `<prefix>-sw` holding the bridge `br0`, so that
 *   bridged traffic never passes the root namespace's firewall;
 * - one namespace `<prefix>-<host>` per host, with `lo` and `eth0` (a veth
 *   whose peer is a port of `br0`), one address in the run's /28 block, and
 *   no default route: nothing leaves the machine;
 * - in the root namespace only the veth `<prefix>c` with the block's first
 *   address (the controller, where the test itself runs: it starts the
 *   ZooKeeper JVMs, polls them and watches the registry). Partitions never
 *   cut the controller, so the test keeps observing.
 *
 * Partitions are `DROP` rules on INPUT inside the receiving host's namespace:
 * packets vanish without an RST or ICMP error, so a connect hangs and an
 * established connection goes quiet, as with a real partition. The root
 * namespace's firewall is never touched.
 *
 * {@linkcode SimulatedNetwork.close} kills every process started in the
 * hosts, deletes every namespace and link; an `unload` handler does the same
 * if the test process exits first, and {@linkcode SimulatedNetwork.create}
 * first sweeps what a killed earlier run (a dead pid) left behind.
 *
 * @module
 */

import { onUnload } from "../../src/testing/cleanup.ts";

/** The range every address comes from. */
export const RANGE = "198.18.0.0/24";

const PREFIX = "zkh";
let runs = 0;

/**
 * Why the multi-host suite cannot run here, or `undefined` when it can: it
 * needs root, `ip` and `iptables`, and the permissions of
 * `deno task test:hosts`.
 *
 * @returns The reason to skip, or `undefined`.
 */
export function hostsSkipReason(): string | undefined {
  const net = Deno.permissions.querySync({ name: "net", host: "198.18.0.1" });
  if (net.state !== "granted") {
    return `needs --allow-net=${RANGE} (run \`deno task test:hosts\`)`;
  }
  for (const command of ["ip", "iptables", "ps", "kill"]) {
    if (
      Deno.permissions.querySync({ name: "run", command }).state !== "granted"
    ) {
      return `needs --allow-run=${command}`;
    }
  }
  if (
    Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted"
  ) {
    return "needs --allow-sys=uid (to check for root)";
  }
  if (Deno.uid() !== 0) {
    return "needs root (network namespaces and iptables)";
  }
  for (
    const [command, install] of [["ip", "iproute2"], ["iptables", "iptables"]]
  ) {
    try {
      const { success } = new Deno.Command(command!, {
        args: [command === "ip" ? "-V" : "--version"],
        stdout: "null",
        stderr: "null",
      }).outputSync();
      if (!success) return `\`${command}\` does not run`;
    } catch {
      return `needs \`${command}\` (apt-get install -y ${install})`;
    }
  }
  return undefined;
}

/** One simulated host. */
export interface SimulatedHost {
  /** The name given to {@linkcode SimulatedNetwork.create}. */
  readonly name: string;
  /** Its network namespace. */
  readonly namespace: string;
  /** Its address on the shared bridge. */
  readonly address: string;
}

/** Options for {@linkcode SimulatedNetwork.spawn}. */
export interface SpawnOptions {
  /** @default {"null"} */
  stdin?: "piped" | "null";
  /** @default {"piped"} */
  stdout?: "piped" | "null" | "inherit";
  /** @default {"piped"} */
  stderr?: "piped" | "null" | "inherit";
  /** Working directory. @default {undefined} */
  cwd?: string | URL;
}

/** What a network made, as `ip` reports it (for the leftover check). */
export interface NetworkResources {
  /** Namespaces whose name starts with the prefix. */
  namespaces: string[];
  /** Root-namespace links whose name starts with the prefix. */
  links: string[];
  /** Processes started in the hosts that are still alive. */
  processes: number[];
}

async function run(command: string, args: string[]): Promise<string> {
  const { success, stdout, stderr } = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(
      `Cannot run "${command} ${args.join(" ")}": ${
        new TextDecoder().decode(stderr).trim()
      }`,
    );
  }
  return new TextDecoder().decode(stdout);
}

function runSync(command: string, args: string[]): string {
  const { stdout } = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  return new TextDecoder().decode(stdout);
}

/**
 * The processes among `pids` that are alive (zombies count as gone), asked of
 * `ps`: Deno lets only `--allow-all` read `/proc`.
 */
function living(pids: number[]): number[] {
  if (pids.length === 0) return [];
  return runSync("ps", ["-o", "pid=,stat=", "-p", pids.join(",")])
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, stat]) => pid !== "" && !stat?.startsWith("Z"))
    .map(([pid]) => Number(pid));
}

/** Namespaces and root links named with `prefix` (all runs' when omitted). */
function listResources(
  prefix: string,
): { namespaces: string[]; links: string[] } {
  const namespaces = runSync("ip", ["netns", "list"]).split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(prefix));
  const links = runSync("ip", ["-o", "link", "show"]).split("\n")
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? "")
    .filter((name) => name.startsWith(prefix));
  return { namespaces, links };
}

/**
 * Kills every process in `namespace`, then deletes it (synchronously). The
 * `kill` command, not `Deno.kill`, which needs an unrestricted `--allow-run`.
 */
function removeNamespaceSync(namespace: string): void {
  const pids = runSync("ip", ["netns", "pids", namespace]).split(/\s+/)
    .filter((pid) => pid !== "");
  if (pids.length > 0) runSync("kill", ["-KILL", ...pids]);
  runSync("ip", ["netns", "delete", namespace]);
}

/** Removes what earlier runs left behind when their process is dead. */
function sweepDeadRuns(): void {
  const { namespaces, links } = listResources(PREFIX);
  for (const name of [...namespaces, ...links]) {
    const pid = Number(/^zkh(\d+)x/.exec(name)?.[1]);
    if (
      !Number.isInteger(pid) || pid === Deno.pid || living([pid]).length > 0
    ) continue;
    if (namespaces.includes(name)) removeNamespaceSync(name);
    else runSync("ip", ["link", "delete", name]);
  }
}

/** Picks a free /28 block of 198.18.0.0/24 (none of its addresses in use here). */
function freeBlock(): number {
  const used = new Set(
    [
      ...runSync("ip", ["-4", "-o", "addr", "show"]).matchAll(
        /inet 198\.18\.0\.(\d+)\//g,
      ),
    ].map((m) => Number(m[1]) & 0xf0),
  );
  for (let i = 0; i < 16; i++) {
    const block = ((Deno.pid + runs + i) % 16) * 16;
    if (!used.has(block)) return block;
  }
  throw new Error(`Cannot create hosts: every /28 block of ${RANGE} is in use`);
}

/**
 * A set of simulated hosts on one bridge. `await using` tears it all down.
 *
 * @example Two hosts, a partition and a heal
 * ```ts ignore
 * await using net = await SimulatedNetwork.create(["a", "b"]);
 * await net.cut("a", "b");
 * await net.heal();
 * ```
 */
export class SimulatedNetwork implements AsyncDisposable {
  /** Prefix of every name this network made. */
  readonly prefix: string;
  /** The controller's address (the root namespace's end of the bridge). */
  readonly controller: string;
  #hosts = new Map<string, SimulatedHost>();
  #children = new Set<Deno.ChildProcess>();
  #spawned: number[] = [];
  #cuts: string[] = [];
  #closed = false;
  #unregister: () => void;
  #block: number;

  private constructor(prefix: string, block: number) {
    this.prefix = prefix;
    this.#block = block;
    this.controller = `198.18.0.${block + 1}`;
    this.#unregister = onUnload(() => this.#removeSync());
  }

  /**
   * Creates the hosts (at most 13) on a bridge of their own.
   *
   * @param names Host names (letters, digits, at most 6 characters).
   * @returns The network; dispose of it to remove everything.
   */
  static async create(names: string[]): Promise<SimulatedNetwork> {
    if (names.length > 13) {
      throw new RangeError(
        `Cannot create hosts: at most 13, got ${names.length}`,
      );
    }
    for (const name of names) {
      if (!/^[a-z0-9]{1,6}$/.test(name)) {
        throw new TypeError(
          `Cannot create hosts: name must be 1-6 lowercase letters or digits, got "${name}"`,
        );
      }
    }
    sweepDeadRuns();
    const prefix = `${PREFIX}${Deno.pid}x${runs++}`;
    const net = new SimulatedNetwork(prefix, freeBlock());
    try {
      await net.#build(names);
    } catch (error) {
      await net.close();
      throw error;
    }
    return net;
  }

  async #build(names: string[]): Promise<void> {
    const sw = `${this.prefix}-sw`;
    await run("ip", ["netns", "add", sw]);
    await run("ip", ["-n", sw, "link", "add", "br0", "type", "bridge"]);
    await run("ip", ["-n", sw, "link", "set", "br0", "up"]);
    const link = `${this.prefix}c`;
    await run("ip", [
      "link",
      "add",
      link,
      "type",
      "veth",
      "peer",
      "name",
      "ctl",
      "netns",
      sw,
    ]);
    await run("ip", ["-n", sw, "link", "set", "ctl", "master", "br0", "up"]);
    await run("ip", ["addr", "add", `${this.controller}/28`, "dev", link]);
    await run("ip", ["link", "set", link, "up"]);
    for (const [i, name] of names.entries()) {
      const namespace = `${this.prefix}-${name}`;
      const address = `198.18.0.${this.#block + 2 + i}`;
      await run("ip", ["netns", "add", namespace]);
      this.#hosts.set(name, { name, namespace, address });
      await run("ip", ["-n", namespace, "link", "set", "lo", "up"]);
      await this.#plug(name);
    }
  }

  /** Plugs host `name`'s `eth0` into the bridge, with its address. */
  async #plug(name: string): Promise<void> {
    const { namespace, address } = this.host(name);
    const port = `p${this.hosts.indexOf(this.host(name))}`;
    const sw = `${this.prefix}-sw`;
    await run("ip", [
      "-n",
      namespace,
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      port,
      "netns",
      sw,
    ]);
    await run("ip", ["-n", sw, "link", "set", port, "master", "br0", "up"]);
    await run("ip", [
      "-n",
      namespace,
      "addr",
      "add",
      `${address}/28`,
      "dev",
      "eth0",
    ]);
    await run("ip", ["-n", namespace, "link", "set", "eth0", "up"]);
  }

  /**
   * Gives host `name` a second interface, `eth1` (a veth whose peer stays
   * in the host, unplugged), on a network of its own that no other host can
   * reach: an address of the next /28 block of the range. With `first`,
   * `eth0` is plugged in again afterwards, so the system lists the
   * unreachable interface first.
   *
   * @param name A host name.
   * @param options `{ first: true }` to list the new interface first.
   * @returns The new address.
   */
  async addInterface(
    name: string,
    options: { first?: boolean } = {},
  ): Promise<string> {
    const host = this.host(name);
    const index = this.hosts.indexOf(host);
    const address = `198.18.0.${((this.#block + 16) % 256) + 2 + index}`;
    await this.exec(name, [
      "ip",
      "link",
      "add",
      "eth1",
      "type",
      "veth",
      "peer",
      "name",
      "eth1p",
    ]);
    await this.exec(name, [
      "ip",
      "addr",
      "add",
      `${address}/28`,
      "dev",
      "eth1",
    ]);
    await this.exec(name, ["ip", "link", "set", "eth1", "up"]);
    if (options.first) {
      await this.exec(name, ["ip", "link", "delete", "eth0"]);
      await this.#plug(name);
    }
    return address;
  }

  /** Every host, in creation order. */
  get hosts(): SimulatedHost[] {
    return [...this.#hosts.values()];
  }

  /**
   * The host called `name`.
   *
   * @param name A host name.
   * @returns The host.
   */
  host(name: string): SimulatedHost {
    const host = this.#hosts.get(name);
    if (host === undefined) throw new Error(`Cannot find host "${name}"`);
    return host;
  }

  /**
   * The command prefix that runs a program inside `name`.
   *
   * @param name A host name.
   * @returns `["ip", "netns", "exec", namespace]`.
   */
  prefixFor(name: string): string[] {
    return ["ip", "netns", "exec", this.host(name).namespace];
  }

  /**
   * Runs `command` inside host `name` and returns its output.
   *
   * @param name A host name.
   * @param command The program and its arguments.
   * @returns Its stdout.
   */
  exec(name: string, command: string[]): Promise<string> {
    return run("ip", ["netns", "exec", this.host(name).namespace, ...command]);
  }

  /**
   * Starts `command` inside host `name`; {@linkcode SimulatedNetwork.close}
   * kills it if it still runs.
   *
   * @param name A host name.
   * @param command The program and its arguments.
   * @param options Standard streams and working directory.
   * @returns The child process.
   */
  spawn(
    name: string,
    command: string[],
    options: SpawnOptions = {},
  ): Deno.ChildProcess {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.host(name).namespace, ...command],
      stdin: options.stdin ?? "null",
      stdout: options.stdout ?? "piped",
      stderr: options.stderr ?? "piped",
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    }).spawn();
    this.track(child.pid);
    this.#children.add(child);
    child.status.finally(() => this.#children.delete(child));
    return child;
  }

  /**
   * Records a process started in a host by other means (e.g. a ZooKeeper JVM
   * started through `commandPrefix`), so the leftover check sees it.
   *
   * @param pid Its process id.
   */
  track(pid: number): void {
    this.#spawned.push(pid);
  }

  /**
   * Adds a partition: packets from `from` to `to` are dropped (silently, at
   * `to`), and with `both` (the default) also from `to` to `from`.
   *
   * @param from A host name.
   * @param to A host name.
   * @param options `{ oneWay: true }` to drop only `from` → `to`.
   */
  async cut(
    from: string,
    to: string,
    options: { oneWay?: boolean } = {},
  ): Promise<void> {
    await this.#drop(to, from);
    if (!options.oneWay) await this.#drop(from, to);
  }

  /**
   * Cuts host `name` from every other host (the controller stays reachable).
   *
   * @param name A host name.
   */
  async isolate(name: string): Promise<void> {
    for (const other of this.#hosts.keys()) {
      if (other !== name) await this.cut(name, other);
    }
  }

  async #drop(at: string, from: string): Promise<void> {
    const rule = `${at}<${from}`;
    if (this.#cuts.includes(rule)) return;
    await this.exec(at, [
      "iptables",
      "-w",
      "-A",
      "INPUT",
      "-s",
      this.host(from).address,
      "-j",
      "DROP",
    ]);
    this.#cuts.push(rule);
  }

  /** The partitions in force, as `"receiver<sender"` entries. */
  get cuts(): readonly string[] {
    return this.#cuts;
  }

  /** Removes every partition. */
  async heal(): Promise<void> {
    const hosts = new Set(this.#cuts.map((rule) => rule.split("<")[0]!));
    for (const host of hosts) {
      await this.exec(host, ["iptables", "-w", "-F", "INPUT"]);
    }
    this.#cuts = [];
  }

  /**
   * The rules in a host's INPUT chain (`iptables -S INPUT`).
   *
   * @param name A host name.
   * @returns The rule lines.
   */
  async rules(name: string): Promise<string[]> {
    return (await this.exec(name, ["iptables", "-w", "-S", "INPUT"]))
      .split("\n").filter((line) => line.startsWith("-A"));
  }

  /** What of this network still exists. */
  resources(): NetworkResources {
    return {
      ...listResources(this.prefix),
      processes: living(this.#spawned),
    };
  }

  #removeSync(): void {
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
    const { namespaces } = listResources(this.prefix);
    for (const namespace of namespaces) removeNamespaceSync(namespace);
    runSync("ip", ["link", "delete", `${this.prefix}c`]);
  }

  /**
   * Kills every process started in the hosts, deletes every namespace and
   * link, and waits until they are gone. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#removeSync();
    await Promise.all([...this.#children].map((child) => child.status));
    const deadline = Date.now() + 10_000;
    while (true) {
      const left = this.resources();
      if (
        left.namespaces.length + left.links.length + left.processes.length === 0
      ) break;
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot remove hosts: left behind ${JSON.stringify(left)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.#unregister();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
