/**
 * The provisioning step: the decision for each platform branch over a fake
 * machine (nothing here touches the real system), the install path with a
 * stand-in `apt-get`, and `deno task provision`'s entry point stopping at
 * once with the install command when told never to install.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Host, systemHost } from "../src/testing/host.ts";
import { provision } from "../src/testing/provision.ts";
import {
  type PlanOptions,
  planProvisioning,
  type ProvisioningPlan,
} from "../src/testing/provision_plan.ts";
import { runDeno } from "../src/testing/child_process.ts";

const DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n';
const UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n';
const FEDORA = 'NAME="Fedora Linux"\nID=fedora\n';
const ARCH = 'NAME="Arch Linux"\nID=arch\n';
const JAR = "/usr/share/java/zookeeper.jar";

interface FakeMachine {
  os?: string;
  env?: Record<string, string>;
  /** Variables this process may not read. */
  hiddenEnv?: string[];
  /** Existing files (directories are implied by them). */
  files?: string[];
  osRelease?: string;
  /** Commands on PATH: name -> path. */
  path?: Record<string, string>;
  uid?: number | null;
  /** Executables this process may not run. */
  forbidden?: string[];
  sudoWithoutPassword?: boolean;
}

/** A machine that exists only in memory; counts `sudo -n` probes. */
function fakeHost(machine: FakeMachine): Host & { sudoProbes: number } {
  const files = new Set(machine.files ?? []);
  const children = (dir: string) =>
    [...files].filter((file) => file.startsWith(`${dir}/`)).map((file) =>
      file.slice(dir.length + 1)
    );
  return {
    os: machine.os ?? "linux",
    sudoProbes: 0,
    env: (name) =>
      machine.hiddenEnv?.includes(name) ? undefined : machine.env?.[name],
    canReadEnv: (name) => !machine.hiddenEnv?.includes(name),
    exists: (path) =>
      files.has(path) || children(path).length > 0 ||
      Object.values(machine.path ?? {}).includes(path),
    files: (dir) => children(dir).filter((name) => !name.includes("/")).sort(),
    dirs: (dir) =>
      [
        ...new Set(
          children(dir).filter((name) => name.includes("/")).map((name) =>
            name.split("/")[0]!
          ),
        ),
      ].sort(),
    osRelease: () => machine.osRelease,
    which: (command) => machine.path?.[command],
    uid: () => machine.uid === undefined ? 1000 : machine.uid,
    canRun: (path) => !machine.forbidden?.includes(path),
    sudoWithoutPassword() {
      this.sudoProbes++;
      return machine.sudoWithoutPassword ?? false;
    },
  };
}

const JAVA = { java: "/usr/bin/java" };
const APT = { "apt-get": "/usr/bin/apt-get" };
const SUDO = { sudo: "/usr/bin/sudo" };

function plan(machine: FakeMachine, options?: PlanOptions): ProvisioningPlan {
  return planProvisioning(fakeHost(machine), options);
}

function assertStop(
  result: ProvisioningPlan,
  why: RegExp,
  commands: string[],
): void {
  assert.equal(result.action, "stop", JSON.stringify(result));
  if (result.action !== "stop") return;
  assert.match(result.why, why);
  assert.deepEqual(result.commands, commands);
}

// --- found -----------------------------------------------------------------

Deno.test("planProvisioning() finds Debian's jar and java on PATH", () => {
  const result = plan({
    osRelease: DEBIAN,
    files: [JAR, "/usr/share/java/slf4j-simple.jar"],
    path: JAVA,
  });
  assert.deepEqual(result, {
    action: "found",
    classpath: {
      entries: [JAR, "/usr/share/java/slf4j-simple.jar"],
      source: "debian",
    },
    java: "java",
  });
});

Deno.test("planProvisioning() prefers ZOOKEEPER_HOME's jars and JAVA_HOME's java", () => {
  const result = plan({
    osRelease: DEBIAN,
    env: { ZOOKEEPER_HOME: "/opt/zk", JAVA_HOME: "/opt/jdk" },
    files: [
      JAR,
      "/opt/zk/zookeeper-3.9.2.jar",
      "/opt/zk/README.md",
      "/opt/zk/lib/b.jar",
      "/opt/zk/lib/a.jar",
      "/opt/jdk/bin/java",
    ],
  });
  assert.deepEqual(result, {
    action: "found",
    classpath: {
      entries: [
        "/opt/zk/zookeeper-3.9.2.jar",
        "/opt/zk/lib/a.jar",
        "/opt/zk/lib/b.jar",
      ],
      source: "ZOOKEEPER_HOME",
      home: "/opt/zk",
    },
    java: "/opt/jdk/bin/java",
  });
});

Deno.test("planProvisioning() finds an Apache release unpacked in zkrpc's cache directory", () => {
  const release = "/home/ada/.cache/zkrpc/apache-zookeeper-3.8.4-bin";
  const result = plan({
    osRelease: FEDORA,
    env: { HOME: "/home/ada" },
    files: [`${release}/lib/zookeeper-3.8.4.jar`, `${release}/bin/zkServer.sh`],
    path: JAVA,
  });
  assert.equal(result.action, "found");
  if (result.action !== "found") return;
  assert.equal(result.classpath.source, "cache");
  assert.deepEqual(result.classpath.entries, [
    `${release}/lib/zookeeper-3.8.4.jar`,
  ]);
});

Deno.test("planProvisioning() finds Homebrew's zookeeper and its keg-only openjdk on macOS", () => {
  const result = plan({
    os: "darwin",
    files: [
      "/opt/homebrew/opt/zookeeper/libexec/lib/zookeeper-3.9.2.jar",
      "/opt/homebrew/opt/openjdk/bin/java",
    ],
    path: { java: "/usr/bin/java", brew: "/opt/homebrew/bin/brew" },
  });
  assert.equal(result.action, "found");
  if (result.action !== "found") return;
  assert.equal(result.classpath.source, "homebrew");
  assert.equal(result.java, "/opt/homebrew/opt/openjdk/bin/java");
});

Deno.test("planProvisioning() takes an explicit classpath and java as given", () => {
  const result = plan(
    { osRelease: DEBIAN, files: ["/jars/zk.jar"] },
    { classpath: "/jars/zk.jar:/jars/*", java: "/my/java" },
  );
  assert.deepEqual(result, {
    action: "found",
    classpath: { entries: ["/jars/zk.jar", "/jars/*"], source: "option" },
    java: "/my/java",
  });
  assert.throws(
    () => plan({}, { classpath: "" }),
    new TypeError("Cannot start ZooKeeper: the classpath option is empty"),
  );
});

Deno.test("planProvisioning() assumes java is there when PATH cannot be read", () => {
  const result = plan({
    osRelease: DEBIAN,
    files: [JAR],
    hiddenEnv: ["PATH"],
  });
  assert.equal(result.action, "found");
});

// --- will install (Debian/Ubuntu) ------------------------------------------

Deno.test("planProvisioning() installs Debian's zookeeper with apt-get as root", () => {
  const result = plan({ osRelease: DEBIAN, uid: 0, path: { ...APT } });
  assert.deepEqual(result, {
    action: "install",
    why:
      "no ZooKeeper jars found (ZOOKEEPER_HOME is unset, no /usr/share/java/zookeeper.jar) and no Java runtime (no java on PATH and JAVA_HOME is unset)",
    packages: ["zookeeper"],
    steps: [
      ["/usr/bin/apt-get", "update"],
      [
        "/usr/bin/apt-get",
        "install",
        "-y",
        "-o",
        "DPkg::Lock::Timeout=300",
        "zookeeper",
      ],
    ],
    command: "apt-get update && apt-get install -y zookeeper",
  });
});

Deno.test("planProvisioning() installs through sudo -n on Ubuntu when sudo needs no password", () => {
  const host = fakeHost({
    osRelease: UBUNTU,
    env: { ZKRPC_NO_INSTALL: "0" },
    path: { ...APT, ...SUDO, ...JAVA },
    sudoWithoutPassword: true,
  });
  const result = planProvisioning(host);
  assert.equal(result.action, "install", JSON.stringify(result));
  if (result.action !== "install") return;
  assert.match(result.why, /^no ZooKeeper jars found/);
  assert.deepEqual(result.steps[1], [
    "/usr/bin/sudo",
    "-n",
    "env",
    "DEBIAN_FRONTEND=noninteractive",
    "/usr/bin/apt-get",
    "install",
    "-y",
    "-o",
    "DPkg::Lock::Timeout=300",
    "zookeeper",
  ]);
  assert.equal(
    result.command,
    "sudo apt-get update && sudo apt-get install -y zookeeper",
  );
  assert.equal(host.sudoProbes, 1);
});

Deno.test("planProvisioning() installs only a Java runtime when the jars are there", () => {
  const result = plan({ osRelease: DEBIAN, uid: 0, files: [JAR], path: APT });
  assert.equal(result.action, "install");
  if (result.action !== "install") return;
  assert.deepEqual(result.packages, ["default-jre-headless"]);
  assert.match(result.why, /^no Java runtime/);
});

// --- cannot install, with why ------------------------------------------------

Deno.test("planProvisioning() stops with the command when ZKRPC_NO_INSTALL is set, without probing sudo", () => {
  const host = fakeHost({
    osRelease: DEBIAN,
    env: { ZKRPC_NO_INSTALL: "1" },
    path: { ...APT, ...SUDO, ...JAVA },
    sudoWithoutPassword: true,
  });
  assertStop(
    planProvisioning(host),
    /^no ZooKeeper jars found .*; not installing because ZKRPC_NO_INSTALL is set$/,
    ["sudo apt-get update && sudo apt-get install -y zookeeper"],
  );
  assert.equal(host.sudoProbes, 0);
});

Deno.test("planProvisioning() stops when installing is turned off by option", () => {
  assertStop(
    plan({ osRelease: DEBIAN, uid: 0, path: { ...APT, ...JAVA } }, {
      install: false,
    }),
    /not installing because installing is turned off \(install: false\)$/,
    ["apt-get update && apt-get install -y zookeeper"],
  );
});

Deno.test("planProvisioning() stops when it may not read ZKRPC_NO_INSTALL", () => {
  assertStop(
    plan({
      osRelease: DEBIAN,
      uid: 0,
      path: { ...APT, ...JAVA },
      hiddenEnv: ["ZKRPC_NO_INSTALL"],
    }),
    /because ZKRPC_NO_INSTALL cannot be read \(grant --allow-env=ZKRPC_NO_INSTALL\)$/,
    ["apt-get update && apt-get install -y zookeeper"],
  );
});

Deno.test("planProvisioning() stops when sudo asks for a password", () => {
  assertStop(
    plan({ osRelease: DEBIAN, path: { ...APT, ...SUDO, ...JAVA } }),
    /because it does not run as root and sudo asks for a password$/,
    ["sudo apt-get update && sudo apt-get install -y zookeeper"],
  );
});

Deno.test("planProvisioning() stops when not root and sudo is missing or not allowed", () => {
  assertStop(
    plan({ osRelease: DEBIAN, path: { ...APT, ...JAVA } }),
    /because it does not run as root and sudo is not installed$/,
    ["sudo apt-get update && sudo apt-get install -y zookeeper"],
  );
  assertStop(
    plan({
      osRelease: DEBIAN,
      path: { ...APT, ...SUDO, ...JAVA },
      forbidden: ["/usr/bin/sudo"],
      sudoWithoutPassword: true,
    }),
    /and may not run \/usr\/bin\/sudo \(grant --allow-run=\/usr\/bin\/sudo\)$/,
    ["sudo apt-get update && sudo apt-get install -y zookeeper"],
  );
  assertStop(
    plan({ osRelease: DEBIAN, uid: null, path: { ...APT, ...JAVA } }),
    /because it cannot tell whether it runs as root \(grant --allow-sys=uid\) and sudo is not installed$/,
    ["sudo apt-get update && sudo apt-get install -y zookeeper"],
  );
});

Deno.test("planProvisioning() stops as root when it may not run apt-get, or there is none", () => {
  assertStop(
    plan({
      osRelease: DEBIAN,
      uid: 0,
      path: { ...APT, ...JAVA },
      forbidden: ["/usr/bin/apt-get"],
    }),
    /because this process may not run \/usr\/bin\/apt-get \(grant --allow-run=\/usr\/bin\/apt-get\)$/,
    ["apt-get update && apt-get install -y zookeeper"],
  );
  assertStop(
    plan({ osRelease: DEBIAN, uid: 0, path: JAVA }),
    /because apt-get is not on PATH$/,
    ["apt-get update && apt-get install -y zookeeper"],
  );
});

Deno.test("planProvisioning() never installs over a ZOOKEEPER_HOME or JAVA_HOME that points at nothing", () => {
  const machine = {
    osRelease: DEBIAN,
    uid: 0,
    path: { ...APT, ...JAVA },
    files: [JAR],
  };
  assertStop(
    plan({ ...machine, env: { ZOOKEEPER_HOME: "/empty" } }),
    /^ZOOKEEPER_HOME is "\/empty" but neither it nor its lib\/ directory holds any jar; point it at an unpacked ZooKeeper release or unset it$/,
    ["apt-get update && apt-get install -y zookeeper"],
  );
  assertStop(
    plan({ ...machine, env: { JAVA_HOME: "/nojdk" } }),
    /^JAVA_HOME is "\/nojdk" but \/nojdk\/bin\/java does not exist; point it at a Java runtime or unset it$/,
    ["apt-get update && apt-get install -y default-jre-headless"],
  );
  assertStop(
    plan(machine, { classpath: ["/gone.jar"] }),
    /^classpath entry "\/gone\.jar" does not exist/,
    ["apt-get update && apt-get install -y zookeeper"],
  );
});

Deno.test("planProvisioning() stops on Fedora with dnf for Java and the Apache release into the cache", () => {
  const result = plan({
    osRelease: FEDORA,
    uid: 0,
    env: { HOME: "/root" },
    path: { dnf: "/usr/bin/dnf" },
  });
  assertStop(
    result,
    /no Java runtime .*; not installing because zkrpc installs packages itself only on Debian\/Ubuntu, not on Fedora$/,
    [
      "sudo dnf install -y java-17-openjdk-headless",
      "mkdir -p /root/.cache/zkrpc && curl -fsSL https://archive.apache.org/dist/zookeeper/zookeeper-3.8.4/apache-zookeeper-3.8.4-bin.tar.gz | tar -xz -C /root/.cache/zkrpc",
      "# (found there without settings; or unpack it anywhere and export ZOOKEEPER_HOME=/path/to/apache-zookeeper-3.8.4-bin)",
    ],
  );
  assert.equal(result.action === "stop" && result.platform, "Fedora");
});

Deno.test("planProvisioning() stops on macOS with brew install zookeeper", () => {
  assertStop(
    plan({ os: "darwin", path: { brew: "/opt/homebrew/bin/brew" } }),
    /not on macOS$/,
    ["brew install zookeeper"],
  );
  assertStop(
    plan({ os: "darwin" }),
    /not on macOS$/,
    ["# install Homebrew first: https://brew.sh", "brew install zookeeper"],
  );
});

Deno.test("planProvisioning() stops elsewhere with a Java runtime and the Apache release", () => {
  assertStop(
    plan({ osRelease: ARCH, env: { XDG_CACHE_HOME: "/c" }, path: JAVA }),
    /only on Debian\/Ubuntu, not on this system$/,
    [
      "mkdir -p /c/zkrpc && curl -fsSL https://archive.apache.org/dist/zookeeper/zookeeper-3.8.4/apache-zookeeper-3.8.4-bin.tar.gz | tar -xz -C /c/zkrpc",
      "# (found there without settings; or unpack it anywhere and export ZOOKEEPER_HOME=/path/to/apache-zookeeper-3.8.4-bin)",
    ],
  );
  assertStop(
    plan({ os: "linux" }),
    /not on this system$/,
    [
      "# install a Java 17 runtime with your package manager",
      "curl -fsSL https://archive.apache.org/dist/zookeeper/zookeeper-3.8.4/apache-zookeeper-3.8.4-bin.tar.gz | tar -xz   # then export ZOOKEEPER_HOME=/path/to/apache-zookeeper-3.8.4-bin",
    ],
  );
});

// --- the install path, with a stand-in apt-get ------------------------------

Deno.test("provision() says what it installs, runs apt-get update then install, and finds the result", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zkrpc-provision-" });
  try {
    const jar = `${dir}/zookeeper.jar`;
    const calls = `${dir}/calls`;
    const aptGet = `${dir}/apt-get`;
    await Deno.writeTextFile(
      aptGet,
      `#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> "${calls}"\necho "progress: $1"\n[ "$1" = install ] && touch "${jar}"\nexit 0\n`,
    );
    await Deno.chmod(aptGet, 0o755);
    const fake = fakeHost({
      osRelease: DEBIAN,
      uid: 0,
      path: { "apt-get": aptGet, ...JAVA },
    });
    // The real file system, inside the temporary directory only.
    const host: Host = {
      ...fake,
      exists: (path) => path.startsWith(`${dir}/`) && systemHost().exists(path),
    };
    const logged: string[] = [];
    const found = await provision(
      { debianJar: jar, log: (line) => logged.push(line) },
      host,
    );
    assert.deepEqual(found, {
      classpath: [jar],
      source: "debian",
      java: "java",
      installed: true,
    });
    assert.equal(logged.length, 1);
    assert.match(
      logged[0]!,
      /installing Debian's zookeeper package \(it brings a Java runtime\): apt-get update && apt-get install -y zookeeper\nzkrpc: set ZKRPC_NO_INSTALL=1 to never install anything$/,
    );
    assert.equal(
      await Deno.readTextFile(calls),
      "noninteractive update\nnoninteractive install -y -o DPkg::Lock::Timeout=300 zookeeper\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("provision() reports a failed install with the command and its exit code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zkrpc-provision-" });
  try {
    const aptGet = `${dir}/apt-get`;
    await Deno.writeTextFile(aptGet, `#!/bin/sh\nexit 100\n`);
    await Deno.chmod(aptGet, 0o755);
    const host = fakeHost({
      osRelease: DEBIAN,
      uid: 0,
      path: { "apt-get": aptGet, ...JAVA },
    });
    await assert.rejects(
      provision({ debianJar: `${dir}/zookeeper.jar`, log: () => {} }, host),
      new Error(
        `Cannot install ZooKeeper: "${aptGet} update" exited with code 100`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- the real entry point ------------------------------------------------------

const ROOT = new URL("../", import.meta.url);
/** The `provision` task's own command line: its flags and entry point. */
const TASK = (JSON.parse(
  await Deno.readTextFile(new URL("deno.json", ROOT)),
).tasks.provision as string).split(" ");

async function runProvision(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  const output = await runDeno([...TASK.slice(1), ...args], {
    cwd: ROOT,
    env,
    timeout: 120_000,
  });
  return { ...output, ms: performance.now() - started };
}

/** The install line this machine should be told, when it is Debian/Ubuntu. */
function expectedInstallLine(): RegExp {
  let release = "";
  try {
    release = Deno.readTextFileSync("/etc/os-release");
  } catch {
    // not Linux
  }
  return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(release)
    ? /\n {2}(sudo )?apt-get update && (sudo )?apt-get install -y zookeeper\n$/
    : /\n {2}\S.*\n$/;
}

Deno.test("deno task provision with ZKRPC_NO_INSTALL=1 and nothing installed stops at once with the install command", async () => {
  const empty = await Deno.makeTempDir({ prefix: "zkrpc-empty-" });
  try {
    const hidden = ["--debian-jar", `${empty}/zookeeper.jar`];
    const nothing = await runProvision(
      [...hidden, "--cache-dir", empty],
      { ZKRPC_NO_INSTALL: "1", ZOOKEEPER_HOME: "" },
    );
    assert.equal(nothing.code, 1, nothing.stderr);
    assert.equal(nothing.stdout, "");
    assert.match(
      nothing.stderr,
      /^Cannot start ZooKeeper: no ZooKeeper jars found \(.*\); not installing because ZKRPC_NO_INSTALL is set\. To install on .*:\n/,
    );
    assert.match(nothing.stderr, expectedInstallLine());
    // A generous bound: the step itself takes milliseconds, Deno's start
    // (and, on a cold cache, type-checking) the rest.
    // clock-ok: a hang guard for a child process
    assert.ok(nothing.ms < 20_000, `took ${nothing.ms} ms`);

    const emptyHome = await runProvision(hidden, {
      ZKRPC_NO_INSTALL: "1",
      ZOOKEEPER_HOME: empty,
    });
    assert.equal(emptyHome.code, 1, emptyHome.stderr);
    assert.match(
      emptyHome.stderr,
      /^Cannot start ZooKeeper: ZOOKEEPER_HOME is ".*" but neither it nor its lib\/ directory holds any jar; point it at an unpacked ZooKeeper release or unset it\. To install on .*:\n/,
    );
    assert.match(emptyHome.stderr, expectedInstallLine());
    // clock-ok: a hang guard for a child process
    assert.ok(emptyHome.ms < 20_000, `took ${emptyHome.ms} ms`);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("deno task provision finds this machine's ZooKeeper", async () => {
  const found = await runProvision([], { ZKRPC_NO_INSTALL: "1" });
  assert.equal(found.code, 0, found.stderr);
  assert.match(
    found.stdout,
    /^zkrpc: ZooKeeper found \(\w+: .+\), Java: .+\n$/,
  );
});

Deno.test("the permission table (docs/permissions.md) lists the provision task's flags", async () => {
  const readme = await Deno.readTextFile(new URL("docs/permissions.md", ROOT));
  const flags = TASK.slice(2, -1).join(" ");
  assert.equal(TASK.slice(0, 2).join(" "), "deno run");
  assert.match(readme, new RegExp(`\\| \`${RegExp.escape(flags)}\` +\\|`));
});

Deno.test("deno task demo with ZKRPC_NO_INSTALL=1 and an empty ZOOKEEPER_HOME stops at once with the install command", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  );
  const demo = (config.tasks.demo as string).split(" ");
  assert.equal(demo[0], "deno");
  const empty = await Deno.makeTempDir({ prefix: "zkrpc-empty-" });
  try {
    const started = performance.now();
    const output = await new Deno.Command(Deno.execPath(), {
      args: demo.slice(1),
      cwd: ROOT.pathname,
      env: { NO_COLOR: "1", ZKRPC_NO_INSTALL: "1", ZOOKEEPER_HOME: empty },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const ms = performance.now() - started;
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1, stderr);
    assert.equal(new TextDecoder().decode(output.stdout), "");
    assert.match(
      stderr,
      /^demo: Cannot start ZooKeeper: ZOOKEEPER_HOME is ".*" but neither it nor its lib\/ directory holds any jar; point it at an unpacked ZooKeeper release or unset it\. To install on .*:\n/,
    );
    assert.match(stderr, expectedInstallLine());
    // Generous: Deno's start and the demo's imports; no ZooKeeper is started.
    // clock-ok: a hang guard for a child process
    assert.ok(ms < 20_000, `took ${ms} ms`);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
