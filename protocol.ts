/**
 * For code that looks below a call (a codec, metadata limits, a health check of
 * its own): the wire side of zkrpc, the payload codecs a server accepts and a
 * connection offers ({@linkcode jsonCodec}, {@linkcode msgpackCodec} and their
 * `create...` factories, or your own {@linkcode Codec}), the nesting limit of
 * both codecs ({@linkcode MAX_NESTING}), the call-metadata limits
 * ({@linkcode MAX_METADATA_SIZE}, {@linkcode RESERVED_METADATA_KEYS}), and the
 * two methods every server answers: {@linkcode HEALTH_METHOD} and
 * {@linkcode DESCRIBE_METHOD} with their result types. The frame format itself
 * is in `docs/protocol.md`.
 *
 * @example Pin the JSON codec and ask a server for its health
 * ```ts
 * import { Connection, serve } from "@zkrpc/zkrpc";
 * import { HEALTH_METHOD, type HealthStatus, jsonCodec } from "@zkrpc/zkrpc/protocol";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ ping: () => "pong" }, {
 *   hostname: "127.0.0.1",
 *   codec: jsonCodec,
 * });
 * await using conn = await Connection.connect(
 *   { hostname: "127.0.0.1", port: server.addr.port },
 *   { codec: jsonCodec },
 * );
 * const health = await conn.call(HEALTH_METHOD, []) as { status: HealthStatus };
 * assert.equal(health.status, "serving");
 * ```
 *
 * @module
 */
export {
  type Codec,
  createJsonCodec,
  jsonCodec,
  type JsonCodecOptions,
} from "./src/protocol/codec.ts";
export {
  createMsgpackCodec,
  msgpackCodec,
  type MsgpackCodecOptions,
} from "./src/protocol/msgpack_codec.ts";
export { MAX_NESTING } from "./src/protocol/_values.ts";
export {
  MAX_METADATA_SIZE,
  RESERVED_METADATA_KEYS,
} from "./src/protocol/metadata.ts";
export {
  DESCRIBE_METHOD,
  HEALTH_METHOD,
  type HealthStatus,
  type MethodDescription,
  type ServiceDescription,
} from "./src/server/server.ts";
