/**
 * The registration contract between {@linkcode serve} and a registry: a
 * {@linkcode Registrar} turns a bound address into a {@linkcode Registration}.
 * ZooKeeper-free; `zooKeeperDiscovery().registrar()` implements it.
 *
 * @module
 */

/**
 * A registration made by a {@linkcode Registrar}; undone by `close()`.
 *
 * @example Register and deregister
 * ```ts
 * import { serve } from "@zkrpc/zkrpc";
 * import type { Registrar } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const log: string[] = [];
 * const registrar: Registrar = {
 *   register(addr) {
 *     log.push(`up ${addr.port}`);
 *     return Promise.resolve({
 *       deregister() {
 *         log.push("down");
 *         return Promise.resolve();
 *       },
 *     });
 *   },
 * };
 * const server = serve({ ok: () => true }, { hostname: "127.0.0.1", registrar });
 * await server.ready;
 * await server.close();
 * assert.deepEqual(log, [`up ${server.addr.port}`, "down"]);
 * ```
 */
export interface Registration {
  /** Removes the server from discovery for good. Called first by `close()`. */
  deregister(): Promise<void>;
  /**
   * Resolves once the member is visible to clients (the registry
   * acknowledged it); rejects when registration failed for good. The
   * server's `ready` waits for it. When absent, the member counts as visible
   * once `register()` resolved.
   */
  registered?(): Promise<unknown>;
  /**
   * Takes the member out of discovery while the server lives but does not
   * serve (`setServing(false)`); {@linkcode Registration.restore} puts it
   * back. When absent, a server that stops serving stays listed (it still
   * refuses calls, after a `goaway`, so that clients retry elsewhere).
   */
  withdraw?(): Promise<void>;
  /** Registers again after {@linkcode Registration.withdraw}. */
  restore?(): void;
  /**
   * The data published about the server (host, port, metadata...), if the
   * registrar has any. Clients read it from discovery; the server never
   * reports it to a peer (its `zkrpc.describe` tells nothing about the
   * process).
   */
  readonly member?: Readonly<Record<string, unknown>>;
}

/**
 * The extension point for service discovery (the ZooKeeper registrar
 * implements it): {@linkcode serve} calls `register` with the bound address
 * once it serves (after `warmUp`), `withdraw`/`restore` when it stops and
 * starts serving, and `close()` calls `deregister` before anything else.
 *
 * @example A registrar that records its calls
 * ```ts
 * import { serve } from "@zkrpc/zkrpc";
 * import type { Registrar } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const log: string[] = [];
 * const registrar: Registrar = {
 *   register(addr) {
 *     log.push(`up ${addr.port}`);
 *     return Promise.resolve({
 *       deregister() {
 *         log.push("down");
 *         return Promise.resolve();
 *       },
 *     });
 *   },
 * };
 * const server = serve({ ok: () => true }, { hostname: "127.0.0.1", registrar });
 * await server.ready;
 * await server.close();
 * assert.deepEqual(log, [`up ${server.addr.port}`, "down"]);
 * ```
 */
export interface Registrar {
  /**
   * Registers the server.
   *
   * @param addr The address the server is bound to (real port when `port`
   * was 0; hostname may be `0.0.0.0`, the registrar picks the advertised one).
   * @param server What else the registrar needs to know about the server;
   * {@linkcode serve} always passes it.
   * @returns The registration.
   */
  register(
    addr: Deno.NetAddr,
    server?: RegisterContext,
  ): Promise<Registration>;
}

/**
 * What {@linkcode serve} tells its {@linkcode Registrar} besides the address.
 *
 * @example A registrar that publishes the transport
 * ```ts
 * import { serve } from "@zkrpc/zkrpc";
 * import type { Registrar } from "@zkrpc/zkrpc/extend";
 * import assert from "node:assert/strict";
 *
 * const published: boolean[] = [];
 * const registrar: Registrar = {
 *   register(_addr, server) {
 *     published.push(server?.tls ?? false);
 *     return Promise.resolve({ deregister: () => Promise.resolve() });
 *   },
 * };
 * await using server = serve({ ok: () => true }, { hostname: "127.0.0.1", registrar });
 * await server.ready;
 * assert.deepEqual(published, [false]);
 * ```
 */
export interface RegisterContext {
  /** Whether the server speaks TLS (`serve()` was given `tls`). */
  readonly tls: boolean;
  /**
   * Reports that registration failed for good, after `register()` resolved
   * (e.g. the registry refused it): the server reports the error through
   * `onError` and closes itself, so `finished` settles.
   */
  fail(error: Error): void;
}
