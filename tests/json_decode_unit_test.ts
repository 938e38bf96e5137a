/**
 * The JSON codec's decode refusals and nesting limit as units: each
 * malformed tag with its exact message, and `MAX_NESTING` levels of arrays,
 * objects and tagged objects at the limit and one past it.
 */
import assert from "node:assert/strict";
import { jsonCodec } from "../src/protocol/codec.ts";

const text = (s: string) => new TextEncoder().encode(s);
const decode = (s: string) => jsonCodec.decode(text(s));

Deno.test("jsonCodec refuses each malformed tag with its exact message", () => {
  const cases: [string, string][] = [
    ['{"$zk":"bytes","v":1}', 'tag "bytes" without base64'],
    ['{"$zk":"bytes","v":"@@"}', 'tag "bytes" with malformed base64'],
    ['{"$zk":"num","v":"1"}', 'tag "num" with a malformed value'],
    ['{"$zk":"num","v":7}', 'tag "num" with a malformed value'],
    ['{"$zk":"num","v":"toString"}', 'tag "num" with a malformed value'],
    ['{"$zk":"date","v":"x"}', 'tag "date" with a malformed value'],
    ['{"$zk":"obj","v":[1]}', 'tag "obj" without an object'],
    ['{"$zk":"obj","v":null}', 'tag "obj" without an object'],
    ['{"$zk":"what","v":1}', 'unknown "$zk" tag'],
  ];
  for (const [json, what] of cases) {
    assert.throws(
      () => decode(json),
      (e) =>
        e instanceof SyntaxError &&
        e.message === `Cannot decode value: ${what}`,
      json,
    );
  }
  assert.deepEqual(
    decode('{"$zk":"bytes","v":"AQI="}'),
    new Uint8Array([1, 2]),
  );
  assert.equal(decode('{"$zk":"num","v":"NaN"}'), NaN);
  assert.equal((decode('{"$zk":"date","v":null}') as Date).valueOf(), NaN);
  assert.deepEqual(decode('{"$zk":"obj","v":{"$zk":1}}'), { $zk: 1 });
});

Deno.test("jsonCodec decodes 1000 levels of arrays, objects and tagged objects, and refuses 1001", () => {
  const levels = (n: number, open: string, close: string, leaf: string) =>
    open.repeat(n) + leaf + close.repeat(n);
  const shapes: [string, string, string][] = [
    ["[", "]", "1"],
    ['{"a":', "}", "1"],
    ['{"a":', "}", '{"$zk":"undef"}'],
    ['[{"$zk":"obj","v":{"b":', "}}]", "1"],
  ];
  for (const [open, close, leaf] of shapes) {
    // A tagged object is one level: two JSON levels per level of the value.
    const per = open.startsWith('[{"$zk"') ? 2 : 1;
    assert.doesNotThrow(() => decode(levels(1000 / per, open, close, leaf)));
    assert.throws(
      () => decode(levels(1000 / per + 1, open, close, leaf)),
      (e) =>
        e instanceof RangeError &&
        /^Cannot decode value: nesting deeper than 1000 levels/.test(
          e.message,
        ),
      open,
    );
  }
  // Brackets inside strings, escaped quotes included, are not levels.
  const inString = `["${'\\"['.repeat(1500)}"]`;
  assert.equal((decode(inString) as string[])[0]!.length, 3000);
});
