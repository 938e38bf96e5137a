/**
 * `deno task provision`: find Java and ZooKeeper for the tests and the demo,
 * installing Debian's `zookeeper` package when they are missing and the
 * machine allows it, or stop with the commands for this platform. The same
 * step `startZooKeeper()` takes; CI runs it before the tests.
 *
 * ```sh
 * deno task provision
 * ZKRPC_NO_INSTALL=1 deno task provision   # never install: report only
 * ```
 *
 * Permissions (the `provision` task): `--allow-read` (the jars, wherever
 * `ZOOKEEPER_HOME` points, and `/etc/os-release`),
 * `--allow-run=/usr/bin/apt-get,/usr/bin/sudo` (the install),
 * `--allow-env=ZOOKEEPER_HOME,JAVA_HOME,ZKRPC_NO_INSTALL,PATH,HOME,XDG_CACHE_HOME`
 * and `--allow-sys=uid` (root runs `apt-get` itself, others `sudo -n`).
 *
 * Exit codes: 0 found or installed, 1 missing and not installed, 2 wrong
 * flags.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { provision } from "./provision.ts";

const USAGE = `Usage: deno task provision [options]

Finds Java and ZooKeeper (ZOOKEEPER_HOME, Debian's /usr/share/java, Homebrew,
~/.cache/zkrpc); when missing on Debian/Ubuntu as root or with password-less
sudo, installs Debian's zookeeper package (apt-get update, apt-get install).
Otherwise prints the commands that install them on this platform.

Options:
  --no-install        never install (as ZKRPC_NO_INSTALL=1 does)
  --classpath CP      use these jars (":"-joined) instead of looking
  --debian-jar PATH   where Debian's jar is looked for
                      (default /usr/share/java/zookeeper.jar)
  --cache-dir DIR     where an unpacked Apache release is looked for
                      (default $XDG_CACHE_HOME/zkrpc, else ~/.cache/zkrpc)
  -h, --help          show this help

Exit codes: 0 found or installed, 1 missing and not installed, 2 wrong flags.`;

let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      "no-install": { type: "boolean" },
      classpath: { type: "string" },
      "debian-jar": { type: "string" },
      "cache-dir": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  console.error(`provision: ${(error as Error).message}\n\n${USAGE}`);
  Deno.exit(2);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}

try {
  const found = await provision({
    ...(values["no-install"] ? { install: false } : {}),
    ...(values.classpath !== undefined ? { classpath: values.classpath } : {}),
    ...(values["debian-jar"] !== undefined
      ? { debianJar: values["debian-jar"] }
      : {}),
    ...(values["cache-dir"] !== undefined
      ? { cacheDir: values["cache-dir"] }
      : {}),
  });
  console.log(
    `zkrpc: ZooKeeper ${found.installed ? "installed" : "found"} (${
      found.source === "option" ? "--classpath" : found.source
    }: ${found.classpath[0]}), Java: ${found.java}`,
  );
} catch (error) {
  console.error((error as Error).message);
  Deno.exit(1);
}
