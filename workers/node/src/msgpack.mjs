// The msgpack dialect of the wire, built on @msgpack/msgpack.
//
// Why subclasses: the library's public options cannot express three things the protocol
// needs, so its Encoder and Decoder are extended at exactly those points:
//   - ints: with useBigInt64, the stock encoder writes integers of 2^32 and more as float64,
//     and the stock decoder returns every int64/uint64 as a BigInt (Python writes any int
//     from 2^32 on in those formats). Here a safe integer is always written as an int and
//     read back as a number; only integers beyond 2^53 are BigInts, and a BigInt outside
//     64 bits is refused instead of silently wrapped.
//   - strings with a lone surrogate (no UTF-8 can hold one) are refused, not mangled.
//   - objects: plain objects and Maps are maps, Uint8Array/Buffer are bin, the value classes
//     and plain TypedArrays are extensions; anything else (a function, a class instance)
//     is refused with its type named, as the Python codec refuses what it cannot carry.
// The methods overridden are the library's internals, so `selfCheck()` runs at import and
// stops the worker with a clear message if a future version changed them.

import {
  DecodeError,
  Decoder,
  Encoder,
  ExtData,
  ExtensionCodec,
  encodeDateToTimeSpec,
  encodeTimeSpecToTimestamp,
} from "@msgpack/msgpack";
import { VALUE } from "./brand.mjs";
import { NDArray, dtypeOfTypedArray } from "./ndarray.mjs";
import { ArrowIPC, Decimal, Duration, LocalDate, LocalDateTime, UUID } from "./values.mjs";

export const EXT_NDARRAY = 1;
export const EXT_SHM_NDARRAY = 2;
export const EXT_SHM_BYTES = 3;
export const EXT_ARROW = 4;
export const EXT_SHM_ARROW = 5;
export const EXT_DATETIME = 6;
export const EXT_DATE = 7;
export const EXT_TIMEDELTA = 8;
export const EXT_DECIMAL = 9;
export const EXT_UUID = 10;

/** Lists and maps nested deeper than this are refused (as by the Python codec). */
export const MAX_DEPTH = 1024;

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Why a value cannot be encoded; codec.mjs adds where it is. */
export class Unencodable extends Error {
  static {
    this.prototype.name = "Unencodable";
  }
}

// --- extension payloads ------------------------------------------------------------------
function ndarrayPayload(array) {
  const header = plain.encode([array.dtype, array.shape]);
  const bytes = array.bytes;
  const out = new Uint8Array(4 + header.length + bytes.byteLength);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  out.set(bytes, 4 + header.length);
  return out;
}

function ndarrayFromPayload(data) {
  if (data.byteLength < 4) throw new DecodeError("a numpy array extension shorter than its header");
  const size = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
  if (4 + size > data.byteLength) throw new DecodeError("a numpy array extension cut short");
  const header = plain.decode(data.subarray(4, 4 + size));
  if (!Array.isArray(header) || header.length !== 2 || typeof header[0] !== "string" || !Array.isArray(header[1])) {
    throw new DecodeError("a numpy array extension whose header is not [dtype, shape]");
  }
  return NDArray.fromBytes(header[0], header[1], data.subarray(4 + size));
}

function text(data) {
  return utf8Decoder.decode(data);
}

/** The extension an object travels as, or null when it is not one of the value classes. */
function extensionOf(object) {
  switch (object[VALUE]) {
    case "ndarray":
      return new ExtData(EXT_NDARRAY, ndarrayPayload(object));
    case "uuid":
      return new ExtData(EXT_UUID, object.bytes);
    case "datetime":
      return new ExtData(EXT_DATETIME, utf8.encode(object.iso));
    case "date":
      return new ExtData(EXT_DATE, utf8.encode(object.iso));
    case "timedelta":
      return new ExtData(EXT_TIMEDELTA, plain.encode([object.days, object.seconds, object.microseconds]));
    case "decimal":
      return new ExtData(EXT_DECIMAL, utf8.encode(object.value));
    case "arrow":
      return new ExtData(EXT_ARROW, object.bytes);
    default:
      break;
  }
  if (object instanceof Date) {
    if (Number.isNaN(object.getTime())) throw new Unencodable("an invalid Date");
    return new ExtData(-1, encodeTimeSpecToTimestamp(encodeDateToTimeSpec(object)));
  }
  if (object instanceof ExtData) return object;
  return null;
}

function extensions() {
  const codec = new ExtensionCodec(); // decodes -1 (timestamp) to a Date already
  codec.register({ type: EXT_NDARRAY, encode: () => null, decode: ndarrayFromPayload });
  for (const type of [EXT_SHM_NDARRAY, EXT_SHM_BYTES, EXT_SHM_ARROW]) {
    codec.register({
      type,
      encode: () => null,
      decode: () => {
        // Never sent to this worker (it offers no shared memory); the proto says a
        // receiver that cannot map a segment fails the call with a serialization error.
        throw new DecodeError("a shared-memory payload, which this worker cannot map");
      },
    });
  }
  codec.register({ type: EXT_ARROW, encode: () => null, decode: (d) => new ArrowIPC(d) });
  codec.register({ type: EXT_DATETIME, encode: () => null, decode: (d) => new LocalDateTime(text(d)) });
  codec.register({ type: EXT_DATE, encode: () => null, decode: (d) => new LocalDate(text(d)) });
  codec.register({
    type: EXT_TIMEDELTA,
    encode: () => null,
    decode: (d) => {
      const parts = plain.decode(d);
      if (!Array.isArray(parts) || parts.length !== 3) throw new DecodeError("a timedelta extension that is not [days, seconds, microseconds]");
      const [days, seconds, microseconds] = parts;
      return new Duration({ days, seconds, microseconds });
    },
  });
  codec.register({ type: EXT_DECIMAL, encode: () => null, decode: (d) => new Decimal(text(d)) });
  codec.register({ type: EXT_UUID, encode: () => null, decode: (d) => new UUID(d.slice()) });
  return codec;
}

// --- the encoder -------------------------------------------------------------------------
class WireEncoder extends Encoder {
  encodeNumber(object) {
    // A safe integer beyond 32 bits is an int on the wire (the stock encoder would write a
    // float64 when useBigInt64 is on).
    if (Number.isSafeInteger(object) && (object >= 0x1_0000_0000 || object < -0x8000_0000)) {
      super.encodeBigInt64(BigInt(object));
      return;
    }
    super.encodeNumber(object);
  }

  encodeBigInt64(object) {
    if (object < INT64_MIN || object > UINT64_MAX) {
      throw new Unencodable(`the integer ${object} is out of msgpack's 64-bit range; send it as a string`);
    }
    super.encodeBigInt64(object);
  }

  encodeString(object) {
    if (!object.isWellFormed()) {
      throw new Unencodable("a string that is not valid UTF-16 (a lone surrogate); no UTF-8 can hold it");
    }
    super.encodeString(object);
  }

  encodeObject(object, depth) {
    if (Array.isArray(object)) {
      this.encodeArray(object, depth);
      return;
    }
    if (typeof object !== "object") {
      throw new Unencodable(unencodableType(object));
    }
    const proto = Object.getPrototypeOf(object);
    if (proto === Object.prototype || proto === null) {
      this.encodeMap(object, depth);
      return;
    }
    if (object instanceof Uint8Array || object instanceof DataView) {
      this.encodeBinary(object); // Buffer included
      return;
    }
    if (ArrayBuffer.isView(object)) {
      const dtype = dtypeOfTypedArray(object);
      if (dtype === undefined) throw new Unencodable(unencodableType(object));
      this.encodeExtension(new ExtData(EXT_NDARRAY, ndarrayPayload(new NDArray(dtype, [object.length], object))));
      return;
    }
    const ext = extensionOf(object);
    if (ext !== null) {
      this.encodeExtension(ext);
      return;
    }
    if (object instanceof Map) {
      this.encodeMapEntries(object, depth);
      return;
    }
    if (object instanceof ArrayBuffer) {
      this.encodeBinary(new Uint8Array(object));
      return;
    }
    throw new Unencodable(unencodableType(object));
  }

  /** A Map: a msgpack map whose keys may be any encodable value (an int, say). */
  encodeMapEntries(map, depth) {
    const size = map.size;
    if (size < 16) {
      this.writeU8(0x80 + size);
    } else if (size < 0x10000) {
      this.writeU8(0xde);
      this.writeU16(size);
    } else {
      this.writeU8(0xdf);
      this.writeU32(size);
    }
    for (const [key, value] of map) {
      this.doEncode(key, depth + 1);
      this.doEncode(value, depth + 1);
    }
  }
}

/** What a value is that no payload can hold, and what to send instead. */
export function unencodableType(value) {
  if (typeof value === "function") return `a function (${value.name || "anonymous"}); send what it returns`;
  if (typeof value === "symbol") return `a Symbol (${value.description ?? ""}); send a string`;
  if (value instanceof Set) return "a Set; send an array: [...value]";
  if (value instanceof Error) return `an error (${value.name}); send its message`;
  if (value instanceof Promise) return "a Promise; await it first";
  const name = value?.constructor?.name ?? "Object";
  return (
    `an object of class ${name}; send a plain object, an array, a string, a number, a Uint8Array ` +
    "or one of the value classes (nothing is serialised by its prototype)"
  );
}

// --- the decoder -------------------------------------------------------------------------
class WireDecoder extends Decoder {
  readU64AsBigInt() {
    const value = super.readU64AsBigInt();
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  readI64AsBigInt() {
    const value = super.readI64AsBigInt();
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  }
}

// Extension payloads themselves (an array's header, a timedelta) are plain msgpack.
const plain = {
  encode: (value) => new WireEncoder({ useBigInt64: true }).encode(value),
  decode: (bytes) => new WireDecoder({ useBigInt64: true }).decode(bytes),
};

const codec = extensions();
const OPTIONS = { extensionCodec: codec, useBigInt64: true, maxDepth: MAX_DEPTH };

// One shared instance of each: both clone themselves when re-entered (an extension
// encoded inside a value). The encoder keeps its largest buffer, so after a large value
// it is replaced rather than left holding megabytes.
let sharedEncoder = new WireEncoder(OPTIONS);
const sharedDecoder = new WireDecoder(OPTIONS);
const KEEP_BUFFER = 1 << 20;

/** msgpack bytes of `value` (throws Unencodable, or the library's own errors). */
export function pack(value) {
  const out = sharedEncoder.encode(value);
  if (out.byteLength > KEEP_BUFFER) sharedEncoder = new WireEncoder(OPTIONS);
  return out;
}

/**
 * The value of msgpack bytes (throws DecodeError or RangeError when they are not one).
 * A Buffer is read through a plain Uint8Array view, so bin values are Uint8Arrays whichever
 * carrier brought them (views of its message, not copies).
 */
export function unpack(bytes) {
  const view = Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
  return sharedDecoder.decode(view);
}

/** Checks that the library internals this module extends still behave as it expects. */
function selfCheck() {
  const hex = (v) => Buffer.from(pack(v)).toString("hex");
  const expected = [
    [2 ** 40, "cf0000010000000000"],
    [-(2 ** 40), "d3ffffff0000000000"],
    [2n ** 63n, "cf8000000000000000"],
    [new Map([[1, "a"]]), "8101a161"],
  ];
  const wrong = expected.filter(([value, bytes]) => hex(value) !== bytes);
  const small = unpack(Uint8Array.from([0xcf, 0, 0, 0, 1, 0, 0, 0, 0]));
  let refuses = false;
  try {
    pack(2n ** 64n);
  } catch (error) {
    refuses = error instanceof Unencodable;
  }
  if (wrong.length || small !== 2 ** 32 || !refuses) {
    throw new Error(
      "this version of @msgpack/msgpack is not one snakepit-trio-worker was made for " +
        "(its encoder or decoder internals changed); install the version in package-lock.json",
    );
  }
}

selfCheck();
