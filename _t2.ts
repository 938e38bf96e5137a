import { msgpackCodec as c } from "./src/protocol/msgpack_codec.ts";
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
console.log(hex(c.encode(JSON.parse('{"__proto__":{"x":1},"y":2}'))));
console.log(hex(c.encode(-0)), hex(c.encode(2n**64n)), hex(c.encode(undefined)), hex(c.encode(new Date(NaN))));
