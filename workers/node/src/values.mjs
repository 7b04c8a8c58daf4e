// Value classes for the msgpack extensions the host's codec sends beside numpy arrays.
// Each keeps the wire form it arrived in, so a tool that returns one sends the same bytes
// back (an echo tool round-trips every value exactly).

import { VALUE } from "./brand.mjs";

const HEX = /^[0-9a-f]{32}$/;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{6})?$/;

/** Whether year-month-day is a day of Python's calendar (years 1 to 9999). */
function isDay(year, month, day) {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return day <= days;
}

/** A naive datetime (extension 6): "YYYY-MM-DDTHH:MM:SS" or with ".ffffff" (microseconds). */
export class LocalDateTime {
  static {
    this.prototype[VALUE] = "datetime";
  }

  constructor(iso) {
    const m = typeof iso === "string" ? DATETIME.exec(iso) : null;
    const [y, mo, d, h, mi, s] = m === null ? [] : m.slice(1, 7).map(Number);
    if (m === null || !isDay(y, mo, d) || h > 23 || mi > 59 || s > 59) {
      throw new TypeError(`LocalDateTime needs a real "YYYY-MM-DDTHH:MM:SS[.ffffff]"; got ${iso}`);
    }
    this.iso = iso;
  }

  toString() {
    return this.iso;
  }

  toJSON() {
    return this.iso;
  }
}

/** A date (extension 7): "YYYY-MM-DD". */
export class LocalDate {
  static {
    this.prototype[VALUE] = "date";
  }

  constructor(iso) {
    const m = typeof iso === "string" ? DATE.exec(iso) : null;
    if (m === null || !isDay(...m.slice(1, 4).map(Number))) {
      throw new TypeError(`LocalDate needs a real "YYYY-MM-DD"; got ${iso}`);
    }
    this.iso = iso;
  }

  toString() {
    return this.iso;
  }

  toJSON() {
    return this.iso;
  }
}

const DAY_US = 86_400_000_000n;
const MAX_DAYS = 999_999_999n; // Python's timedelta range

/**
 * A duration (extension 8, Python's timedelta): days, seconds (0 to 86399) and
 * microseconds (0 to 999999), normalised as Python normalises them.
 */
export class Duration {
  static {
    this.prototype[VALUE] = "timedelta";
  }

  constructor({ days = 0, seconds = 0, microseconds = 0 } = {}) {
    for (const [name, v] of [["days", days], ["seconds", seconds], ["microseconds", microseconds]]) {
      if (!Number.isSafeInteger(v) && typeof v !== "bigint") {
        throw new TypeError(`Duration ${name} must be an integer; got ${v}`);
      }
    }
    // In BigInt: days of microseconds overflow a double's integers.
    const total = BigInt(days) * DAY_US + BigInt(seconds) * 1_000_000n + BigInt(microseconds);
    let d = total / DAY_US;
    let rest = total % DAY_US;
    if (rest < 0n) {
      d -= 1n;
      rest += DAY_US;
    }
    if (d > MAX_DAYS || d < -MAX_DAYS) {
      throw new RangeError(`Duration of ${d} days is out of range (at most ${MAX_DAYS} either way)`);
    }
    this.days = Number(d);
    this.seconds = Number(rest / 1_000_000n);
    this.microseconds = Number(rest % 1_000_000n);
  }

  /** A duration of `seconds` (rounded to the microsecond). */
  static fromSeconds(seconds) {
    return new Duration({ microseconds: Math.round(seconds * 1e6) });
  }

  /** Its length in seconds, as Python's timedelta.total_seconds(). */
  totalSeconds() {
    // As Python computes it: whole microseconds, divided once.
    return Number((BigInt(this.days) * 86400n + BigInt(this.seconds)) * 1_000_000n + BigInt(this.microseconds)) / 1e6;
  }
}

/** A decimal (extension 9), kept as its exact text ("1.10", "-0", "NaN", "1E+3"). */
export class Decimal {
  static {
    this.prototype[VALUE] = "decimal";
  }

  constructor(value) {
    const text = String(value);
    if (!/^[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|Infinity|Inf|s?NaN\d*)$/i.test(text)) {
      throw new TypeError(`Decimal needs a decimal number's text; got ${value}`);
    }
    this.value = text;
  }

  toString() {
    return this.value;
  }

  toJSON() {
    return this.value;
  }

  /** Its value as a (rounded) JavaScript number. */
  toNumber() {
    return Number(this.value.replace(/^([+-]?)inf$/i, "$1Infinity"));
  }
}

/** A UUID (extension 10): its 16 bytes. */
export class UUID {
  static {
    this.prototype[VALUE] = "uuid";
  }

  constructor(bytes) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== 16) {
      throw new TypeError("UUID needs 16 bytes (a Uint8Array); use UUID.parse(text) for its text");
    }
    this.bytes = bytes;
  }

  /** A UUID from its text: canonical, without hyphens, in braces or as a urn:uuid:. */
  static parse(text) {
    const hex = String(text)
      .trim()
      .toLowerCase()
      .replace(/^urn:uuid:/, "")
      .replace(/^\{(.*)\}$/, "$1")
      .replace(/-/g, "");
    if (!HEX.test(hex)) throw new TypeError(`not a UUID: ${text}`);
    return new UUID(Uint8Array.from(Buffer.from(hex, "hex")));
  }

  /** The canonical form: 8-4-4-4-12 lowercase hex digits. */
  toString() {
    const h = Buffer.from(this.bytes.buffer, this.bytes.byteOffset, 16).toString("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  toJSON() {
    return this.toString();
  }

  equals(other) {
    return other instanceof UUID && Buffer.compare(this.bytes, other.bytes) === 0;
  }
}

/**
 * An Apache Arrow table or batch (extension 4) as its IPC stream bytes; an adapter that
 * depends on apache-arrow reads them with `tableFromIPC(value.bytes)`.
 */
export class ArrowIPC {
  static {
    this.prototype[VALUE] = "arrow";
  }

  constructor(bytes) {
    if (!(bytes instanceof Uint8Array)) throw new TypeError("ArrowIPC needs its IPC stream bytes (a Uint8Array)");
    this.bytes = bytes;
  }
}
