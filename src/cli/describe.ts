/**
 * `zkrpc describe <service>`: what one server of the service says about
 * itself through the built-in `zkrpc.describe` call - its methods and their
 * declared parameter counts, protocol version, codec and registered data.
 *
 * @module
 */

import {
  CliError,
  EXIT_HELP,
  ExitCode,
  GLOBAL_HELP,
  printableFields,
} from "./_shared.ts";
import { printable, printableJson } from "../_printable.ts";
import { describeService, report, runOnService } from "./call.ts";

/** Help of `zkrpc describe`. */
export const DESCRIBE_HELP = `Usage: zkrpc describe SERVICE [options]

Asks one server of SERVICE (chosen as "zkrpc call" chooses) to describe
itself and prints its methods with their declared parameter counts, the
protocol version, the payload codec and the data it registered. A count is a
minimum: parameters with a default value or a rest parameter are not
counted. With --json, prints the description as JSON.

Servers of one service normally run the same code; during a rolling upgrade
two calls may describe different versions.

Examples:
  zkrpc describe calculator
  zkrpc describe calculator --json | jq '.methods[].name'

${GLOBAL_HELP}

${EXIT_HELP}`;

/**
 * Runs `zkrpc describe`.
 *
 * @param args The arguments after `describe`.
 * @returns The exit code.
 */
export async function describe(args: string[]): Promise<number> {
  return await runOnService(
    "describe",
    args,
    DESCRIBE_HELP,
    (service) => `describe service "${service}"`,
    async (channel, { options, service, what }) => {
      let description;
      try {
        description = await describeService(channel);
      } catch (error) {
        return report(error, options.json);
      }
      if (description === undefined) {
        throw new CliError(
          ExitCode.RemoteError,
          `Cannot ${what}: the server does not answer "zkrpc.describe" (it runs a zkrpc version without it)`,
        );
      }
      // The member data comes from discovery (the server's description
      // tells nothing about its process): the endpoint the call connected to.
      const member = channel.endpoints().find((e) => e.state === "ready")
        ?.member;
      if (options.json) {
        console.log(
          printableJson({ service, ...description, member }, { indent: 2 }),
        );
        return ExitCode.Ok;
      }
      const { methods } = description;
      const where = member === undefined
        ? ""
        : `, ${printable(member.host)}:${printable(member.port)}`;
      console.log(
        `${service}: ${methods.length} method${
          methods.length === 1 ? "" : "s"
        } (protocol ${printable(description.protocol)}, codec ${
          printable(description.codec)
        }${where})`,
      );
      for (const method of methods) {
        console.log(
          `  ${printable(method.name)}  ${printable(method.params)} param${
            method.params === 1 ? "" : "s"
          }`,
        );
      }
      if (member !== undefined) {
        const { host: _host, port: _port, ...rest } = member;
        for (const field of printableFields(rest)) console.log(`  ${field}`);
      }
      return ExitCode.Ok;
    },
  );
}
