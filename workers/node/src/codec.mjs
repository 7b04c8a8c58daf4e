// Payload encoding: arguments, results and chunks are msgpack bytes (msgpack.mjs), with a
// size limit and typed errors. Every failure to encode is a SerializationError naming where
// in the value the problem is, or a PayloadTooLarge; every failure to decode is a
// SerializationError. Nothing else escapes, so a call's failure never becomes the worker's.
//
// What travels (both ways unless noted):
//   null (undefined is sent as nil), booleans, numbers (integers as ints; ints beyond 2^53
//   arrive as BigInt), BigInt within 64 bits, strings, Uint8Array/Buffer (bin), arrays,
//   plain objects and Maps (maps; decoded maps are plain objects, their keys strings),
//   Date (timestamp, millisecond precision), NDArray and plain TypedArrays (numpy arrays;
//   decoded as NDArray), LocalDateTime, LocalDate, Duration, Decimal, UUID, ArrowIPC, and
//   ExtData for any other extension (passed through unchanged).

import { PayloadTooLarge, SerializationError } from "./errors.mjs";
import { MAX_DEPTH, Unencodable, pack, unencodableType, unpack } from "./msgpack.mjs";
import { shown } from "./text.mjs";

/**
 * msgpack bytes of `value`.
 * @param {*} value
 * @param {{what?: string, limit?: number}} options what it is (for messages), its size limit
 * @returns {Uint8Array}
 * @throws {SerializationError} it holds something no payload can carry
 * @throws {PayloadTooLarge} its encoding is longer than `limit` bytes
 */
export function encode(value, { what = "value", limit = Infinity } = {}) {
  let data;
  try {
    data = pack(value);
  } catch (error) {
    throw new SerializationError(`cannot encode ${what}: ${problemOf(value, error)}`);
  }
  if (data.byteLength > limit) throw new PayloadTooLarge(what, data.byteLength, limit);
  return data;
}

/**
 * The value of msgpack bytes.
 * @throws {SerializationError} they are not one valid msgpack value
 */
export function decode(bytes, { what = "value" } = {}) {
  try {
    return unpack(bytes);
  } catch (error) {
    throw new SerializationError(`cannot decode ${what}: ${messageOf(error)}`);
  }
}

function messageOf(error) {
  try {
    return `${error?.name ?? "Error"}: ${error?.message ?? String(error)}`;
  } catch {
    return "an error that cannot be shown";
  }
}

/** Why `value` did not encode: where the offending part is, or what the encoder said. */
function problemOf(value, error) {
  let where = null;
  try {
    where = locate(value);
  } catch {
    // The value defeats even the walk (a getter that throws): the encoder's account will do.
  }
  if (where !== null) return where;
  if (error instanceof Unencodable) return error.message;
  return messageOf(error); // out of memory, say
}

const PATH_SHOWN = 6;

function at(path, why) {
  if (path.length === 0) return why;
  const shownPath = path.length > 2 * PATH_SHOWN ? [...path.slice(0, PATH_SHOWN), "...", ...path.slice(-PATH_SHOWN)] : path;
  return `at ${shownPath.join("")}: ${why}`;
}

function isContainer(value) {
  if (Array.isArray(value) || value instanceof Map) return true;
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function children(value) {
  if (Array.isArray(value)) return value.map((item, i) => [i, item, false]);
  if (value instanceof Map) return [...value].flatMap(([k, v]) => [[k, k, true], [k, v, false]]);
  return Object.keys(value).map((k) => [k, value[k], false]);
}

/** Why a value that is not an array, Map or plain object cannot travel, or null. */
function leafProblem(value) {
  try {
    pack(value);
    return null;
  } catch (error) {
    return error instanceof Unencodable ? error.message : unencodableType(value);
  }
}

/**
 * Where `value` holds something no payload can carry, and why; null if nowhere.
 * Iterative and bounded, so a value nested too deep, or holding itself, is named.
 */
export function locate(value) {
  if (!isContainer(value)) return leafProblem(value);
  const stack = [{ items: children(value), next: 0, path: [] }];
  const onPath = [value];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.next >= top.items.length) {
      stack.pop();
      onPath.pop();
      continue;
    }
    const [key, child, isKey] = top.items[top.next++];
    const here = [...top.path, typeof key === "number" ? `[${key}]` : `[${shown(key)}]`];
    if (isContainer(child) && !isKey) {
      if (onPath.includes(child)) return at(here, "an array or object that contains itself");
      if (stack.length >= MAX_DEPTH) return at(here, `arrays and objects nested more than ${MAX_DEPTH} levels deep`);
      stack.push({ items: children(child), next: 0, path: here });
      onPath.push(child);
      continue;
    }
    const why = leafProblem(child);
    if (why !== null) return at(isKey ? top.path : here, isKey ? `a map key: ${why}` : why);
  }
  return null;
}
