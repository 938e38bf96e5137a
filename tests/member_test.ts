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

Deno.test("parseMember() names what is wrong in its error messages", () => {
  const fails = (data: Uint8Array | undefined) => {
    try {
      parseMember(data);
    } catch (error) {
      return error as Error;
    }
    assert.fail("parseMember() should throw");
  };
  const notJson = fails(bytes("host=1"));
  assert.ok(notJson instanceof SyntaxError);
  assert.equal(notJson.message, 'Cannot parse member data: not JSON: "host=1"');
  assert.ok(notJson.cause instanceof SyntaxError);
  assert.equal(
    fails(undefined).message,
    'Cannot parse member data: not JSON: ""',
  );
  const long = "x".repeat(200);
  assert.equal(
    fails(bytes(long)).message,
    `Cannot parse member data: not JSON: "${"x".repeat(80)}"`,
  );
  for (
    const text of ["[]", "null", '"a"', "5", "true", '[{"host":"h","port":1}]']
  ) {
    const error = fails(bytes(text));
    assert.ok(error instanceof TypeError, text);
    assert.equal(
      error.message,
      "Cannot parse member data: not a JSON object",
      text,
    );
  }
  for (
    const text of ['{"port":1}', '{"host":"","port":1}', '{"host":5,"port":1}']
  ) {
    assert.equal(
      fails(bytes(text)).message,
      'Cannot parse member data: missing string "host"',
      text,
    );
  }
  const ports: Array<[string, string]> = [
    ['"9001"', '"9001"'],
    ["0", "0"],
    ["65536", "65536"],
    ["1.5", "1.5"],
    ["-1", "-1"],
    ["null", "null"],
  ];
  for (const [port, shown] of ports) {
    assert.equal(
      fails(bytes(`{"host":"h","port":${port}}`)).message,
      `Cannot parse member data: "port" must be an integer in 1..65535, got ${shown}`,
    );
  }
  assert.equal(
    fails(bytes('{"host":"h"}')).message,
    'Cannot parse member data: "port" must be an integer in 1..65535, got undefined',
  );
});

Deno.test("parseMember() accepts the first and the last port", () => {
  for (const port of [1, 65535]) {
    assert.equal(parseMember(bytes(`{"host":"h","port":${port}}`)).port, port);
  }
});
