/**
 * Internal: text that came from ZooKeeper or a peer, made safe to print on
 * a terminal or in a log. A registered member, a server's reply or an error
 * message can carry escape sequences (clear the screen, set the window title,
 * forge an OSC 8 hyperlink, reorder the line with bidi overrides) or a
 * megabyte of text; printed raw, they take over the terminal of whoever runs
 * `zkrpc ls` or reads the log.
 *
 * Two rules, applied by every printer of such data:
 *
 * - **Escaped**: every control character (C0 U+0000-U+001F, DEL U+007F,
 *   C1 U+0080-U+009F), every format character (`\p{Cf}`: bidi embeddings,
 *   overrides and isolates U+202A-U+202E and U+2066-U+2069, marks
 *   U+200E/U+200F/U+061C, zero-width characters, U+FEFF, tag characters
 *   U+E0000-U+E007F...), the line and paragraph separators U+2028/U+2029 and
 *   lone surrogates. In text they print as `\n`, `\t`, `\r`, `\xHH`, `\uHHHH`
 *   or `\u{HHHHH}`; in JSON as `\uHHHH` (still valid JSON that decodes to
 *   the same string).
 * - **Capped**: a field longer than {@linkcode FIELD_LIMIT} characters (a
 *   whole message: {@linkcode MESSAGE_LIMIT}) is cut there and ends with an
 *   ellipsis and its full length: `aaaa... (1048576 chars)`.
 *
 * @module
 */

/**
 * The most characters of one field (a host, a name, a value) printed.
 *
 * @example The default cap of printable()
 * ```ts
 * import { FIELD_LIMIT, printable } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(printable("x".repeat(FIELD_LIMIT)), "x".repeat(FIELD_LIMIT));
 * assert.match(printable("x".repeat(FIELD_LIMIT + 1)), /\u2026 \(201 chars\)$/);
 * ```
 */
export const FIELD_LIMIT = 200;

/**
 * The most characters of one message (an error, a log line) printed.
 *
 * @example The cap of printableMessage()
 * ```ts
 * import { MESSAGE_LIMIT, printableMessage } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * const long = "m".repeat(MESSAGE_LIMIT + 1);
 * assert.ok(printableMessage(long).endsWith(`\u2026 (${MESSAGE_LIMIT + 1} chars)`));
 * ```
 */
export const MESSAGE_LIMIT = 2000;

/**
 * Options of {@linkcode printable} and {@linkcode printableJson}.
 *
 * @example No cap
 * ```ts
 * import { printable, type PrintableOptions } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * const whole: PrintableOptions = { max: Infinity };
 * assert.equal(printable("y".repeat(500), whole).length, 500);
 * ```
 */
export interface PrintableOptions {
  /**
   * The most characters (UTF-16 code units) kept of each string before it is
   * escaped; `Infinity` keeps all.
   *
   * @default {FIELD_LIMIT} (200)
   */
  max?: number;
}

/** What is escaped: controls, format characters, separators, lone surrogates. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu;

const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function hex(code: number, digits: number): string {
  return code.toString(16).padStart(digits, "0");
}

/**
 * Cuts `text` after `max` UTF-16 code units (never inside a surrogate pair)
 * and appends `... (N chars)`.
 *
 * @param text Any text.
 * @param max The most code units kept.
 * @returns `text`, or its start with the ellipsis and the full length.
 */
function cap(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, Math.floor(max));
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // keep the pair whole
  return `${text.slice(0, end)}\u2026 (${text.length} chars)`;
}

/**
 * Text safe to print on a terminal or in a log: control and format
 * characters escaped, and capped at `max` characters with an ellipsis and
 * the full length.
 *
 * @param value What to print; not a string: `String(value)`.
 * @param options The cap.
 * @returns One line of printable text.
 *
 * @example A hostile host name
 * ```ts
 * import { printable } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(printable("evil\x1b[2J\u009b31m\u202e"), "evil\\x1b[2J\\x9b31m\\u202e");
 * assert.equal(printable("a".repeat(1_000_000)), `${"a".repeat(200)}\u2026 (1000000 chars)`);
 * assert.equal(printable("two\nlines", { max: Infinity }), "two\\nlines");
 * ```
 */
export function printable(
  value: unknown,
  options: PrintableOptions = {},
): string {
  const text = cap(String(value), options.max ?? FIELD_LIMIT);
  return text.replace(UNSAFE, (c) => {
    const code = c.codePointAt(0)!;
    return SHORT[c] ??
      (code < 0x100
        ? `\\x${hex(code, 2)}`
        : code < 0x10000
        ? `\\u${hex(code, 4)}`
        : `\\u{${hex(code, 5)}}`);
  });
}

/**
 * A whole message (an error's message, a log line) made printable: as
 * {@linkcode printable} with the cap {@linkcode MESSAGE_LIMIT}.
 *
 * @param value The message, or an error (its `message` is used).
 * @returns One line of printable text.
 *
 * @example A remote error message with a window-title escape
 * ```ts
 * import { printableMessage } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   printableMessage(new Error("boom\x1b]0;pwned\x07")),
 *   "boom\\x1b]0;pwned\\x07",
 * );
 * ```
 */
export function printableMessage(value: unknown): string {
  return printable(value instanceof Error ? value.message : value, {
    max: MESSAGE_LIMIT,
  });
}

/**
 * Options of {@linkcode printableJson}.
 *
 * @example Indented, strings capped at 3
 * ```ts
 * import { printableJson, type PrintableJsonOptions } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * const options: PrintableJsonOptions = { indent: 1, max: 3 };
 * assert.equal(printableJson({ a: "abcd" }, options), '{\n "a": "abc\u2026 (4 chars)"\n}');
 * ```
 */
export interface PrintableJsonOptions extends PrintableOptions {
  /** Indentation, as for `JSON.stringify`. @default {undefined} (one line) */
  indent?: number;
}

/**
 * JSON safe to print: every string (and object key) capped at `max`, every
 * character {@linkcode printable} escapes written as `\uHHHH` (JSON.stringify
 * itself leaves C1, DEL, bidi and U+2028/U+2029 raw). It never throws:
 * bigints become strings, `undefined` becomes `null`, bytes become arrays.
 *
 * @param value Anything.
 * @param options The cap and the indentation.
 * @returns JSON text without a raw control or format character.
 *
 * @example C1 and bidi characters are escaped, the value is unchanged
 * ```ts
 * import { printableJson } from "./_printable.ts";
 * import assert from "node:assert/strict";
 *
 * const value = { host: "h\u009b2J\u202e", n: 1n };
 * const json = printableJson(value);
 * assert.equal(json, '{"host":"h\\u009b2J\\u202e","n":"1"}');
 * assert.deepEqual(JSON.parse(json), { host: "h\u009b2J\u202e", n: "1" });
 * ```
 */
export function printableJson(
  value: unknown,
  options: PrintableJsonOptions = {},
): string {
  const max = options.max ?? FIELD_LIMIT;
  const json = JSON.stringify(
    value === undefined ? null : value,
    (_key, v) => {
      if (typeof v === "string") return cap(v, max);
      if (typeof v === "bigint") return cap(v.toString(), max);
      if (v instanceof Uint8Array) return [...v];
      if (
        max !== Infinity && v !== null && typeof v === "object" &&
        !Array.isArray(v)
      ) {
        return Object.fromEntries(
          Object.entries(v).map(([k, item]) => [cap(k, max), item]),
        );
      }
      return v;
    },
    options.indent,
  );
  // JSON.stringify escaped every C0 inside strings: a raw "\n" is indentation.
  return json.replace(
    UNSAFE,
    (c) =>
      c === "\n" ? c : c.length === 2 // an astral format character: its surrogate pair
        ? `\\u${hex(c.charCodeAt(0), 4)}\\u${hex(c.charCodeAt(1), 4)}`
        : `\\u${hex(c.charCodeAt(0), 4)}`,
  );
}
