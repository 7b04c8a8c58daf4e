// NDArray: a numpy array as it travels (msgpack extension 1), and the dtype tables.
//
// The dtype string is numpy's `dtype.str` ("<f8", "|u1", "<M8[ns]"), kept verbatim so an
// array re-encodes to the bytes it arrived as. `data` is a TypedArray over the array's
// bytes in C order, chosen by dtype; dtypes JavaScript has no array for (float16, big-endian
// ones, strings, ...) get a Uint8Array of the raw bytes. This assumes a little-endian
// machine, as every platform Node.js ships for is.

import { VALUE } from "./brand.mjs";

/** TypedArray constructors by dtype (without its byte order). */
const BY_CODE = {
  b1: Uint8Array, // numpy bool: one byte, 0 or 1
  i1: Int8Array,
  u1: Uint8Array,
  i2: Int16Array,
  u2: Uint16Array,
  i4: Int32Array,
  u4: Uint32Array,
  i8: BigInt64Array,
  u8: BigUint64Array,
  f4: Float32Array,
  f8: Float64Array,
  c8: Float32Array, // complex64: real and imaginary parts interleaved
  c16: Float64Array, // complex128: likewise
};

/** The dtype a plain TypedArray returned by a tool travels as. */
const DTYPE_OF = new Map([
  [Int8Array, "|i1"],
  [Uint8ClampedArray, "|u1"],
  [Int16Array, "<i2"],
  [Uint16Array, "<u2"],
  [Int32Array, "<i4"],
  [Uint32Array, "<u4"],
  [BigInt64Array, "<i8"],
  [BigUint64Array, "<u8"],
  [Float32Array, "<f4"],
  [Float64Array, "<f8"],
]);

const DTYPE = /^([<>|=])([a-zA-Z])(\d+)(\[[A-Za-z0-9]+\])?$/;

/** The TypedArray class that views an array of `dtype`, or Uint8Array for raw bytes. */
export function arrayClassOf(dtype) {
  const m = DTYPE.exec(dtype);
  if (m === null) return Uint8Array;
  const [, order, kind, size, unit] = m;
  if (order === ">" && size !== "1") return Uint8Array;
  if (kind === "M" || kind === "m") return size === "8" ? BigInt64Array : Uint8Array;
  if (unit !== undefined) return Uint8Array;
  return BY_CODE[kind + size] ?? Uint8Array;
}

/** Bytes per element of `dtype`, or null when the string does not say. */
export function itemSize(dtype) {
  const m = DTYPE.exec(dtype);
  if (m === null) return null;
  const [, , kind, size] = m;
  return kind === "U" ? Number(size) * 4 : Number(size); // "<U5": five UCS-4 characters
}

/** The dtype of a plain TypedArray, or undefined for one that is not an array of numbers. */
export function dtypeOfTypedArray(view) {
  return DTYPE_OF.get(view.constructor);
}

function elements(shape) {
  let n = 1;
  for (const dim of shape) n *= dim;
  return n;
}

/** A numpy array: dtype string, shape, and its data as a TypedArray (C order). */
export class NDArray {
  static {
    this.prototype[VALUE] = "ndarray";
  }

  /**
   * @param {string} dtype numpy's dtype string ("<f8", "<i4", "|u1", "|b1", ...)
   * @param {number[]} shape its dimensions ([] for a 0-d array)
   * @param {ArrayBufferView} data its elements in C order; its bytes are what travels
   */
  constructor(dtype, shape, data) {
    if (typeof dtype !== "string" || dtype === "") {
      throw new TypeError(`NDArray dtype must be a numpy dtype string such as "<f8"; got ${dtype}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new TypeError("NDArray shape must be an array of non-negative integers");
    }
    if (!ArrayBuffer.isView(data)) {
      throw new TypeError("NDArray data must be a TypedArray (or another view of its bytes)");
    }
    const size = itemSize(dtype);
    if (size !== null && data.byteLength !== elements(shape) * size) {
      throw new RangeError(
        `NDArray of dtype ${dtype} and shape [${shape}] needs ${elements(shape) * size} ` +
          `bytes; its data has ${data.byteLength}`,
      );
    }
    this.dtype = dtype;
    this.shape = shape;
    this.data = data;
  }

  /** A 1-D (or `shape`d) array over a plain TypedArray, its dtype read from its class. */
  static from(typed, shape = [typed.length]) {
    const dtype = dtypeOfTypedArray(typed);
    if (dtype === undefined) {
      throw new TypeError(`NDArray.from needs a TypedArray of numbers; got ${typed?.constructor?.name}`);
    }
    return new NDArray(dtype, shape, typed);
  }

  /** How many elements it holds. */
  get size() {
    return elements(this.shape);
  }

  /** Its bytes, as they travel (a view, not a copy). */
  get bytes() {
    return new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  /**
   * An array over `bytes` (extension 1's tail): a view of them when they are aligned for
   * the dtype's TypedArray, else a copy (a TypedArray cannot start at an unaligned offset).
   */
  static fromBytes(dtype, shape, bytes) {
    const Kind = arrayClassOf(dtype);
    const width = Kind.BYTES_PER_ELEMENT;
    let data;
    if (bytes.byteLength % width !== 0) {
      data = bytes; // raw bytes; the constructor says what is wrong when the size is off
    } else if (bytes.byteOffset % width === 0) {
      data = new Kind(bytes.buffer, bytes.byteOffset, bytes.byteLength / width);
    } else {
      data = new Kind(bytes.slice().buffer);
    }
    return new NDArray(dtype, shape, data);
  }
}
