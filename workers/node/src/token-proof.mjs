// The token proof of "Carrier 1 over TCP" (proto/snakepit/v1/worker.proto): the worker
// sends a fresh random nonce; the host answers HMAC-SHA256(token, nonce || "snakepit.v1").
// The token never crosses the wire, and a proof is good for one connection only (the nonce
// is new each time). The same as the Python worker's snakepit_trio/_shared/_tcp.py.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
const CONTEXT = Buffer.from("snakepit.v1", "ascii");

export function newNonce() {
  return randomBytes(NONCE_BYTES);
}

/** What the host sends for `nonce`: HMAC-SHA256(token, nonce || "snakepit.v1"). */
export function proof(token, nonce) {
  return createHmac("sha256", token).update(nonce).update(CONTEXT).digest();
}

/** Constant-time check of a host's proof (anything but 32 bytes is refused). */
export function proofIsValid(token, nonce, given) {
  if (!(given instanceof Uint8Array) || given.byteLength !== PROOF_BYTES) return false;
  return timingSafeEqual(proof(token, nonce), given);
}

/** ASCII whitespace, as Python's bytes.strip() removes it. */
const SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

/**
 * The token in the file at `path`, without surrounding whitespace.
 * @throws {Error} the file cannot be read, or it is empty (or only whitespace)
 */
export function readToken(path) {
  const bytes = readFileSync(path);
  let start = 0;
  let end = bytes.length;
  while (start < end && SPACE.has(bytes[start])) start++;
  while (end > start && SPACE.has(bytes[end - 1])) end--;
  if (start === end) throw new Error(`the token file ${path} is empty: put a secret of 16 bytes or more in it`);
  return bytes.subarray(start, end);
}
