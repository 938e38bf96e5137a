/**
 * Member admission (`src/channel/admission.ts`) and the channel options that
 * build it (`src/channel/options.ts`), as units: the filter, the TLS policy
 * (no silent downgrade; `allowPlaintext` warns once), the `--allow-net`
 * check asked once per address and never prompting, each warning given
 * once with its exact text; and how options become a membership, an error
 * registry and an admission policy.
 */
import assert from "node:assert/strict";
import { MemberAdmission } from "../../src/channel/admission.ts";
import {
  admissionOf,
  errorsOf,
  membershipOf,
} from "../../src/channel/options.ts";
import { StaticMembership } from "../../src/discovery/static.ts";
import type { Discovery } from "../../src/discovery/discovery.ts";
import type { MemberData } from "../../src/discovery/member.ts";

const HOST = "127.0.0.1";

/**
 * Runs `body` with `Deno.permissions.querySync` answering from `granted`
 * (a host absent from it is denied; `"throw"` throws) and recording what
 * was asked.
 */
function withPermissions(
  granted: Record<string, "granted" | "denied" | "throw">,
  body: (asked: string[]) => void,
): void {
  const original = Deno.permissions.querySync;
  const asked: string[] = [];
  Deno.permissions.querySync = ((descriptor: Deno.NetPermissionDescriptor) => {
    asked.push(`${descriptor.name} ${descriptor.host}`);
    const state = granted[descriptor.host ?? ""] ?? "denied";
    if (state === "throw") throw new TypeError("invalid host");
    return { state } as Deno.PermissionStatus;
  }) as typeof Deno.permissions.querySync;
  try {
    body(asked);
  } finally {
    Deno.permissions.querySync = original;
  }
}

function admission(
  options: Partial<ConstructorParameters<typeof MemberAdmission>[0]> = {},
) {
  const warnings: string[] = [];
  const policy = new MemberAdmission({
    service: "calc",
    tls: false,
    allowPlaintext: false,
    warn: (message) => warnings.push(message),
    ...options,
  });
  return { policy, warnings };
}

Deno.test("admission: a reachable member is admitted without a warning; permission is asked once per address", () => {
  withPermissions({ [`${HOST}:1`]: "granted" }, (asked) => {
    const { policy, warnings } = admission();
    const member = { host: HOST, port: 1 };
    assert.equal(policy.refusal(member), undefined);
    assert.equal(policy.refusal({ ...member, weight: 3 }), undefined);
    assert.deepEqual(asked, [`net ${HOST}:1`]);
    assert.deepEqual(warnings, []);
  });
});

Deno.test("admission: a member outside --allow-net is refused, warned about once, and asked about once", () => {
  withPermissions({}, (asked) => {
    const { policy, warnings } = admission();
    const reason = `no --allow-net permission for ${HOST}:2 (never prompted)`;
    for (let i = 0; i < 3; i++) {
      assert.equal(policy.refusal({ host: HOST, port: 2 }), reason);
    }
    assert.deepEqual(asked, [`net ${HOST}:2`]);
    assert.deepEqual(warnings, [
      `zkrpc: skipping member ${HOST}:2 of service "calc": ${reason}`,
    ]);
    // Another member: its own warning.
    policy.refusal({ host: HOST, port: 3 });
    assert.equal(warnings.length, 2);
    assert.match(warnings[1]!, /skipping member 127\.0\.0\.1:3 /);
  });
});

Deno.test("admission: an IPv6 member is asked about in brackets; a host Deno cannot describe is left to connect", () => {
  withPermissions({ "[::1]:3": "granted", "bad host:4": "throw" }, (asked) => {
    const { policy, warnings } = admission();
    assert.equal(policy.refusal({ host: "::1", port: 3 }), undefined);
    assert.equal(policy.refusal({ host: "bad host", port: 4 }), undefined);
    assert.equal(policy.refusal({ host: "bad host", port: 4 }), undefined);
    assert.deepEqual(asked, ["net [::1]:3", "net bad host:4"]);
    assert.deepEqual(warnings, []);
    assert.equal(
      policy.refusal({ host: "::2", port: 3 }),
      "no --allow-net permission for [::2]:3 (never prompted)",
    );
  });
});

Deno.test("admission: the filter refuses first, without a warning or a permission query", () => {
  withPermissions({ [`${HOST}:5`]: "granted" }, (asked) => {
    const seen: MemberData[] = [];
    const { policy, warnings } = admission({
      tls: true,
      filter: (member) => {
        seen.push(member);
        return member.port === 5;
      },
    });
    const out = { host: HOST, port: 6 };
    assert.equal(policy.refusal(out), "excluded by the channel's filter");
    assert.deepEqual(seen, [out]);
    assert.deepEqual(asked, []);
    assert.deepEqual(warnings, []);
    // Kept by the filter: the other checks still apply.
    assert.match(policy.refusal({ host: HOST, port: 5 }) ?? "", /TLS/);
    assert.equal(policy.refusal({ host: HOST, port: 5, tls: true }), undefined);
  });
});

Deno.test("admission: a TLS channel refuses a plaintext member (no permission query) and warns once per member", () => {
  withPermissions(
    { [`${HOST}:7`]: "granted", [`${HOST}:8`]: "granted" },
    (asked) => {
      const { policy, warnings } = admission({ tls: true });
      const reason =
        "it does not use TLS and the channel requires TLS (set tls.allowPlaintext to allow a mixed fleet)";
      for (const tls of [undefined, false]) {
        const member: MemberData = { host: HOST, port: 7 };
        if (tls !== undefined) member.tls = tls;
        assert.equal(policy.refusal(member), reason);
      }
      assert.deepEqual(asked, []);
      assert.equal(
        policy.refusal({ host: HOST, port: 8, tls: true }),
        undefined,
      );
      assert.deepEqual(asked, [`net ${HOST}:8`]);
      assert.deepEqual(warnings, [
        `zkrpc: skipping member ${HOST}:7 of service "calc": ${reason}`,
      ]);
    },
  );
});

Deno.test("admission: allowPlaintext admits a plaintext member with one warning, still subject to --allow-net", () => {
  withPermissions({ [`${HOST}:9`]: "granted" }, () => {
    const { policy, warnings } = admission({ tls: true, allowPlaintext: true });
    assert.equal(policy.refusal({ host: HOST, port: 9 }), undefined);
    assert.equal(policy.refusal({ host: HOST, port: 9 }), undefined);
    assert.deepEqual(warnings, [
      `zkrpc: member ${HOST}:9 of service "calc" does not use TLS; calling it in plaintext (tls.allowPlaintext)`,
    ]);
    assert.equal(
      policy.refusal({ host: HOST, port: 10 }),
      `no --allow-net permission for ${HOST}:10 (never prompted)`,
    );
    assert.equal(warnings.length, 3);
    // allowPlaintext alone (no TLS) warns about nothing.
    const plain = admission({ allowPlaintext: true });
    assert.equal(plain.policy.refusal({ host: HOST, port: 9 }), undefined);
    assert.deepEqual(plain.warnings, []);
  });
});

Deno.test("options: admissionOf() requires TLS with tls or connection.caCerts, names the service, warns through onWarning", () => {
  withPermissions({ [`${HOST}:1`]: "granted" }, () => {
    const plain = { host: HOST, port: 1 };
    const membership = new StaticMembership([]);
    const warnings: string[] = [];
    const onWarning = (message: string) => warnings.push(message);
    assert.equal(admissionOf({ membership }).refusal(plain), undefined);
    assert.match(
      admissionOf({ membership, tls: {}, onWarning }).refusal(plain) ?? "",
      /does not use TLS/,
    );
    assert.match(
      admissionOf({ membership, connection: { caCerts: [] }, onWarning })
        .refusal(plain) ?? "",
      /does not use TLS/,
    );
    assert.equal(
      admissionOf({
        membership,
        service: "svc",
        tls: { allowPlaintext: true },
        onWarning,
      }).refusal(plain),
      undefined,
    );
    assert.equal(
      admissionOf({ membership, filter: () => false }).refusal(plain),
      "excluded by the channel's filter",
    );
    assert.deepEqual(warnings, [
      `zkrpc: skipping member ${HOST}:1 of service "static": it does not use TLS and the channel requires TLS (set tls.allowPlaintext to allow a mixed fleet)`,
      `zkrpc: skipping member ${HOST}:1 of service "static": it does not use TLS and the channel requires TLS (set tls.allowPlaintext to allow a mixed fleet)`,
      `zkrpc: member ${HOST}:1 of service "svc" does not use TLS; calling it in plaintext (tls.allowPlaintext)`,
    ]);
  });
});

Deno.test("options: without onWarning a warning goes to console.warn, printable", () => {
  withPermissions({}, () => {
    const original = console.warn;
    const printed: unknown[][] = [];
    console.warn = (...args: unknown[]) => printed.push(args);
    try {
      admissionOf({ membership: new StaticMembership([]), service: "s\u0007" })
        .refusal({ host: HOST, port: 11 });
    } finally {
      console.warn = original;
    }
    assert.equal(printed.length, 1);
    const [text] = printed[0]!;
    assert.equal(typeof text, "string");
    assert.match(text as string, /^zkrpc: skipping member 127\.0\.0\.1:11/);
    assert.ok(!(text as string).includes("\u0007"), String(text));
  });
});

Deno.test("options: membershipOf() takes membership first, else asks discovery for the service", () => {
  const membership = new StaticMembership([]);
  assert.equal(membershipOf({ membership }), membership);
  const asked: [string, unknown][] = [];
  const onInvalidMember = () => {};
  const discovery = {
    membership: (service: string, options: unknown) => {
      asked.push([service, options]);
      return membership;
    },
  } as unknown as Discovery;
  assert.equal(
    membershipOf({ discovery, service: "calc", onInvalidMember }),
    membership,
  );
  assert.deepEqual(asked, [["calc", { onInvalidMember }]]);
  // Both given: the membership wins, discovery is not asked.
  assert.equal(
    membershipOf({ membership, discovery, service: "x" }),
    membership,
  );
  assert.equal(asked.length, 1);
});

Deno.test("options: membershipOf() refuses what cannot give members, with what to pass instead", () => {
  const refuse = (options: object, message: string) =>
    assert.throws(
      () => membershipOf(options as Parameters<typeof membershipOf>[0]),
      { name: "TypeError", message },
    );
  const give =
    "Cannot create channel: give `membership`, or `discovery` and `service`";
  refuse({}, give);
  refuse({ service: "calc" }, give);
  refuse({ discovery: { membership: () => undefined } }, give);
  refuse(
    { discovery: {}, service: "calc" },
    "Cannot create channel: `discovery` must have a membership(service, options) method",
  );
  refuse(
    { zookeeper: "127.0.0.1:2181", service: "calc" },
    'Cannot create channel: `zookeeper` is no longer a channel option; pass `discovery: zooKeeperDiscovery(...)` from "@zkrpc/zkrpc/zookeeper" and `service`',
  );
});

Deno.test("options: errorsOf() registers the channel's error classes, names its service in remote errors, warns through onWarning", () => {
  class OutOfStock extends Error {}
  const membership = new StaticMembership([]);
  assert.equal(
    errorsOf({ membership, errors: [OutOfStock] }).has("OutOfStock"),
    true,
  );
  assert.equal(errorsOf({ membership }).has("OutOfStock"), false);
  const call = { method: "buy", target: "h:1" };
  const payload = { name: "Oops", message: "m" };
  assert.equal(
    errorsOf({ membership }).revive(payload, call).message,
    'Cannot call method "buy" on h:1: the server threw Oops: m',
  );
  const warnings: string[] = [];
  const named = errorsOf({
    membership,
    service: "shop",
    errors: [OutOfStock],
    onWarning: (message) => warnings.push(message),
  });
  assert.equal(
    named.revive(payload, call).message,
    'Cannot call method "buy" of service "shop": the server threw Oops: m',
  );
  // A name that differs from the class name: revived by class, warned once.
  const revived = named.revive({
    name: "Gone",
    className: "OutOfStock",
    message: "none left",
  }, call);
  assert.ok(revived instanceof OutOfStock);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^Reviving remote error "Gone" as OutOfStock/);
});
