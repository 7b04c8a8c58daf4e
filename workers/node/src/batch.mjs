// BATCH: one call that runs a unary tool once per item, one item after another.
//
// Why: a call costs a frame each way and a wake-up on each side; for a tool that runs for
// microseconds that is nearly all of its cost. A batch pays it once for many items, and its
// arguments and results are decoded and encoded once, as one array each.
//
// Rules (the proto documents them): one slot, one context, one deadline, one final frame.
// Each item's outcome is an entry of the RESULT's array: [0, value] or [1, type, message,
// traceback, kind, detail?] (an ERROR frame's fields). With `stop` the first item that
// throws ends the batch. A cancel stops it between items, and the batch ends with ERROR
// "cancelled". A value that cannot be encoded fails its own item only; the item whose result
// would take the array past the payload limit gets a "payload_too_large" entry, and the
// batch stops there.

import { checkArguments, withDefaults } from "./adapter.mjs";
import { PayloadTooLarge, SerializationError } from "./errors.mjs";
import * as w from "./frames.mjs";
import { errorFrame } from "./outcomes.mjs";
import { CANCELLED } from "./stream.mjs";
import { repr } from "./text.mjs";

/** A batch's RESULT payload, already encoded (the runtime sends it as it is). */
export class Packed {
  constructor(payload) {
    this.payload = payload;
  }
}

/** The ERROR that ends a batch of `tool` before it starts, or null if it may run. */
export function refused(callId, info, tool) {
  if (info === undefined) return w.error(callId, "UnknownTool", `unknown tool ${repr(tool)}`, w.KIND_UNKNOWN_TOOL);
  if (info.streaming) {
    return w.error(callId, "InvalidArguments", `${repr(tool)} streams; a batch runs only tools that return`, w.KIND_INVALID_ARGUMENTS);
  }
  return null;
}

/** What is wrong with a batch's decoded arguments, or null; each null item becomes {}. */
export function problem(info, items) {
  if (!Array.isArray(items)) {
    return `a batch's arguments must be an array, got ${items === null ? "NoneType" : typeof items}`;
  }
  for (let i = 0; i < items.length; i++) {
    if (items[i] === null) items[i] = {};
    const found = checkArguments(info, items[i]);
    if (found !== null) {
      const [param, reason] = found;
      return `item ${i}: ${param === null ? reason : `argument ${repr(param)}: ${reason}`}`;
    }
  }
  return null;
}

function raised(error) {
  return [1, ...errorFrame(0, error).slice(2)]; // type, message, traceback, kind[, detail]
}

/**
 * The function the runtime runs for the batch.
 * @param {object} options
 * @param {(args: object) => any} options.invoke runs the tool on one item's arguments
 * @param {() => boolean} options.cancelled whether the host cancelled the batch
 * @param {(value: any, what: string) => Uint8Array} options.encode within the payload limit
 */
export function runner(info, items, { invoke, cancelled, stop, encode, limit }) {
  const what = `results of a batch of ${repr(info.name)}`;
  const measure = (value) => encode(value, what).byteLength;
  return async () => {
    const entries = [];
    for (let i = 0; i < items.length; i++) {
      if (cancelled()) throw CANCELLED;
      const args = withDefaults(info, items[i]);
      items[i] = null; // its arguments go once it ran
      try {
        entries.push([0, await invoke(args)]);
      } catch (error) {
        if (cancelled()) throw CANCELLED; // its error came of the cancel
        entries.push(raised(error));
        if (stop) break;
      }
    }
    try {
      return new Packed(encode(entries, what));
    } catch (error) {
      if (!(error instanceof SerializationError || error instanceof PayloadTooLarge)) throw error;
      return new Packed(encode(eachAlone(entries, info.name, measure, limit), what));
    }
  };
}

/**
 * The entries again, once the array as a whole could not be encoded: each value that
 * cannot be becomes its item's error, and the entry that would take the array past `limit`
 * (room kept for the error that says so) ends it with a "payload_too_large".
 */
function eachAlone(entries, name, measure, limit) {
  const tooLarge = (size) => raised(new PayloadTooLarge(`the results of a batch of ${repr(name)}`, size, limit));
  const room = limit - measure(tooLarge(limit)) - 16; // 16: the array's header
  const fixed = [];
  let total = 0;
  for (let entry of entries) {
    let size;
    try {
      size = measure(entry);
    } catch (error) {
      entry = raised(error); // only a value can fail: its outcome is now the error
      size = measure(entry);
    }
    if (total + size > room) {
      fixed.push(tooLarge(total + size));
      break;
    }
    total += size;
    fixed.push(entry);
  }
  return fixed;
}
