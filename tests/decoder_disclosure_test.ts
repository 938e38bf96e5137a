/**
 * Issue 21, finding 1: one client could read another client's request data
 * through the MessagePack decoder (msgpackr's bundled strings read a shared
 * 64 KiB decode slab, and the decoder's error text went back to the caller).
 * Against a real `serve()` over TCP: a victim's secret passes through one
 * connection, then hostile params arrive on that same connection and on
 * others (both codecs); nothing of the secret may come back.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { serve } from "../src/server/server.ts";
import { Connection } from "../src/client/connection.ts";
import { jsonCodec } from "../src/protocol/codec.ts";
import { msgpackCodec } from "../src/protocol/msgpack_codec.ts";
import { FrameType } from "../src/protocol/frame.ts";
import { concat, startChildServer } from "./_core_helpers.ts";
import {
  assertNoSecret,
  bundledStrings,
  extHeader,
  hostileBytes,
  RawPeer,
  SECRET,
  u8,
} from "./_hostile_payloads.ts";

const HOST = "127.0.0.1";

/** The text of every reply after the first `from` (all of it decodable). */
function repliesText(peer: RawPeer, from = 0): string {
  return peer.replies.slice(from).map((r) =>
    new TextDecoder().decode(r.payload)
  )
    .join("\n");
}

const victimValue = { user: "alice", token: SECRET };

/**
 * The report's attack on a server at `port`: a victim calls `echo` with its
 * token on one connection, then 800 crafted 14-byte requests arrive on
 * another. Every one must get a decode error naming the extension, and no
 * reply may hold any piece of the token.
 */
async function findingOne(port: number): Promise<void> {
  await using victim = await Connection.connect({ hostname: HOST, port });
  assert.deepEqual(
    await victim.call("echo", [victimValue], { timeout: 5000 }),
    victimValue,
  );
  await using attacker = await RawPeer.open(port, "msgpack");
  // Each request reaches back from its own place in the old slab by a
  // different distance: 8 bytes per earlier request plus a sweep of 100.
  const params = Array.from(
    { length: 800 },
    (_, j) => bundledStrings(-(8 * j + 6 + (j % 100))),
  );
  await attacker.send(params);
  await attacker.until(800, "800 replies");
  assert.equal(attacker.replies.length, 800);
  assertNoSecret(repliesText(attacker), "a reply to the attacker");
  for (const reply of attacker.replies) {
    assert.equal(reply.type, FrameType.Error);
    const error = msgpackCodec.decode(reply.payload) as {
      name: string;
      message: string;
    };
    assert.equal(error.name, "ProtocolError");
    assert.equal(
      error.message,
      'Cannot call method "echo": cannot decode params: Cannot decode value: unsupported extension type 98 at byte 0',
    );
  }
  // The victim's connection is untouched.
  assert.deepEqual(
    await victim.call("echo", [victimValue], { timeout: 5000 }),
    victimValue,
  );
}

Deno.test("finding 1: 800 crafted bundled-string requests on a second connection to a server process get decode errors, never the victim's token", async () => {
  await using server = await startChildServer();
  await findingOne(server.port);
});

Deno.test("finding 1: the same against an in-process serve()", async () => {
  await using server = serve({ echo: (x: unknown) => x }, {
    hostname: HOST,
    onError: () => {},
  });
  await findingOne(server.addr.port);
});

Deno.test("fuzz: after a victim's secret passed through a connection, hostile params on that connection and on others (both codecs) never bring it back", async () => {
  await using server = serve({ echo: (x: unknown) => x }, {
    hostname: HOST,
    onError: () => {},
  });
  const port = server.addr.port;
  // The victim's secret on a raw connection that the fuzz then uses too,
  // and on real clients of both codecs.
  await using same = await RawPeer.open(port, "msgpack");
  await same.send([msgpackCodec.encode([victimValue])]);
  await same.until(1, "the victim's reply");
  const firstAttack = same.replies.length;
  await using msgpackVictim = await Connection.connect({
    hostname: HOST,
    port,
  });
  await using jsonVictim = await Connection.connect({ hostname: HOST, port }, {
    codec: jsonCodec,
  });
  const victimCall = async () => {
    for (const conn of [msgpackVictim, jsonVictim]) {
      assert.deepEqual(
        await conn.call("echo", [victimValue], { timeout: 5000 }),
        victimValue,
      );
    }
  };
  await victimCall();
  await using otherMsgpack = await RawPeer.open(port, "msgpack");
  await using otherJson = await RawPeer.open(port, "json");
  const attackers = [same, otherMsgpack, otherJson];
  const sent = new Map<RawPeer, number>([
    [same, firstAttack],
    [otherMsgpack, 0],
    [otherJson, 0],
  ]);
  const attack = async (peer: RawPeer, params: Uint8Array[]) => {
    await peer.send(params);
    sent.set(peer, sent.get(peer)! + params.length);
    await peer.until(sent.get(peer)!, "the replies to hostile params");
  };

  // Every extension type, in every format, with data taken from nowhere
  // but the request.
  const everyExt: Uint8Array[] = [];
  for (let type = -128; type <= 127; type++) {
    for (const n of [1, 4, 8, 12, 16]) {
      everyExt.push(concat(u8(0x91), extHeader(type, n), new Uint8Array(n)));
    }
  }
  for (const peer of attackers) await attack(peer, everyExt);

  // Then arbitrary bytes, with the victim calling again between runs.
  const stopAt = Date.now() + 3_000;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(hostileBytes, { minLength: 1, maxLength: 40 }),
      fc.constantFrom(0, 1, 2),
      fc.boolean(),
      async (params, which, victimAgain) => {
        if (Date.now() > stopAt) return; // bounded in time
        runs++;
        if (victimAgain) await victimCall();
        await attack(attackers[which]!, params);
      },
    ),
    { numRuns: 1000 },
  );
  assert.ok(runs > 0);
  for (const peer of attackers) {
    assertNoSecret(
      repliesText(peer, peer === same ? firstAttack : 0),
      "a reply",
    );
  }
  // The victim's connections live on.
  await victimCall();
});
