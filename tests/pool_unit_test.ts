/**
 * The subchannel pool as a unit (no connection is opened): one subchannel
 * per address whatever the number of member ids registered there, an address
 * retired only when its last id leaves, a restarted server (a new id at a
 * known address) re-admitted, refused members never added, and the candidate
 * lists rebuilt from the subchannels' usability.
 */
import assert from "node:assert/strict";
import { SubchannelPool } from "../src/channel/pool.ts";
import type { Subchannel } from "../src/channel/subchannel.ts";
import type { MemberData } from "../src/discovery/member.ts";

const HOST = "127.0.0.1";
const A: MemberData = { host: HOST, port: 9001 };
const B: MemberData = { host: HOST, port: 9002 };

/** A pool that records what it tells the channel. */
function setup() {
  const reregistered: Subchannel[] = [];
  const retired: Subchannel[] = [];
  const pool = new SubchannelPool({}, {
    onBroken() {},
    onGoaway() {},
    onReregistered: (s) => reregistered.push(s),
    onRetired: (s) => retired.push(s),
  });
  const add = (
    entries: [string, MemberData][],
    admit: (id: string, member: MemberData) => boolean = () => true,
  ) => pool.apply({ added: new Map(entries), removed: [] }, admit);
  const remove = (...ids: string[]) =>
    pool.apply({ added: new Map(), removed: ids }, () => true);
  const only = (): Subchannel => {
    const all = [...pool.subchannels()];
    assert.equal(all.length, 1);
    return all[0]!;
  };
  return {
    pool,
    add,
    remove,
    only,
    reregistered,
    retired,
    [Symbol.asyncDispose]: () => pool.close(retired),
  };
}

Deno.test("pool: a new pool has no subchannel and empty candidate lists", async () => {
  await using t = setup();
  assert.equal(t.pool.size, 0);
  assert.deepEqual(t.pool.usable, []);
  assert.deepEqual(t.pool.all, []);
  assert.deepEqual([...t.pool.subchannels()], []);
});

Deno.test("pool: a restarted server and its ghost share one subchannel; the address stays until both ids leave", async () => {
  await using t = setup();
  t.add([["old", A]]);
  t.add([["new", A]]);
  const s = t.only();
  assert.deepEqual([...s.ids].sort(), ["new", "old"]);
  assert.deepEqual(t.reregistered, [s]);
  t.remove("old"); // the ghost's session expires
  assert.equal(t.pool.size, 1);
  assert.deepEqual(t.retired, []);
  assert.equal(t.pool.usable.length, 1, "still usable");
  assert.deepEqual([...s.ids], ["new"]);
  t.remove("new");
  assert.equal(t.pool.size, 0);
  assert.deepEqual(t.retired, [s]);
  assert.equal(s.retired, true);
  assert.equal(s.draining, true);
  assert.equal(t.pool.of(s.candidate), undefined);
  assert.deepEqual(t.pool.usable, []);
  assert.deepEqual(t.pool.all, []);
});

Deno.test("pool: a new id at a draining address re-admits it with the new data; the same id again only updates the data", async () => {
  await using t = setup();
  t.add([["a", A]]);
  const s = t.only();
  assert.notEqual(s.admittedAt, 0, "admitted when added");
  assert.equal(t.pool.of(s.candidate), s);
  s.draining = true; // a goaway
  t.pool.changed();
  assert.deepEqual(t.pool.usable, []);
  assert.deepEqual(t.pool.all, [s.candidate]);
  // The same registration with new data: no restart, still draining.
  t.add([["a", { ...A, weight: 5 }]]);
  assert.equal(t.only(), s);
  assert.equal(s.member.weight, 5);
  assert.equal(s.draining, true);
  assert.deepEqual(t.reregistered, []);
  // A new registration at the address: the server restarted.
  t.add([["b", { ...A, weight: 7 }]]);
  assert.equal(t.only(), s);
  assert.equal(s.member.weight, 7);
  assert.equal(s.draining, false);
  assert.deepEqual(t.reregistered, [s]);
  assert.deepEqual(t.pool.usable, [s.candidate], "lists rebuilt");
});

Deno.test("pool: a member that moves leaves its old address (retired when no other id uses it)", async () => {
  await using t = setup();
  t.add([["a", A], ["other", A]]);
  const atA = t.only();
  t.add([["a", B]]);
  assert.equal(t.pool.size, 2, "A still used by `other`");
  assert.deepEqual([...atA.ids], ["other"]);
  assert.deepEqual(t.retired, []);
  t.add([["other", B]]);
  assert.deepEqual(t.retired, [atA]);
  const atB = t.only();
  assert.notEqual(atB, atA);
  assert.equal(atB.member.port, B.port);
  assert.deepEqual([...atB.ids].sort(), ["a", "other"]);
  // Removing an unknown id changes nothing.
  t.remove("nobody");
  assert.equal(t.only(), atB);
});

Deno.test("pool: a refused member is not added, and a refused move still leaves the old address", async () => {
  await using t = setup();
  const asked: string[] = [];
  t.add([["a", A], ["b", B]], (id) => {
    asked.push(id);
    return id === "a";
  });
  assert.deepEqual(asked, ["a", "b"]);
  const s = t.only();
  assert.equal(s.member.port, A.port);
  assert.deepEqual(t.pool.usable, [s.candidate]);
  // `a` moves to B but is now refused: it leaves A and is not at B.
  t.add([["a", B]], () => false);
  assert.equal(t.pool.size, 0);
  assert.deepEqual(t.retired, [s]);
  // Removing a refused id is harmless.
  t.remove("b");
  assert.equal(t.pool.size, 0);
});

Deno.test("pool: usable lists only subchannels that are neither draining nor ejected; changed() rebuilds both lists", async () => {
  await using t = setup();
  t.add([["a", A], ["b", B]]);
  const [a, b] = [...t.pool.subchannels()] as [Subchannel, Subchannel];
  assert.deepEqual(t.pool.all, [a.candidate, b.candidate]);
  assert.deepEqual(t.pool.usable, [a.candidate, b.candidate]);
  b.ejected = true;
  assert.equal(t.pool.usable.length, 2, "cached until changed()");
  t.pool.changed();
  assert.deepEqual(t.pool.usable, [a.candidate]);
  assert.deepEqual(t.pool.all, [a.candidate, b.candidate]);
  b.ejected = false;
  a.draining = true;
  t.pool.changed();
  assert.deepEqual(t.pool.usable, [b.candidate]);
});

Deno.test("pool: close() forgets every subchannel and disconnects the retired ones too", async () => {
  await using t = setup();
  t.add([["a", A], ["b", B]]);
  const [a, b] = [...t.pool.subchannels()] as [Subchannel, Subchannel];
  t.remove("b");
  assert.deepEqual(t.retired, [b]);
  const disconnected: string[] = [];
  for (const s of [a, b]) {
    const original = s.disconnect.bind(s);
    s.disconnect = () => {
      disconnected.push(s.key);
      return original();
    };
  }
  await t.pool.close([b]);
  assert.deepEqual(disconnected.sort(), [a.key, b.key].sort());
  assert.equal(t.pool.size, 0);
  assert.deepEqual(t.pool.usable, []);
  assert.deepEqual(t.pool.all, []);
  assert.equal(t.pool.of(a.candidate), undefined);
  // Ids are forgotten too: `a` again is a new subchannel, not a restart.
  t.add([["a", A]]);
  assert.notEqual(t.only(), a);
  assert.deepEqual(t.reregistered, []);
});
