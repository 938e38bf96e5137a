/**
 * The size of one zkrpc `divide(10, 2)` request frame, so that the ceiling
 * echoes frames of the same size.
 *
 * @module
 */
import { HEADER_SIZE } from "../src/protocol/frame.ts";
import { msgpackCodec } from "../src/protocol/msgpack_codec.ts";

/**
 * Bytes on the wire for one request: the 9-byte header, the method name
 * prefix (`u8 length | name`) and the params in the default codec
 * (MessagePack), as
 * `Connection.call()` writes them.
 *
 * @param method Method name. @default "divide"
 * @param params Parameters. @default [10, 2]
 * @returns The frame size in bytes.
 */
export function requestFrameBytes(
  method = "divide",
  params: unknown[] = [10, 2],
): number {
  const name = new TextEncoder().encode(method);
  return HEADER_SIZE + 1 + name.length + msgpackCodec.encode(params).length;
}

/**
 * Size of the `divide(10, 2)` request frame.
 *
 * @returns Bytes.
 */
export function divideFrameBytes(): Promise<number> {
  return Promise.resolve(requestFrameBytes());
}
