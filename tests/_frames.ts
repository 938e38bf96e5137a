/**
 * Test helper: every frame in a byte string (after the preface).
 *
 * @module
 */
import { type Frame, FrameDecoder } from "../src/protocol/frame.ts";

/** Decodes all complete frames in `bytes`, copying their payloads. */
export function decodeFrames(bytes: Uint8Array): Frame[] {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const out: Frame[] = [];
  for (let f = decoder.next(); f; f = decoder.next()) {
    out.push({ ...f, payload: f.payload.slice() });
  }
  return out;
}
