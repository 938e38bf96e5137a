/**
 * `deno doc --json` of some entry points, for the tests that read the public
 * docs (names, links, `@default` tags) the way JSR does.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runDeno } from "../src/testing/child_process.ts";

const ROOT = new URL("../", import.meta.url);

/** A symbol of `deno doc --json` (Deno 2: `{ version, nodes }`). */
export interface DocSymbol {
  name: string;
  declarations: {
    kind: string;
    def?: {
      methods?: { name: string }[];
      properties?: {
        name: string;
        jsDoc?: { doc?: string; tags?: { kind: string; value?: string }[] };
      }[];
    };
  }[];
}

/** The output of `deno doc --json`: per module URL, its symbols. */
export interface DocJson {
  nodes: Record<string, { symbols: DocSymbol[] }>;
}

/**
 * Runs `deno doc --json` on `files` (paths relative to the repository root).
 *
 * @param files Entry point files, e.g. `["mod.ts"]`.
 * @returns The parsed output.
 */
export async function denoDoc(files: string[]): Promise<DocJson> {
  const { code, stdout, stderr } = await runDeno(
    ["doc", "--json", ...files],
    { cwd: ROOT, timeout: 120_000 },
  );
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout) as DocJson;
}
