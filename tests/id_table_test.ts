import assert from "node:assert/strict";
import fc from "fast-check";
import { IdTable } from "../src/_id_table.ts";

Deno.test("IdTable: get, has, set, delete and size follow a Map of the same operations", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("set" as const), id: fc.nat(40) }),
    fc.record({ kind: fc.constant("delete" as const), id: fc.nat(40) }),
    fc.record({
      kind: fc.constant("set" as const),
      id: fc.constantFrom(0, 0xffffffff, 0x80000000, 1 << 20, 3 << 20),
    }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const table = new IdTable<number>(4);
      const model = new Map<number, number>();
      ops.forEach(({ kind, id }, step) => {
        if (kind === "set") {
          table.set(id, step);
          model.set(id, step);
        } else {
          assert.equal(table.delete(id), model.delete(id));
        }
        assert.equal(table.size, model.size);
      });
      for (let id = 0; id <= 40; id++) {
        assert.equal(table.get(id), model.get(id));
        assert.equal(table.has(id), model.has(id));
      }
      for (const [id, value] of model) assert.equal(table.get(id), value);
      assert.deepEqual(
        table.values().sort((a, b) => a - b),
        [...model.values()].sort((a, b) => a - b),
      );
    }),
  );
});

Deno.test("IdTable: ids a peer chooses to share low bits still all resolve", () => {
  const table = new IdTable<number>();
  for (let i = 0; i < 2000; i++) table.set(i << 16, i);
  for (let i = 0; i < 2000; i += 2) assert.equal(table.delete(i << 16), true);
  assert.equal(table.size, 1000);
  for (let i = 0; i < 2000; i++) {
    assert.equal(table.get(i << 16), i % 2 === 1 ? i : undefined);
  }
});

Deno.test("IdTable: clear forgets everything and undefined values are refused", () => {
  const table = new IdTable<string>();
  table.set(1, "a");
  table.set(2, "b");
  table.clear();
  assert.equal(table.size, 0);
  assert.equal(table.get(1), undefined);
  assert.throws(
    () => table.set(3, undefined as unknown as string),
    /Cannot hold undefined in an IdTable/,
  );
});
