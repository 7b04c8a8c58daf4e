// Values both ways: every kind the wire carries, byte-exact against what the Python host
// sends (fixtures made by its codec: numpy arrays, msgpack's timestamps, the extensions).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ArrowIPC,
  Decimal,
  Duration,
  ExtData,
  LocalDate,
  LocalDateTime,
  NDArray,
  PayloadTooLarge,
  SerializationError,
  UUID,
  decode,
  encode,
} from "../index.mjs";

const hex = (text) => Uint8Array.from(Buffer.from(text, "hex"));
const toHex = (bytes) => Buffer.from(bytes).toString("hex");
const roundTrip = (value) => decode(encode(value));

// numpy.ndarray as the host's codec encodes it (extension 1), by case.
const ARRAYS = {
  f8_2x3: "c73c010800000092a33c66389202030000000000000000000000000000f03f0000000000000040000000000000084000000000000010400000000000001440",
  i4: "c717010700000092a33c6934910301000000feffffff03000000",
  u1: "c70e010700000092a37c753191030102ff",
  b1: "c70e010700000092a37c62319103010001",
  i8: "c71b010700000092a33c693891020000000000000040fbffffffffffffff",
  f4_0d: "c70e010600000092a33c6634900000c03f",
  f2: "c70f010700000092a33c66329102003c0040",
  c16: "c71c010800000092a43c6331369101000000000000f03f0000000000000040",
  M8: "c717010b00000092a73c4d385b6e735d910100320130b768a617",
  U3: "c723010700000092a33c5533910261000000620000000000000078000000790000007a000000",
  empty: "c70c010800000092a33c6638920004",
};

// [datetime 6, datetime 6, date 7, timedelta 8, timedelta 8, decimal 9, uuid 10, arrow 4,
//  an unknown extension 42, four timestamps (-1) of Python's msgpack: 32-, 64-, 96-bit]
const MIXED =
  "9dc71a06323032342d30312d30325430333a30343a30352e313233343536c71306313939392d31322d33315432333a35393a3539" +
  "c70a07323032342d30322d3239c70c0893ffce0001517fce000f423fd70893ce3b9ac9ff0001d7092d312e3130452b33d80a1234" +
  "5678123456781234567812345678d7044152524f57310001d62a75736572d7ff1d53530065937d25d6ff65937d25c70cff1dcd65" +
  "00ffffffffed318525c70cff0000000000000004a0ffef25";

// ints at every width's edge, floats, strings, bytes, nil, bools, containers (Python's msgpack).
const SCALARS =
  "dc001a007fe0ccffcdffffceffffffffcf0000000100000000cf001fffffffffffffcf0020000000000000cf8000000000000000" +
  "cfffffffffffffffffd280000000d3ffffffff7fffffffd3ffe0000000000000d38000000000000000cb3ff8000000000000cb7e" +
  "37e43c8800759ccb7ff0000000000000a668c3a96c6c6fc40200ffc0c3c2908081a161920181a162c0";

describe("scalars and containers", () => {
  test("decode as JavaScript values, and re-encode to the same bytes", () => {
    const value = decode(hex(SCALARS));
    assert.deepEqual(value.slice(0, 8), [0, 127, -32, 255, 65535, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]);
    assert.deepEqual(value.slice(8, 11), [2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]);
    assert.deepEqual(value.slice(11, 15), [-(2 ** 31), -(2 ** 31) - 1, -(2n ** 53n), -(2n ** 63n)]);
    assert.deepEqual(value.slice(15, 18), [1.5, 1e300, Infinity]);
    assert.equal(value[18], "héllo");
    assert.deepEqual(value[19], Uint8Array.from([0, 255]));
    assert.deepEqual(value.slice(20), [null, true, false, [], {}, { a: [1, { b: null }] }]);
    assert.equal(toHex(encode(value)), SCALARS);
  });

  test("small ints stay numbers, ints beyond 2^53 become BigInt", () => {
    assert.equal(typeof roundTrip(2 ** 40), "number");
    assert.equal(roundTrip(2 ** 40), 2 ** 40);
    assert.equal(roundTrip(-(2 ** 40)), -(2 ** 40));
    assert.equal(roundTrip(2n ** 60n), 2n ** 60n);
    assert.equal(roundTrip(5n), 5); // a small BigInt arrives as a number
    assert.equal(toHex(encode(2 ** 40)), "cf0000010000000000"); // an int, not a float64
  });

  test("BigInt outside 64 bits is refused, not wrapped", () => {
    assert.throws(() => encode(2n ** 64n), (e) => e instanceof SerializationError && /64-bit range/.test(e.message));
    assert.throws(() => encode(-(2n ** 63n) - 1n), SerializationError);
  });

  test("Buffer and Uint8Array are bin; undefined is nil; Maps keep non-string keys", () => {
    assert.deepEqual(roundTrip(Buffer.from("ab")), Uint8Array.from([97, 98]));
    assert.equal(roundTrip(undefined), null);
    assert.equal(toHex(encode(new Map([[1, "a"], ["k", 2]]))), "8201a161a16b02");
    assert.deepEqual(roundTrip(new ArrayBuffer(2)), new Uint8Array(2));
  });

  test("what cannot travel is a SerializationError saying where", () => {
    const cases = [
      [() => 1, /a function/],
      [Symbol("s"), /a Symbol/],
      [{ a: [1, { f: () => 1 }] }, /at \['a'\]\[1\]\['f'\]: a function/],
      [new (class Point {})(), /class Point/],
      [new Set([1]), /a Set/],
      ["\ud800", /lone surrogate/],
      [new Date(Number.NaN), /invalid Date/],
    ];
    for (const [value, pattern] of cases) {
      assert.throws(() => encode(value, { what: "result of 't'" }), (e) => e instanceof SerializationError && pattern.test(e.message) && e.message.startsWith("cannot encode result of 't'"));
    }
    const loop = {};
    loop.self = loop;
    assert.throws(() => encode(loop), /contains itself/);
  });

  test("a payload over the limit is PayloadTooLarge with its size and the limit", () => {
    assert.throws(
      () => encode("x".repeat(100), { what: "r", limit: 50 }),
      (e) => e instanceof PayloadTooLarge && e.size === 102 && e.limit === 50 && e.name === "PayloadTooLarge",
    );
    assert.equal(encode("x".repeat(100), { limit: 102 }).byteLength, 102);
  });

  test("bytes that are not one msgpack value are a SerializationError", () => {
    assert.throws(() => decode(hex("c1")), SerializationError);
    assert.throws(() => decode(hex("9201")), SerializationError); // cut short
    assert.throws(() => decode(hex("0101")), SerializationError); // two values
  });
});

describe("numpy arrays (extension 1)", () => {
  for (const [name, bytes] of Object.entries(ARRAYS)) {
    test(`${name} decodes to an NDArray and re-encodes to the same bytes`, () => {
      const array = decode(hex(bytes));
      assert.ok(array instanceof NDArray);
      assert.equal(toHex(encode(array)), bytes);
    });
  }

  test("dtype, shape and data are read as numpy wrote them", () => {
    const f8 = decode(hex(ARRAYS.f8_2x3));
    assert.equal(f8.dtype, "<f8");
    assert.deepEqual(f8.shape, [2, 3]);
    assert.ok(f8.data instanceof Float64Array);
    assert.deepEqual([...f8.data], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...decode(hex(ARRAYS.i4)).data], [1, -2, 3]);
    assert.deepEqual([...decode(hex(ARRAYS.i8)).data], [2n ** 62n, -5n]);
    assert.deepEqual(decode(hex(ARRAYS.f4_0d)).shape, []);
    assert.deepEqual([...decode(hex(ARRAYS.b1)).data], [1, 0, 1]);
    const f2 = decode(hex(ARRAYS.f2));
    assert.ok(f2.data instanceof Uint8Array); // float16: raw bytes
    assert.ok(decode(hex(ARRAYS.M8)).data instanceof BigInt64Array);
    assert.deepEqual(decode(hex(ARRAYS.empty)).shape, [0, 4]);
  });

  test("aligned data is a view of the message, unaligned data a copy", () => {
    const bytes = hex(ARRAYS.f8_2x3); // ext 8 head (3 bytes), length (4), header (8): data at 15
    const unaligned = decode(bytes);
    assert.notEqual(unaligned.data.buffer, bytes.buffer);
    assert.deepEqual([...unaligned.data], [0, 1, 2, 3, 4, 5]);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1); // data now at 16
    const aligned = decode(shifted.subarray(1));
    assert.equal(aligned.data.buffer, shifted.buffer);
    assert.deepEqual([...aligned.data], [0, 1, 2, 3, 4, 5]);
  });

  test("plain TypedArrays travel as 1-D arrays of their dtype", () => {
    const cases = [
      [new Float64Array([1.5, 2]), "<f8"],
      [new Float32Array([1.5]), "<f4"],
      [new Int32Array([-1, 2]), "<i4"],
      [new Int16Array([3]), "<i2"],
      [new Uint16Array([3]), "<u2"],
      [new Uint32Array([3]), "<u4"],
      [new Int8Array([-3]), "|i1"],
      [new Uint8ClampedArray([3]), "|u1"],
      [new BigInt64Array([-3n]), "<i8"],
      [new BigUint64Array([3n]), "<u8"],
    ];
    for (const [typed, dtype] of cases) {
      const array = roundTrip(typed);
      assert.equal(array.dtype, dtype);
      assert.deepEqual(array.shape, [typed.length]);
      assert.deepEqual([...array.data], [...typed]);
    }
    assert.equal(toHex(encode(new Int32Array([1, -2, 3]))), ARRAYS.i4);
  });

  test("an NDArray checks that its data fits its dtype and shape", () => {
    assert.throws(() => new NDArray("<f8", [3], new Float64Array(2)), RangeError);
    assert.throws(() => new NDArray("<f8", [-1], new Float64Array(0)), TypeError);
    assert.equal(NDArray.from(new Float64Array(6), [2, 3]).size, 6);
  });
});

describe("the other extensions", () => {
  test("decode to their classes and re-encode to the same bytes", () => {
    const values = decode(hex(MIXED));
    const [dt, dt0, date, td, tdBig, dec, uuid, arrow, user, ts32, ts64, ts96a, ts96b] = values;
    assert.ok(dt instanceof LocalDateTime);
    assert.equal(dt.iso, "2024-01-02T03:04:05.123456");
    assert.equal(dt0.iso, "1999-12-31T23:59:59");
    assert.ok(date instanceof LocalDate);
    assert.equal(date.iso, "2024-02-29");
    assert.ok(td instanceof Duration);
    assert.deepEqual([td.days, td.seconds, td.microseconds], [-1, 86399, 999999]);
    assert.equal(td.totalSeconds(), -0.000001);
    assert.equal(tdBig.days, 999999999);
    assert.ok(dec instanceof Decimal);
    assert.equal(dec.value, "-1.10E+3");
    assert.ok(uuid instanceof UUID);
    assert.equal(uuid.toString(), "12345678-1234-5678-1234-567812345678");
    assert.ok(arrow instanceof ArrowIPC);
    assert.deepEqual(arrow.bytes, Uint8Array.from(Buffer.from("ARROW1\x00\x01", "latin1")));
    assert.ok(user instanceof ExtData);
    assert.equal(user.type, 42);
    assert.equal(ts32.toISOString(), "2024-01-02T03:04:05.123Z");
    assert.equal(ts64.toISOString(), "2024-01-02T03:04:05.000Z");
    assert.equal(ts96a.toISOString(), "1960-01-02T03:04:05.500Z");
    assert.equal(ts96b.toISOString(), "2600-01-02T03:04:05.000Z");
    assert.equal(toHex(encode(values)), MIXED);
  });

  test("Date keeps millisecond precision only", () => {
    // 2024-01-02T03:04:05.123456789Z: 64-bit timestamp with nanoseconds
    const view = new DataView(new ArrayBuffer(8));
    const sec = 1704164645;
    view.setUint32(0, (123456789 << 2) | Math.floor(sec / 2 ** 32));
    view.setUint32(4, sec >>> 0);
    const date = decode(encode(new ExtData(-1, new Uint8Array(view.buffer))));
    assert.ok(date instanceof Date);
    assert.equal(date.toISOString(), "2024-01-02T03:04:05.123Z");
  });

  test("any other extension passes through unchanged, negative codes too", () => {
    for (const ext of [new ExtData(42, Uint8Array.from([1, 2])), new ExtData(127, new Uint8Array(300)), new ExtData(-5, Uint8Array.from([9]))]) {
      const back = roundTrip(ext);
      assert.ok(back instanceof ExtData);
      assert.equal(back.type, ext.type);
      assert.deepEqual(back.data, ext.data);
    }
  });

  test("shared-memory extensions cannot be mapped here: a SerializationError", () => {
    assert.throws(() => decode(encode(new ExtData(2, Uint8Array.from([0x90])))), SerializationError);
    assert.throws(() => decode(encode(new ExtData(3, Uint8Array.from([0x90])))), SerializationError);
    assert.throws(() => decode(encode(new ExtData(5, Uint8Array.from([0x90])))), SerializationError);
  });

  test("value classes check what they are made of", () => {
    assert.throws(() => new LocalDateTime("2024-01-02 03:04:05"), TypeError);
    assert.throws(() => new LocalDate("2024-1-2"), TypeError);
    assert.throws(() => new LocalDate("2023-02-29"), TypeError);
    assert.throws(() => new LocalDate("0000-01-01"), TypeError);
    assert.throws(() => new LocalDateTime("2024-01-02T24:00:00"), TypeError);
    assert.throws(() => decode(encode(new ExtData(7, Buffer.from("2024-13-01")))), SerializationError);
    assert.equal(new LocalDate("2024-02-29").iso, "2024-02-29");
    assert.throws(() => new Decimal("1,5"), TypeError);
    assert.throws(() => new UUID(new Uint8Array(15)), TypeError);
    assert.throws(() => UUID.parse("nope"), TypeError);
    assert.throws(() => new Duration({ days: 1e9 }), RangeError);
  });

  test("Duration normalises as Python's timedelta", () => {
    const d = new Duration({ seconds: -1 });
    assert.deepEqual([d.days, d.seconds, d.microseconds], [-1, 86399, 0]);
    const e = new Duration({ days: 1, seconds: 90000, microseconds: 2_500_000 });
    assert.deepEqual([e.days, e.seconds, e.microseconds], [2, 3602, 500000]);
    assert.equal(Duration.fromSeconds(1.5).totalSeconds(), 1.5);
    assert.equal(toHex(encode(new Duration({ days: -1, seconds: 86399, microseconds: 999999 }))), "c70c0893ffce0001517fce000f423f");
  });

  test("UUID reads every form Python's uuid.UUID prints or parses", () => {
    const canonical = "12345678-1234-5678-1234-567812345678";
    for (const text of [canonical, canonical.toUpperCase(), canonical.replace(/-/g, ""), `{${canonical}}`, `urn:uuid:${canonical}`]) {
      assert.equal(UUID.parse(text).toString(), canonical);
    }
    assert.ok(UUID.parse(canonical).equals(UUID.parse(canonical.replace(/-/g, ""))));
    assert.equal(JSON.stringify({ id: UUID.parse(canonical) }), `{"id":"${canonical}"}`);
  });
});

test("a value class from another copy of the package travels the same", async () => {
  // Another copy of the module (a fresh URL): its classes are not this copy's.
  const other = await import(`../src/values.mjs?copy=${Date.now()}`);
  assert.notEqual(other.UUID, UUID);
  const canonical = "12345678-1234-5678-1234-567812345678";
  const back = roundTrip(other.UUID.parse(canonical));
  assert.ok(back instanceof UUID);
  assert.equal(back.toString(), canonical);
  assert.equal(roundTrip(new other.Decimal("1.5")).value, "1.5");
});
