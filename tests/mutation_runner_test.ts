/**
 * The mutation runner's scope (`mutation/run.ts`): every entry names an
 * existing module and existing test files, names are unique, and the
 * incremental selection picks a module when it or one of its tests changed.
 * No I/O beyond reading the tree.
 *
 * @module
 */
import assert from "node:assert/strict";
import { changedTargets, TARGETS } from "../mutation/run.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("mutation scope: unique names, existing modules and test files, the issue's modules all in", async () => {
  const names = TARGETS.map((t) => t.name);
  assert.equal(new Set(names).size, names.length);
  for (const target of TARGETS) {
    await Deno.stat(new URL(target.module, ROOT));
    assert.ok(target.tests.length > 0, target.name);
    for (const test of target.tests) await Deno.stat(new URL(test, ROOT));
  }
  const modules = TARGETS.map((t) => t.module);
  for (
    const module of [
      "src/zookeeper/registration.ts",
      "src/zookeeper/membership.ts",
      "src/zookeeper/_secure_path.ts",
      "src/zookeeper/session.ts",
      "src/zookeeper/_wire_client.ts",
      "src/zookeeper/_jute.ts",
      "src/_interceptors.ts",
      "src/telemetry/telemetry.ts",
      "src/telemetry/_spans.ts",
      "src/protocol/metadata.ts",
      "src/protocol/msgpack_codec.ts",
      "src/protocol/_msgpack_decode.ts",
      "src/protocol/frame_writer.ts",
      "src/channel/channel.ts",
      "src/channel/hedging.ts",
      "src/channel/pool.ts",
      "src/client/connection.ts",
      "src/server/server.ts",
      "src/_async.ts",
    ]
  ) assert.ok(modules.includes(module), module);
});

Deno.test("incremental selection: a changed module or test file selects its targets, nothing else does", () => {
  const pick = (...files: string[]) =>
    changedTargets(TARGETS, new Set(files)).map((t) => t.name);
  assert.deepEqual(pick("src/protocol/metadata.ts"), ["metadata"]);
  assert.deepEqual(pick("tests/metadata_unit_test.ts"), ["metadata"]);
  assert.deepEqual(pick("tests/msgpack_unit_test.ts"), [
    "msgpack_decode",
    "msgpack_simple",
    "msgpack_codec",
  ]);
  assert.deepEqual(pick("README.md", "docs/testing.md"), []);
  assert.deepEqual(pick(), []);
  assert.deepEqual(pick("src/errors.ts", "src/_interceptors.ts"), [
    "errors",
    "interceptors",
  ]);
});
