/**
 * What importing each entry point (and each npm package zkrpc uses) adds to
 * the old generation of a fresh process, measured after full collections,
 * each in a process of its own. V8 starts incremental marking only once a
 * process's old generation is over 8 MB (`kV8ActivationThreshold`); a
 * process under it has no old-generation collection until its heap limit,
 * one over it has its first as soon as its young generation has grown under
 * load. See docs/performance.md, "Sixth round".
 *
 * Usage: `deno run --allow-run --allow-read --allow-env bench/import_heap.ts`
 * (it starts `deno run --v8-flags=--expose-gc` children that may read the
 * project and the npm cache).
 *
 * @module
 */
import v8 from "node:v8";

/** V8's `kV8ActivationThreshold`: no incremental marking below it. */
export const ACTIVATION_THRESHOLD_MB = 8;

/** Entry points and packages, relative to the project or as specifiers. */
export const IMPORTS: readonly string[] = [
  "./mod.ts",
  "./zookeeper.ts",
  "./src/client/connection.ts",
  "./src/server/server.ts",
  "node-zookeeper-client",
  "@opentelemetry/api",
  "msgpackr/pack",
];

/**
 * The process's old generation (every space but the young one) after full
 * collections, in MB. Needs `--expose-gc`.
 *
 * @returns MB.
 */
export function oldGenerationMb(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("Run with --v8-flags=--expose-gc");
  for (let i = 0; i < 3; i++) gc();
  return v8.getHeapSpaceStatistics()
    .filter((space) => space.space_name !== "new_space")
    .reduce((sum, space) => sum + space.space_used_size, 0) / 2 ** 20;
}

const ROOT = new URL("../", import.meta.url);

async function measureInChild(specifier: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-sys",
      "--v8-flags=--expose-gc",
      new URL("bench/import_heap.ts", ROOT).pathname,
      "--child",
      specifier,
    ],
    cwd: ROOT.pathname,
  }).output();
  const out = new TextDecoder().decode(code === 0 ? stdout : stderr);
  return out.trim();
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") {
    const specifier = Deno.args[1]!;
    const before = oldGenerationMb();
    await import(
      specifier.startsWith(".") ? new URL(specifier, ROOT).href : specifier
    );
    const after = oldGenerationMb();
    console.log(
      `${specifier.padEnd(28)} +${(after - before).toFixed(2)} MB -> ${
        after.toFixed(2)
      } MB${after > ACTIVATION_THRESHOLD_MB ? " (over 8 MB)" : ""}`,
    );
  } else {
    console.log(
      `old generation after import, each in a fresh process (V8 starts incremental marking over ${ACTIVATION_THRESHOLD_MB} MB)`,
    );
    for (const specifier of IMPORTS) {
      console.log(await measureInChild(specifier));
    }
  }
}
