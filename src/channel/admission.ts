/**
 * Member admission: which registered members a channel may call at all.
 *
 * - TLS policy: a channel configured for TLS never calls a member whose data
 *   does not say `tls: true` (no silent downgrade), unless `allowPlaintext`.
 * - Permissions: a member whose `host:port` is outside the process's
 *   `--allow-net` is skipped; `Deno.permissions.querySync` is asked once per
 *   address and never prompts, so registry data cannot block a client on a
 *   permission prompt.
 *
 * Each skipped (or plaintext-allowed) member is warned about once.
 *
 * @module
 */

import { type MemberData, memberKey } from "../discovery/member.ts";

/** Options of {@linkcode MemberAdmission}. */
export interface MemberAdmissionOptions {
  /** The service, for warnings. */
  service: string;
  /** Whether members must use TLS. */
  tls: boolean;
  /** With `tls`, still admit plaintext members (warned about once). */
  allowPlaintext: boolean;
  /** Where warnings go. */
  warn: (message: string) => void;
  /**
   * The channel's member filter: members it returns `false` for are skipped.
   *
   * @default {undefined} (every member)
   */
  filter?: ((member: MemberData) => boolean) | undefined;
}

/**
 * Decides, once per joining member, whether a channel may call it.
 *
 * @example A TLS channel skips a plaintext member, once
 * ```ts
 * import { MemberAdmission } from "./admission.ts";
 * import assert from "node:assert/strict";
 *
 * const warnings: string[] = [];
 * const admission = new MemberAdmission({
 *   service: "calculator",
 *   tls: true,
 *   allowPlaintext: false,
 *   warn: (message) => warnings.push(message),
 * });
 * const plain = { host: "127.0.0.1", port: 9001 };
 * assert.match(admission.refusal(plain) ?? "", /does not use TLS/);
 * admission.refusal(plain);
 * assert.equal(warnings.length, 1);
 * ```
 */
export class MemberAdmission {
  #options: MemberAdmissionOptions;
  #warned = new Set<string>();
  #reachable = new Map<string, boolean>();

  /** @param options Policy and where warnings go. */
  constructor(options: MemberAdmissionOptions) {
    this.#options = options;
  }

  /**
   * Why a member may not be called, or `undefined` when it may.
   *
   * @param member The member's data.
   * @returns The reason, e.g. `"no --allow-net permission for ..."`.
   */
  refusal(member: MemberData): string | undefined {
    const { service, tls, allowPlaintext, filter } = this.#options;
    if (filter !== undefined && !filter(member)) {
      return "excluded by the channel's filter";
    }
    const key = memberKey(member);
    let reason: string | undefined;
    if (tls && member.tls !== true) {
      if (allowPlaintext) {
        this.#warnOnce(
          `plaintext ${key}`,
          `zkrpc: member ${key} of service "${service}" does not use TLS; calling it in plaintext (tls.allowPlaintext)`,
        );
      } else {
        reason =
          "it does not use TLS and the channel requires TLS (set tls.allowPlaintext to allow a mixed fleet)";
      }
    }
    if (reason === undefined && !this.#mayReach(member)) {
      reason = `no --allow-net permission for ${
        netHost(member)
      } (never prompted)`;
    }
    if (reason !== undefined) {
      this.#warnOnce(
        `${key} ${reason}`,
        `zkrpc: skipping member ${key} of service "${service}": ${reason}`,
      );
    }
    return reason;
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#options.warn(message);
  }

  /** Asks (never prompts) whether `--allow-net` covers the member; cached. */
  #mayReach(member: MemberData): boolean {
    const host = netHost(member);
    let reachable = this.#reachable.get(host);
    if (reachable === undefined) {
      try {
        reachable = Deno.permissions.querySync({ name: "net", host }).state ===
          "granted";
      } catch {
        reachable = true; // a host Deno cannot describe: let connect decide
      }
      this.#reachable.set(host, reachable);
    }
    return reachable;
  }
}

/** `host:port` as `Deno.permissions` expects it (IPv6 in brackets). */
function netHost(member: MemberData): string {
  return member.host.includes(":")
    ? `[${member.host}]:${member.port}`
    : `${member.host}:${member.port}`;
}
