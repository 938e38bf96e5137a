/**
 * `zkrpc ls [service]`: the services under the registry root and their
 * members with the data each server registered.
 *
 * @module
 */

import { Connection } from "../client/connection.ts";
import { parseMember } from "../discovery/member.ts";
import {
  isZooKeeperError,
  type ZooKeeperSession,
} from "../zookeeper/session.ts";
import {
  age,
  checkService,
  CliError,
  EXIT_HELP,
  ExitCode,
  GLOBAL_HELP,
  type GlobalOptions,
  globalOptions,
  openSession,
  parseCommandArgs,
  printableFields,
  translateZooKeeperError,
} from "./_shared.ts";
import { printable, printableJson, printableMessage } from "../_printable.ts";
import { tlsHint } from "./call.ts";

/** Help of `zkrpc ls`. */
export const LS_HELP = `Usage: zkrpc ls [SERVICE] [options]

Lists the services registered under the root (default /rpc) and, for each,
its servers with the data they registered (host, port, pid, uptime, weight,
protocol, TLS, owning ZooKeeper session). With SERVICE, lists that one only
and exits with 4 when it does not exist or has no servers.

A server killed without closing stays registered until its ZooKeeper session
expires (about 10 s); --probe opens a zkrpc connection to each server to tell
live ones from those (exit 4 when SERVICE has none that answers).

Options:
  --probe             connect to each server and report whether it answers

Examples:
  zkrpc ls
  zkrpc ls calculator --zookeeper zk1:2181,zk2:2181,zk3:2181/prod
  zkrpc ls calculator --probe
  zkrpc ls calculator --json | jq '.services[0].members[].data.port'

${GLOBAL_HELP}

${EXIT_HELP}`;

/** One member as `ls` reports it. */
export interface ListedMember {
  /** The znode name. */
  id: string;
  /** The owning ZooKeeper session, hex. */
  session: string | undefined;
  /** The registered data, `null` when it is not valid. */
  data: Record<string, unknown> | null;
  /** Why the data is not valid. */
  error?: string;
  /** With `--probe`: whether a zkrpc connection opened, and how fast. */
  probe?: { ok: boolean; ms?: number; error?: string };
}

/** One service as `ls` reports it. */
export interface ListedService {
  /** The service name. */
  name: string;
  /** Its znode path. */
  path: string;
  /** Its members, by znode name. */
  members: ListedMember[];
}

/**
 * Runs `zkrpc ls`.
 *
 * @param args The arguments after `ls`.
 * @returns The exit code.
 */
export async function ls(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("ls", args, {
    probe: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(LS_HELP);
    return ExitCode.Ok;
  }
  const options = globalOptions(values);
  if (positionals.length > 1) {
    throw new CliError(
      ExitCode.Usage,
      `Cannot list services: expected at most one SERVICE, got ${positionals.length}: ${
        positionals.join(" ")
      }`,
      'Run "zkrpc ls --help" for usage.',
    );
  }
  const service = positionals[0] === undefined
    ? undefined
    : checkService("list service", positionals[0]);
  const what = service === undefined
    ? "list services"
    : `list service "${service}"`;
  const session = await openSession(what, options);
  try {
    const services = await listServices(session, options, service);
    if (values.probe) await probeAll(services, options);
    print(services, options, service);
    const members = services[0]?.members ?? [];
    if (
      service !== undefined &&
      (members.length === 0 ||
        (values.probe && !members.some((m) => m.probe?.ok)))
    ) {
      return ExitCode.NoServers;
    }
    return ExitCode.Ok;
  } catch (error) {
    throw translateZooKeeperError(what, options, error);
  } finally {
    await session.close();
  }
}

async function listServices(
  session: ZooKeeperSession,
  options: GlobalOptions,
  only: string | undefined,
): Promise<ListedService[]> {
  let names: string[];
  if (only === undefined) {
    try {
      names = (await session.getChildren(options.root || "/")).sort();
    } catch (error) {
      if (!isZooKeeperError(error, "NO_NODE")) throw error;
      names = [];
    }
  } else {
    names = [only];
  }
  const services: ListedService[] = [];
  for (const name of names) {
    const path = `${options.root}/${name}`; // a listed child, any name
    let ids: string[];
    try {
      ids = (await session.getChildren(path)).sort();
    } catch (error) {
      if (!isZooKeeperError(error, "NO_NODE")) throw error;
      if (only !== undefined) {
        throw await unknownService(session, options, name);
      }
      continue; // removed meanwhile
    }
    const members: ListedMember[] = [];
    for (const id of ids) {
      try {
        const { data, stat } = await session.getData(`${path}/${id}`);
        try {
          members.push({
            id,
            session: stat.ephemeralOwner,
            data: { ...parseMember(data) },
          });
        } catch (error) {
          members.push({
            id,
            session: stat.ephemeralOwner,
            data: null,
            error: (error as Error).message,
          });
        }
      } catch (error) {
        if (!isZooKeeperError(error, "NO_NODE")) throw error; // left meanwhile
      }
    }
    services.push({ name, path, members });
  }
  return services;
}

/** Opens (and closes) a zkrpc connection to every member, in parallel. */
async function probeAll(
  services: ListedService[],
  options: GlobalOptions,
): Promise<void> {
  await Promise.all(
    services.flatMap((service) => service.members).map(async (member) => {
      if (member.data === null) return;
      const started = performance.now();
      try {
        const connection = await Connection.connect({
          hostname: String(member.data.host),
          port: Number(member.data.port),
          tls: member.data.tls === true,
        }, {
          connectTimeout: Math.min(options.timeout, 3000),
          ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        });
        const ms = Math.round((performance.now() - started) * 100) / 100;
        connection.close();
        await connection.closed;
        member.probe = { ok: true, ms };
      } catch (error) {
        member.probe = { ok: false, error: (error as Error).message };
      }
    }),
  );
}

async function unknownService(
  session: ZooKeeperSession,
  options: GlobalOptions,
  name: string,
): Promise<CliError> {
  let known: string[] = [];
  try {
    known = (await session.getChildren(options.root || "/")).sort();
  } catch {
    // The root does not exist either.
  }
  return new CliError(
    ExitCode.NoServers,
    `Cannot list service "${name}": no such service under ${options.root} on ${options.zookeeper}`,
    known.length === 0
      ? `No services are registered under ${options.root}.`
      : `Known services: ${known.map((name) => printable(name)).join(", ")}`,
  );
}

function print(
  services: ListedService[],
  options: GlobalOptions,
  only: string | undefined,
): void {
  if (options.json) {
    console.log(
      printableJson(
        { zookeeper: options.zookeeper, root: options.root, services },
        { indent: 2 },
      ),
    );
    return;
  }
  if (services.length === 0) {
    console.log(
      `No services under ${printable(options.root)} on ${
        printable(options.zookeeper)
      }`,
    );
    return;
  }
  for (const service of services) {
    const count = service.members.length;
    console.log(
      `${printable(service.name)}  ${count} server${count === 1 ? "" : "s"}  (${
        printable(service.path)
      })`,
    );
    if (count === 0 && only !== undefined) {
      console.error(
        `Cannot list service "${
          printable(service.name)
        }": no servers registered`,
      );
    }
    for (const member of service.members) console.log(`  ${line(member)}`);
  }
  const hint = tlsHint(
    services.flatMap((s) => s.members.map((m) => m.probe?.error ?? "")).join(
      "\n",
    ),
  );
  if (hint !== undefined) console.error(hint);
}

function line(member: ListedMember): string {
  const id = printable(member.id);
  const session = `session 0x${printable(member.session ?? "?")}`;
  if (member.data === null) {
    return `${id}  INVALID: ${printableMessage(member.error)}  ${session}`;
  }
  const { host, port, pid, startedAt, weight, protocol, tls, ...rest } =
    member.data;
  const parts = [
    id,
    `${printable(host)}:${printable(port)}`,
    `pid ${printable(pid ?? "?")}`,
    `up ${age(startedAt)}`,
    `weight ${printable(weight ?? 1)}`,
    `protocol ${printable(protocol ?? "?")}`,
    `tls ${tls === true ? "yes" : "no"}`,
    session,
  ];
  parts.push(...printableFields(rest));
  if (member.probe !== undefined) {
    parts.push(
      member.probe.ok
        ? `probe ok ${member.probe.ms} ms`
        : `probe FAILED: ${printableMessage(member.probe.error)}`,
    );
  }
  return parts.join("  ");
}
