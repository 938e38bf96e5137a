/**
 * What importing each entry point (and each npm package zkrpc uses) adds to
 * the old generation of a fresh process, measured after full collections,
 * each in a process of its own. V8 starts incremental marking only once a
 * process's old generation is over 8 MiB (`kV8ActivationThreshold`); a
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
import { fullCollection } from "./gc_stats.ts";
import { runDeno } from "../src/testing/child_process.ts";

/** V8's `kV8ActivationThreshold`: no incremental marking below it. */
export const ACTIVATION_THRESHOLD_MIB = 8;

/** Entry points and packages, relative to the project or as specifiers. */
export const IMPORTS: readonly string[] = [
  "./mod.ts",
  "./zookeeper.ts",
  "./src/client/connection.ts",
  "./src/server/server.ts",
  "@opentelemetry/api",
  "msgpackr/pack",
];

/**
 * The process's old generation (every space but the young one) after full
 * collections, in MiB. Needs `--expose-gc`.
 *
 * @returns MiB.
 */
export function oldGenerationMb(): number {
  if (fullCollection === undefined) {
    throw new Error("Run with --v8-flags=--expose-gc");
  }
  for (let i = 0; i < 3; i++) fullCollection();
  return v8.getHeapSpaceStatistics()
    .filter((space) => space.space_name !== "new_space")
    .reduce((sum, space) => sum + space.space_used_size, 0) / 2 ** 20;
}

const ROOT = new URL("../", import.meta.url);

async function measureInChild(specifier: string): Promise<string> {
  const { code, stdout, stderr } = await runDeno([
    "run",
    "--allow-read",
    "--allow-env",
    "--allow-sys",
    "--v8-flags=--expose-gc",
    new URL("bench/import_heap.ts", ROOT).pathname,
    "--child",
    specifier,
  ], { cwd: ROOT });
  return (code === 0 ? stdout : stderr).trim();
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
      `${specifier.padEnd(28)} +${(after - before).toFixed(2)} MiB -> ${
        after.toFixed(2)
      } MiB${after > ACTIVATION_THRESHOLD_MIB ? " (over the threshold)" : ""}`,
    );
  } else {
    console.log(
      `old generation after import, each in a fresh process (MiB; V8 starts incremental marking over ${ACTIVATION_THRESHOLD_MIB} MiB)`,
    );
    for (const specifier of IMPORTS) {
      console.log(await measureInChild(specifier));
    }
  }
}
