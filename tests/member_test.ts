import assert from "node:assert/strict";
import {
  encodeMember,
  memberKey,
  parseMember,
} from "../src/discovery/member.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("parseMember() reads the seed's {host, port} JSON", () => {
  const member = parseMember(bytes('{"host":"127.0.0.1","port":9001}'));
  assert.deepEqual(member, { host: "127.0.0.1", port: 9001 });
  assert.equal(memberKey(member), "127.0.0.1:9001");
});

Deno.test("parseMember() keeps extra metadata", () => {
  const member = { host: "h", port: 1, weight: 2, startedAt: "x", tls: true };
  assert.deepEqual(parseMember(encodeMember(member)), member);
});

Deno.test("parseMember() rejects data that is not JSON with a SyntaxError", () => {
  assert.throws(() => parseMember(bytes("host=1")), SyntaxError);
  assert.throws(() => parseMember(undefined), SyntaxError);
});

Deno.test("parseMember() rejects JSON without a usable host or port", () => {
  for (
    const text of [
      "[]",
      "null",
      '"127.0.0.1:9001"',
      '{"port":9001}',
      '{"host":"","port":9001}',
      '{"host":"h"}',
      '{"host":"h","port":"9001"}',
      '{"host":"h","port":0}',
      '{"host":"h","port":70000}',
      '{"host":"h","port":1.5}',
    ]
  ) {
    assert.throws(() => parseMember(bytes(text)), TypeError, text);
  }
});
