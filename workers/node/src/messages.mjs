// The local lane's framing: each message is a 4-byte little-endian unsigned length, then
// that many bytes (one msgpack array of frames).

import { LANE_HEADER_BYTES } from "./frames.mjs";

/** The bytes of one lane message carrying `payload`. */
export function frameMessage(payload) {
  const header = Buffer.allocUnsafe(LANE_HEADER_BYTES);
  header.writeUInt32LE(payload.byteLength, 0);
  return [header, payload];
}

/**
 * Cuts a byte stream into messages. Chunks are kept as they arrive and joined once per
 * message, so a large message costs one copy, not one per chunk.
 */
export class MessageReader {
  #chunks = [];
  #buffered = 0;
  #need = null; // the length of the message being read, once its header is in

  /** @param {number} maxMessage longer messages are refused (see `refused`) */
  constructor(maxMessage) {
    this.maxMessage = maxMessage;
    /** The size a message announced over the limit; once set, nothing more is read. */
    this.refused = null;
  }

  /** Take `chunk`; return the complete messages it finished, in order. */
  push(chunk) {
    if (this.refused !== null) return [];
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const out = [];
    for (;;) {
      if (this.#need === null) {
        if (this.#buffered < LANE_HEADER_BYTES) break;
        const size = this.#take(LANE_HEADER_BYTES).readUInt32LE(0);
        if (size > this.maxMessage) {
          this.refused = size; // the messages before it still count
          this.#chunks = [];
          this.#buffered = 0;
          break;
        }
        this.#need = size;
      }
      if (this.#buffered < this.#need) break;
      out.push(this.#take(this.#need));
      this.#need = null;
    }
    return out;
  }

  /** The first `n` buffered bytes, removed from the buffer. */
  #take(n) {
    if (n === 0) return Buffer.alloc(0); // an empty message (undecodable: ignored later)
    const first = this.#chunks[0];
    if (first.length >= n) {
      const taken = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return taken;
    }
    const parts = [];
    let got = 0;
    while (got < n) {
      const chunk = this.#chunks[0];
      const want = n - got;
      if (chunk.length <= want) {
        parts.push(chunk);
        this.#chunks.shift();
        got += chunk.length;
      } else {
        parts.push(chunk.subarray(0, want));
        this.#chunks[0] = chunk.subarray(want);
        got += want;
      }
    }
    this.#buffered -= n;
    return Buffer.concat(parts, n);
  }
}
