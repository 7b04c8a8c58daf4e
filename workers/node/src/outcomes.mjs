// The ERROR frames a call can end with, built so that building one never fails the call.
//
// Whatever a tool throws is reported, whatever it is: an Error, a string, null, an object
// whose `name` or `message` getter throws, a message of megabytes (texts are cut, with a
// marker, so a frame stays within the host's message limit), text with a lone surrogate
// (replaced: msgpack would write invalid UTF-8, and the host would refuse the whole batch).
// If even that goes wrong, `unreportableFrame` is a constant one.

import { PayloadTooLarge, SerializationError } from "./errors.mjs";
import * as w from "./frames.mjs";
import { log } from "./log.mjs";
import { cut, wire } from "./text.mjs";

// Longest texts an ERROR frame carries, in characters (at most 3 bytes each in UTF-8
// here), so a batch stays within the 2 MiB every lane message may hold beyond the payload
// limit.
export const MAX_MESSAGE = 1 << 15;
export const MAX_TRACEBACK = 1 << 17;
export const MAX_NAME = 1 << 10;
export const MAX_PROGRESS = 1 << 12;
const MAX_CAUSES = 8; // causes followed into a traceback

/** The answer to a CANCEL or REVOKE that withdrew a call before it started. */
export function notStartedFrame(callId) {
  return w.error(callId, "CancelledError", "call cancelled before it started", w.KIND_CANCELLED, "", { started: false });
}

/** The final frame of a call the host cancelled after it started. */
export function cancelledFrame(callId) {
  return w.error(callId, "CancelledError", "call cancelled", w.KIND_CANCELLED);
}

/** The ERROR frame of a call that ended with `error` (whatever was thrown). */
export function errorFrame(callId, error) {
  if (error instanceof SerializationError) {
    return w.error(callId, "SerializationError", wire(cut(String(error.message), MAX_MESSAGE)), w.KIND_SERIALIZATION);
  }
  if (error instanceof PayloadTooLarge) {
    return w.error(callId, "PayloadTooLarge", error.message, w.KIND_PAYLOAD_TOO_LARGE, "", {
      size: error.size,
      limit: error.limit,
    });
  }
  return remoteErrorFrame(callId, error);
}

/** ERROR kind "remote": what the tool threw, its name, message and stack. */
export function remoteErrorFrame(callId, thrown) {
  const name = nameOf(thrown);
  return w.error(
    callId,
    wire(cut(name, MAX_NAME)),
    wire(cut(messageOf(thrown, name), MAX_MESSAGE)),
    w.KIND_REMOTE,
    wire(cut(tracebackOf(thrown), MAX_TRACEBACK, { middle: true })),
  );
}

/** The name of what was thrown: an error's `name`, else the type of the value. */
export function nameOf(thrown) {
  try {
    if (thrown !== null && typeof thrown === "object") {
      const name = thrown.name;
      if (typeof name === "string" && name !== "") return name;
      return thrown.constructor?.name || "Object";
    }
    return typeof thrown; // a thrown string, number, undefined ...
  } catch {
    return "Error";
  }
}

/** Its message, whatever its getters do. */
export function messageOf(thrown, name = nameOf(thrown)) {
  try {
    if (thrown !== null && typeof thrown === "object" && "message" in thrown) return String(thrown.message);
    return String(thrown);
  } catch {
    return `<unprintable ${name}>`;
  }
}

/** Its stack, followed by its causes' (as Python's traceback shows a chain). */
export function tracebackOf(thrown) {
  const parts = [];
  let current = thrown;
  for (let depth = 0; depth <= MAX_CAUSES && current !== undefined; depth++) {
    try {
      const stack = current?.stack;
      parts.push(typeof stack === "string" ? stack : depth === 0 ? "" : `${nameOf(current)}: ${messageOf(current)}`);
      current = current !== null && typeof current === "object" ? current.cause : undefined;
    } catch (problem) {
      parts.push(`<the stack could not be read: ${describe(problem)}>`);
      break;
    }
  }
  return parts.filter((p, i) => i === 0 || p).join("\n\nCaused by: ");
}

/** "Name: message" for an error message, whatever was thrown. */
export function describe(thrown) {
  const name = nameOf(thrown);
  const message = messageOf(thrown, name);
  return message ? `${name}: ${message}` : name;
}

export const UNREPORTABLE = "the tool's outcome could not be reported: building its frame failed (see the worker's log)";

/** The ERROR frame sent when building a call's own final frame failed. */
export function unreportableFrame(callId, problem) {
  try {
    log.error(`call ${callId}: its final frame could not be built`, problem);
  } catch {
    // Nothing is left to report it with; the call must still end.
  }
  return w.error(callId, "WorkerError", UNREPORTABLE, w.KIND_REMOTE);
}

function real(name, value) {
  if (typeof value === "bigint") return Number(value);
  if (typeof value !== "number") {
    throw new TypeError(`progress ${name} must be a number, got ${value === null ? "null" : typeof value}`);
  }
  return value;
}

/**
 * What a PROGRESS frame carries for ctx.progress(done, total, message).
 * @throws {TypeError} done or total is not a number (the tool's call fails, not its worker)
 */
export function progressValues(done, total, message) {
  const number = real("done", done);
  const limit = total === null || total === undefined ? null : real("total", total);
  const text = message === null || message === undefined ? null : wire(cut(String(message), MAX_PROGRESS));
  return [number, limit, text];
}
