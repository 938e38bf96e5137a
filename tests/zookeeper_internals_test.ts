/**
 * The node-zookeeper-client internals that src/zookeeper/_client_internals.ts
 * patches or reads, checked against the installed client: when an upgrade
 * changes their shape, this fails before the session misbehaves.
 *
 * @module
 */
import assert from "node:assert/strict";
import zookeeper from "node-zookeeper-client";
import ConnectionManager from "node-zookeeper-client/lib/ConnectionManager.js";
import {
  CM_AUTH_FAILED,
  CM_CLOSED,
  CM_CLOSING,
  CM_CONNECTED,
  CM_CONNECTING,
  CM_DISCONNECTED,
  CM_SESSION_EXPIRED,
  OP_SET_WATCHES,
} from "../src/zookeeper/_client_internals.ts";

Deno.test("the pinned node-zookeeper-client is the version the patches were written for", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  assert.equal(
    config.imports["node-zookeeper-client"],
    "npm:node-zookeeper-client@1.1.3",
  );
});

Deno.test("ConnectionManager.STATES has the values the session compares with", () => {
  const states = (ConnectionManager as unknown as {
    STATES: Record<string, number>;
  }).STATES;
  assert.deepEqual(
    {
      DISCONNECTED: states.DISCONNECTED,
      CONNECTING: states.CONNECTING,
      CONNECTED: states.CONNECTED,
      CLOSING: states.CLOSING,
      CLOSED: states.CLOSED,
      SESSION_EXPIRED: states.SESSION_EXPIRED,
      AUTHENTICATION_FAILED: states.AUTHENTICATION_FAILED,
    },
    {
      DISCONNECTED: CM_DISCONNECTED,
      CONNECTING: CM_CONNECTING,
      CONNECTED: CM_CONNECTED,
      CLOSING: CM_CLOSING,
      CLOSED: CM_CLOSED,
      SESSION_EXPIRED: CM_SESSION_EXPIRED,
      AUTHENTICATION_FAILED: CM_AUTH_FAILED,
    },
  );
});

Deno.test("a client's connection manager has the fields and methods the patches use", () => {
  // createClient only builds objects; nothing connects until connect().
  const client = zookeeper.createClient("127.0.0.1:1,127.0.0.1:2", {
    sessionTimeout: 4000,
    spinDelay: 250,
    retries: 0,
  }) as unknown as { connectionManager: Record<string, unknown> };
  const manager = client.connectionManager;
  assert.equal(typeof manager.state, "number");
  assert.equal(manager.state, CM_DISCONNECTED);
  assert.ok(Array.isArray(manager.servers));
  assert.equal((manager.servers as unknown[]).length, 2);
  assert.equal(typeof manager.nextServerIndex, "number");
  assert.equal(manager.serverAttempts, 0);
  assert.equal(manager.spinDelay, 250);
  assert.equal(manager.connectTimeoutHandler, null);
  assert.equal(typeof manager.findNextServer, "function");
  assert.equal((manager.findNextServer as () => void).length, 1);
  // The rotation the session replaces: a round over all servers, then a
  // spinDelay timer that close() cannot reach.
  assert.match(String(manager.findNextServer), /serverAttempts/);
  assert.match(String(manager.findNextServer), /spinDelay/);
  assert.equal(typeof manager.on, "function");
  for (
    const method of [
      "connect",
      "close",
      "addAuthInfo",
      "getSessionId",
      "getSessionPassword",
      "getSessionTimeout",
      "create",
      "remove",
      "setData",
      "getData",
      "getChildren",
      "exists",
      "getACL",
      "setACL",
    ]
  ) {
    assert.equal(
      typeof (client as unknown as Record<string, unknown>)[method],
      "function",
      method,
    );
  }
});

Deno.test("the client internals the persistent-watch patch relies on are there", () => {
  const client = zookeeper.createClient("127.0.0.1:1", {
    sessionTimeout: 4000,
  }) as unknown as {
    connectionManager: Record<string, unknown> & {
      watcherManager: Record<string, unknown>;
    };
  };
  const manager = client.connectionManager;
  // Requests go through queue(request, callback) and carry header.type.
  assert.equal(typeof manager.queue, "function");
  assert.equal((manager.queue as () => void).length, 2);
  assert.ok("chrootPath" in manager);
  // The unparsed tail the patch drops on each new connection.
  assert.equal(manager.pendingBuffer, null);
  assert.match(String(manager.onSocketData), /self\.pendingBuffer/);
  // A SetWatches reply is read with no body: the addWatch/removeWatches
  // requests present themselves as that type.
  const onData = String(manager.onSocketData);
  assert.match(
    onData,
    /case jute\.OP_CODES\.SET_WATCHES:\s*responsePayload = null;/,
  );
  assert.match(onData, /self\.watcherManager\.emit\(event\)/);
  assert.match(onData, /Exception\.create\(responseHeader\.err\)/);
  assert.equal(typeof manager.watcherManager.emit, "function");
  // The error factory the socket handler calls, patched for unknown codes.
  const exception = zookeeper.Exception as unknown as {
    create: (code: number) => Error;
  };
  assert.equal(typeof exception.create, "function");
  assert.equal(OP_SET_WATCHES, 101);
});
