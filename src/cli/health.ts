/**
 * `zkrpc health <service>`: asks every registered server of the service the
 * built-in `zkrpc.health` method and prints each one's status.
 *
 * @module
 */

import { Connection } from "../client/connection.ts";
import { HEALTH_METHOD, type HealthStatus } from "../server/server.ts";
import { EXIT_HELP, ExitCode, GLOBAL_HELP } from "./_shared.ts";
import { printable, printableJson, printableMessage } from "../_printable.ts";
import { errorMessage } from "../_util.ts";
import { runOnService, tlsHint } from "./call.ts";

/** Help of `zkrpc health`. */
export const HEALTH_HELP = `Usage: zkrpc health SERVICE [options]

Asks every registered server of SERVICE for its health (the built-in
"zkrpc.health" method) and prints one line per server: "serving",
"not-serving" (warming up, taken out of rotation or closing) or the error
that kept it from answering. Exits 0 when every server is serving, 1
otherwise. With --json, prints [{ server, status }...].

Examples:
  zkrpc health calculator
  zkrpc health calculator --json

${GLOBAL_HELP}

${EXIT_HELP}`;

/**
 * Runs `zkrpc health`.
 *
 * @param args The arguments after `health`.
 * @returns The exit code.
 */
export async function health(args: string[]): Promise<number> {
  return await runOnService(
    "health",
    args,
    HEALTH_HELP,
    (service) => `check the health of service "${service}"`,
    async (channel, { options }) => {
      await channel.ready({ timeout: options.timeout });
      const rows = await Promise.all(
        channel.endpoints().map(async ({ key, member }) => {
          let status: HealthStatus | string;
          try {
            await using conn = await Connection.connect({
              hostname: member.host,
              port: member.port,
              tls: member.tls === true,
            }, options.caCerts ? { caCerts: options.caCerts } : {});
            const answer = await conn.call(HEALTH_METHOD, [], {
              timeout: options.timeout,
            }) as { status: HealthStatus };
            status = answer.status;
          } catch (error) {
            status = `error: ${errorMessage(error)}`;
          }
          return { server: key, status };
        }),
      );
      if (options.json) console.log(printableJson(rows, { indent: 2 }));
      else {
        for (const row of rows) {
          console.log(
            `${printable(row.server)}  ${printableMessage(row.status)}`,
          );
        }
        const hint = tlsHint(rows.map((row) => row.status).join("\n"));
        if (hint !== undefined) console.error(hint);
      }
      return rows.every((row) => row.status === "serving")
        ? ExitCode.Ok
        : ExitCode.RemoteError;
    },
  );
}
