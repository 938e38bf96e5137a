/**
 * `printable()` and `printableJson()`, the one neutraliser of text from
 * ZooKeeper and peers, checked on arbitrary Unicode (lone surrogates
 * included): nothing unsafe survives, every field is capped, safe text and
 * JSON values pass unchanged.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  FIELD_LIMIT,
  MESSAGE_LIMIT,
  printable,
  printableJson,
  printableMessage,
} from "../src/_printable.ts";

/** Controls (C0, DEL, C1), format characters, separators, lone surrogates. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;
const anyText = fc.string({ unit: "binary", maxLength: 400 });

Deno.test("printable() leaves no control, format or separator character in any text, and caps it", () => {
  fc.assert(
    fc.property(anyText, fc.integer({ min: 0, max: 300 }), (text, max) => {
      const out = printable(text, { max });
      assert.ok(!UNSAFE.test(out), JSON.stringify(out));
      // Each kept character escapes to at most 10 ("\u{e0041}"), plus the mark.
      assert.ok(out.length <= max * 10 + 30, `${out.length} for ${max}`);
      if (text.length > max) {
        assert.ok(out.endsWith(`… (${text.length} chars)`));
      }
    }),
  );
});

Deno.test("printable() keeps safe text as it is and escapes every C0, DEL and C1 character", () => {
  const safe = fc.string({ unit: "grapheme", maxLength: FIELD_LIMIT })
    .filter((s) => !UNSAFE.test(s));
  fc.assert(fc.property(safe, (text) => printable(text) === text));
  for (let code = 0; code <= 0x9f; code = code === 0x1f ? 0x7f : code + 1) {
    const out = printable(`a${String.fromCharCode(code)}b`);
    assert.match(out, /^a\\(x[0-9a-f]{2}|[ntr])b$/, `U+${code.toString(16)}`);
  }
  assert.equal(
    printable("\u202e\u2066\u200f\u061c\ufeff"),
    "\\u202e\\u2066\\u200f\\u061c\\ufeff",
  );
  assert.equal(
    printable("\u{e0001}\u{1f600}"),
    "\\u{e0001}\u{1f600}",
    "emoji stay",
  );
  assert.equal(
    printable("x".repeat(FIELD_LIMIT + 1)),
    `${"x".repeat(FIELD_LIMIT)}… (${FIELD_LIMIT + 1} chars)`,
  );
  assert.equal(
    printable(`${"x".repeat(FIELD_LIMIT - 1)}\u{1f600}`),
    `${"x".repeat(FIELD_LIMIT - 1)}… (${FIELD_LIMIT + 1} chars)`,
    "a surrogate pair is never split",
  );
  assert.equal(
    printableMessage("m".repeat(MESSAGE_LIMIT + 5)).length,
    MESSAGE_LIMIT + `… (${MESSAGE_LIMIT + 5} chars)`.length,
  );
});

Deno.test("printableJson() decodes to the same value with no raw unsafe character, and caps strings and keys when asked", () => {
  const value = fc.jsonValue({ maxDepth: 3 }).chain((v) =>
    fc.tuple(fc.constant(v), fc.dictionary(anyText, anyText, { maxKeys: 4 }))
  );
  fc.assert(
    fc.property(
      value,
      fc.constantFrom(undefined, 2),
      ([json, strings], indent) => {
        const input = { json, strings };
        const out = printableJson(input, {
          max: Infinity,
          ...(indent ? { indent } : {}),
        });
        assert.ok(!UNSAFE.test(out.replaceAll("\n", "")), JSON.stringify(out));
        assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(input)));
      },
    ),
  );
  fc.assert(
    fc.property(fc.dictionary(anyText, anyText, { maxKeys: 4 }), (record) => {
      const out = JSON.parse(printableJson(record, { max: 20 })) as Record<
        string,
        string
      >;
      for (const [key, item] of Object.entries(out)) {
        for (const s of [key, item]) {
          assert.ok(s.length <= 20 || /… \(\d+ chars\)$/.test(s), s);
          assert.ok(s.length <= 20 + 20, s);
        }
      }
    }),
  );
  assert.equal(
    printableJson({ n: 10n, b: new Uint8Array([1, 2]), u: undefined }),
    '{"n":"10","b":[1,2]}',
  );
  assert.equal(printableJson(undefined), "null");
});
