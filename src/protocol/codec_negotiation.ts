// The codec list of a client or server, and the negotiation rule of the
// settings exchange (docs/protocol.md section 1.1).
import { type Codec, jsonCodec } from "./codec.ts";
import { msgpackCodec } from "./msgpack_codec.ts";

/** What a client offers and a server accepts by default, preferred first. */
export const DEFAULT_CODECS: readonly Codec[] = [msgpackCodec, jsonCodec];

/** The codecs of a `codec` option, checked: at least one, names unique. */
export function codecList(
  option: Codec | readonly Codec[] | undefined,
  what: string,
): readonly Codec[] {
  if (option === undefined) return DEFAULT_CODECS;
  const list = Array.isArray(option) ? option : [option as Codec];
  if (list.length === 0) {
    throw new TypeError(`Cannot ${what}: the codec list is empty`);
  }
  const names = new Set<string>();
  for (const codec of list) {
    if (!/^[^,\s]+$/.test(codec.name) || names.has(codec.name)) {
      throw new TypeError(
        `Cannot ${what}: codec names must be unique, without commas or spaces, got "${codec.name}"`,
      );
    }
    names.add(codec.name);
  }
  return list;
}

/**
 * The connection's codec: the first of the client's names that the server
 * also lists, as the `Codec` of `own` (one side's list); undefined if none.
 */
export function pickCodec(
  clientNames: readonly string[],
  own: readonly Codec[],
): Codec | undefined {
  for (const name of clientNames) {
    for (const codec of own) if (codec.name === name) return codec;
  }
  return undefined;
}
