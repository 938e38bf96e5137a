/**
 * The module docs read top-down, as JSR shows them (read from
 * `deno doc --json`, which keeps the export order): `mod.ts` opens with a
 * runnable example of serve, a channel and a stub; its symbols come in the
 * order a newcomer needs them, the errors last; and every entry point's
 * module doc opens by saying who it is for.
 *
 * @module
 */
import assert from "node:assert/strict";
import { denoDoc } from "./_deno_doc.ts";

const ROOT = new URL("../", import.meta.url);

/** The module doc and the symbol names, in order, of one entry point. */
async function entryPoint(
  file: string,
): Promise<{ doc: string; names: string[] }> {
  const json = await denoDoc([file]);
  const node = json.nodes[new URL(file, ROOT).href] as
    & (typeof json.nodes)[string]
    & { module_doc?: { doc?: string } };
  assert.ok(node, `deno doc --json ${file}`);
  return {
    doc: node.module_doc?.doc ?? "",
    names: node.symbols.map((symbol) => symbol.name),
  };
}

Deno.test("mod.ts lists serve, DistributedChannel, stub and StaticMembership first, in that order, and the errors last", async () => {
  const { names } = await entryPoint("mod.ts");
  const first = ["serve", "DistributedChannel", "stub", "StaticMembership"]
    .map((name) => names.indexOf(name));
  assert.ok(first.every((i) => i >= 0), names.join(", "));
  assert.deepEqual(first, first.toSorted((a, b) => a - b), names.join(", "));
  const errors = names.flatMap((name, i) =>
    /Error(Registry|Payload)?$/.test(name) ? [i] : []
  );
  assert.ok(errors.length >= 10, names.join(", "));
  // Every error symbol after every other symbol: one block at the end.
  assert.equal(Math.min(...errors), names.length - errors.length);
  assert.ok(Math.max(...first) < Math.min(...errors));
});

Deno.test("mod.ts's module doc opens with a runnable example of serve, a channel and a stub", async () => {
  const { doc } = await entryPoint("mod.ts");
  const example = /```ts\n([\s\S]*?)```/.exec(doc);
  assert.ok(example, "mod.ts's module doc has a TypeScript example");
  // The example comes right after the opening paragraph.
  const before = doc.slice(0, example.index).trim();
  assert.equal(before.split(/\n\s*\n/).length, 1, before);
  for (const piece of ["serve(", "new DistributedChannel(", "stub<"]) {
    assert.ok(example[1]!.includes(piece), `the example uses ${piece}`);
  }
  assert.doesNotMatch(example[0], /```ts ignore/);
});

Deno.test("every entry point's module doc opens by saying who it is for", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  ) as { exports: Record<string, string> };
  const files = Object.values(config.exports).map((p) => p.slice(2));
  assert.equal(files.length, 6);
  for (const file of files) {
    const { doc } = await entryPoint(file);
    const opening = doc.split(/\n\s*\n/)[0]!.replace(/\s+/g, " ");
    assert.match(opening, /\bFor (applications|code|the|operators)\b/, file);
  }
});
