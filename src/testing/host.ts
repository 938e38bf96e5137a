/**
 * The provisioning step's view of the machine: environment variables, files,
 * executables on `PATH`, the user id, what this process may run. The planner
 * (`provision_plan.ts`) reads the machine only through {@linkcode Host}, so
 * its tests pass a fake one; {@linkcode systemHost} is the real machine.
 *
 * The real host never triggers a permission prompt: before it reads an
 * environment variable, runs a command or asks for the user id it checks that
 * the permission is already granted, and otherwise answers as if the thing
 * were absent.
 *
 * @module
 */

/** What the provisioning planner may know about the machine. */
export interface Host {
  /** The operating system, as in `Deno.build.os`. */
  readonly os: string;
  /** An environment variable; `undefined` when unset or not readable. */
  env(name: string): string | undefined;
  /** Whether this process may read the environment variable `name`. */
  canReadEnv(name: string): boolean;
  /** Whether the path exists. */
  exists(path: string): boolean;
  /** Names of the files (not directories) in `dir`; `[]` when it is missing. */
  files(dir: string): string[];
  /** Names of the directories in `dir`; `[]` when it is missing. */
  dirs(dir: string): string[];
  /** The content of `/etc/os-release`, or `undefined`. */
  osRelease(): string | undefined;
  /**
   * The absolute path of `command` on `PATH`, or `undefined` when it is not
   * there.
   */
  which(command: string): string | undefined;
  /** The user id, or `null` when it cannot be known. */
  uid(): number | null;
  /** Whether this process may run the executable at `path`. */
  canRun(path: string): boolean;
  /** Whether `sudo -n true` succeeds (sudo without a password prompt). */
  sudoWithoutPassword(): boolean;
}

/**
 * Where `which()` looks when `PATH` cannot be read: the usual directories of
 * Linux and macOS (Homebrew included).
 */
const STANDARD_PATH = [
  "/usr/local/sbin",
  "/usr/local/bin",
  "/usr/sbin",
  "/usr/bin",
  "/sbin",
  "/bin",
  "/opt/homebrew/bin",
];

function granted(descriptor: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(descriptor).state === "granted";
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    // missing, or not readable: either way not usable
    return false;
  }
}

function entries(dir: string, directories: boolean): string[] {
  try {
    const names: string[] = [];
    for (const entry of Deno.readDirSync(dir)) {
      const isDirectory = entry.isDirectory ||
        (entry.isSymlink && isDirectoryPath(`${dir}/${entry.name}`));
      if (isDirectory === directories) names.push(entry.name);
    }
    return names.sort();
  } catch {
    return [];
  }
}

function isDirectoryPath(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The real machine, read with the permissions this process already has.
 *
 * @returns A {@linkcode Host} backed by `Deno` APIs.
 */
export function systemHost(): Host {
  const canReadEnv = (name: string) => granted({ name: "env", variable: name });
  const env = (name: string) =>
    canReadEnv(name) ? Deno.env.get(name) : undefined;
  const canRun = (path: string) => granted({ name: "run", command: path });
  return {
    os: Deno.build.os,
    env,
    canReadEnv,
    exists,
    files: (dir) => entries(dir, false),
    dirs: (dir) => entries(dir, true),
    osRelease() {
      try {
        return Deno.readTextFileSync("/etc/os-release");
      } catch {
        return undefined;
      }
    },
    which(command) {
      const path = env("PATH");
      const dirs = path === undefined ? STANDARD_PATH : path.split(":");
      for (const dir of dirs) {
        if (dir === "") continue;
        const candidate = `${dir}/${command}`;
        try {
          const info = Deno.statSync(candidate);
          if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) {
            return candidate;
          }
        } catch {
          // not here
        }
      }
      return undefined;
    },
    uid() {
      return granted({ name: "sys", kind: "uid" }) ? Deno.uid() : null;
    },
    canRun,
    sudoWithoutPassword() {
      const sudo = this.which("sudo");
      if (sudo === undefined || !canRun(sudo)) return false;
      try {
        return new Deno.Command(sudo, {
          args: ["-n", "true"],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).outputSync().success;
      } catch {
        return false;
      }
    },
  };
}
