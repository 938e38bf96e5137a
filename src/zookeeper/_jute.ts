/**
 * ZooKeeper's wire format (jute): big-endian ints and longs, length-prefixed
 * strings, buffers and vectors, and the records the session sends and
 * reads. Every read is checked against the bytes of its frame: a record that
 * runs past them, or a length below -1, throws {@linkcode JuteError}, and the
 * client drops that connection instead of reading on.
 *
 * @module
 */

/** A frame whose bytes do not hold the record read from it. */
export class JuteError extends Error {
  override name = "JuteError";
}

/** Largest frame accepted from a server (ZooKeeper's `jute.maxbuffer` is 1 MiB by default; a list of children can exceed it). */
export const MAX_FRAME_BYTES = 64 * 2 ** 20;

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("utf-8", { fatal: true });

/**
 * Writes one frame: a 4-byte length, then the record.
 *
 * @example A ping
 * ```ts
 * import assert from "node:assert/strict";
 * import { JuteWriter } from "./_jute.ts";
 *
 * const frame = new JuteWriter().int(-2).int(11).frame();
 * assert.deepEqual([...frame], [0, 0, 0, 8, 255, 255, 255, 254, 0, 0, 0, 11]);
 * ```
 */
export class JuteWriter {
  #bytes = new Uint8Array(256);
  #view = new DataView(this.#bytes.buffer);
  #length = 4;

  #room(n: number): void {
    if (this.#length + n <= this.#bytes.length) return;
    const bigger = new Uint8Array(
      Math.max(this.#bytes.length * 2, this.#length + n),
    );
    bigger.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = bigger;
    this.#view = new DataView(bigger.buffer);
  }

  /** Appends a 32-bit int. */
  int(value: number): this {
    this.#room(4);
    this.#view.setInt32(this.#length, value);
    this.#length += 4;
    return this;
  }

  /** Appends a 64-bit long. */
  long(value: bigint): this {
    this.#room(8);
    this.#view.setBigInt64(this.#length, value);
    this.#length += 8;
    return this;
  }

  /** Appends a boolean (one byte). */
  bool(value: boolean): this {
    this.#room(1);
    this.#bytes[this.#length++] = value ? 1 : 0;
    return this;
  }

  /** Appends a buffer: its length, then its bytes; `null` is length -1. */
  buffer(value: Uint8Array | null): this {
    if (value === null) return this.int(-1);
    this.int(value.length);
    this.#room(value.length);
    this.#bytes.set(value, this.#length);
    this.#length += value.length;
    return this;
  }

  /** Appends a string as a UTF-8 buffer. */
  string(value: string): this {
    return this.buffer(ENCODER.encode(value));
  }

  /** Appends a vector of ACL entries. */
  acl(entries: readonly AclRecord[]): this {
    this.int(entries.length);
    for (const entry of entries) {
      this.int(entry.permission).string(entry.id.scheme).string(entry.id.id);
    }
    return this;
  }

  /** A vector of strings. */
  strings(values: readonly string[]): this {
    this.int(values.length);
    for (const value of values) this.string(value);
    return this;
  }

  /** The frame: its length first. */
  frame(): Uint8Array {
    this.#view.setInt32(0, this.#length - 4);
    return this.#bytes.slice(0, this.#length);
  }
}

/** One ACL entry as ZooKeeper sends it. */
export interface AclRecord {
  /** Bit mask: read 1, write 2, create 4, delete 8, admin 16. */
  permission: number;
  /** The scheme and the id in it. */
  id: { scheme: string; id: string };
}

/** A node's `Stat`, as the wire has it. */
export interface StatRecord {
  czxid: bigint;
  mzxid: bigint;
  ctime: bigint;
  mtime: bigint;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: bigint;
}

/**
 * Reads the records of one frame (its length already removed).
 *
 * @example A reply header
 * ```ts
 * import assert from "node:assert/strict";
 * import { JuteReader } from "./_jute.ts";
 *
 * const reader = new JuteReader(new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0]));
 * assert.deepEqual([reader.int(), reader.long(), reader.int()], [1, 9n, 0]);
 * assert.equal(reader.remaining, 0);
 * ```
 */
export class JuteReader {
  #bytes: Uint8Array;
  #view: DataView;
  #at = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#at;
  }

  #take(n: number, what: string): number {
    if (n > this.remaining) {
      throw new JuteError(
        `Cannot read ${what}: needs ${n} bytes, ${this.remaining} left in the frame`,
      );
    }
    const at = this.#at;
    this.#at += n;
    return at;
  }

  /** A 32-bit int. */
  int(): number {
    return this.#view.getInt32(this.#take(4, "an int"));
  }

  /** A 64-bit long. */
  long(): bigint {
    return this.#view.getBigInt64(this.#take(8, "a long"));
  }

  /** A boolean. */
  bool(): boolean {
    return this.#bytes[this.#take(1, "a boolean")] !== 0;
  }

  /** A buffer (a copy); `null` for length -1. */
  buffer(): Uint8Array | null {
    const length = this.int();
    if (length === -1) return null;
    if (length < 0) {
      throw new JuteError(`Cannot read a buffer of length ${length}`);
    }
    const at = this.#take(length, "a buffer");
    return this.#bytes.slice(at, at + length);
  }

  /** A UTF-8 string (the records zkrpc reads never hold a null one). */
  text(): string {
    const length = this.int();
    if (length < 0) {
      throw new JuteError(`Cannot read a string of length ${length}`);
    }
    const at = this.#take(length, "a string");
    try {
      return DECODER.decode(this.#bytes.subarray(at, at + length));
    } catch {
      throw new JuteError("Cannot read a string: not UTF-8");
    }
  }

  /** A vector of strings (`null` reads as empty). */
  strings(): string[] {
    const count = this.#count("strings", 4);
    const values: string[] = [];
    for (let i = 0; i < count; i++) values.push(this.text());
    return values;
  }

  /** A vector of ACL entries. */
  acl(): AclRecord[] {
    const count = this.#count("ACL entries", 12);
    const entries: AclRecord[] = [];
    for (let i = 0; i < count; i++) {
      const permission = this.int();
      entries.push({
        permission,
        id: { scheme: this.text(), id: this.text() },
      });
    }
    return entries;
  }

  /** A `Stat`. */
  stat(): StatRecord {
    return {
      czxid: this.long(),
      mzxid: this.long(),
      ctime: this.long(),
      mtime: this.long(),
      version: this.int(),
      cversion: this.int(),
      aversion: this.int(),
      ephemeralOwner: this.long(),
      dataLength: this.int(),
      numChildren: this.int(),
      pzxid: this.long(),
    };
  }

  /** A vector's count, checked against the bytes its items need at least. */
  #count(what: string, least: number): number {
    const count = this.int();
    if (count === -1) return 0;
    if (count < 0 || count * least > this.remaining) {
      throw new JuteError(
        `Cannot read ${count} ${what}: ${this.remaining} bytes left`,
      );
    }
    return count;
  }
}
