// The frames of proto/snakepit/v1/worker.proto: the frame table, a parser per host frame
// kind, and a constructor per worker frame kind.
//
// TABLE is the protocol, written once (the proto documents the same table; a test compares
// them). Parsers are made from it, so code and table cannot disagree. A parsed frame is a
// plain object: {frameKind, frameName, <field>: value, ...} with the table's field names
// (ERROR and HOST_ERROR have a field named "kind" of their own); fields left
// off the end of the array are null.

import { ProtocolViolation } from "./errors.mjs";
import { shown } from "./text.mjs";

export const PROTOCOL = "snakepit.v1";

// Host -> worker.
export const CALL = 0;
export const CANCEL = 1;
export const CREDIT = 2;
export const SESSION_END = 3;
export const PING = 4;
export const HELLO = 5;
export const UNMAPPED_RESULTS = 6;
export const REVOKE = 7;
export const HOST_RESULT = 8;
export const HOST_ERROR = 9;
// Worker -> host.
export const RESULT = 10;
export const CHUNK = 11;
export const END = 12;
export const ERROR = 13;
export const PROGRESS = 14;
export const PONG = 15;
export const WELCOME = 16;
export const UNMAPPED_ARGS = 17;
export const HOST_CALL = 18;
export const HOST_CANCEL = 19;
export const EVENT = 20;
export const HOST_TOOLS = 21;
export const BATCH = 22; // host -> worker: a kind's number says nothing of its direction
export const CHUNKS = 23; // worker -> host (this worker sends CHUNK; hosts read both)

/** Frames that start a call. */
export const CALL_KINDS = new Set([CALL, BATCH]);

// What each side can do beyond the base frames, named in the handshake.
export const CAP_HOST_TOOLS = "host_tools";
export const CAP_EVENTS = "events";
export const CAP_CALL_META = "call_meta";
export const CAP_BATCH = "batch";
export const CAP_CHUNKS = "chunks"; // a host's: it reads CHUNKS
// Arrow tables (extension 4): this worker reads none, but carries them through unchanged as
// ArrowIPC bytes, which the proto allows a worker that names "arrow" to do.
export const CAP_ARROW = "arrow";
export const WORKER_CAPABILITIES = [CAP_HOST_TOOLS, CAP_EVENTS, CAP_CALL_META, CAP_BATCH, CAP_ARROW];

// ERROR kinds.
export const KIND_REMOTE = "remote";
export const KIND_CANCELLED = "cancelled";
export const KIND_UNKNOWN_TOOL = "unknown_tool";
export const KIND_INVALID_ARGUMENTS = "invalid_arguments";
export const KIND_SERIALIZATION = "serialization";
export const KIND_PAYLOAD_TOO_LARGE = "payload_too_large";
export const KIND_PROTOCOL = "protocol";
export const KIND_REENTRANCY = "reentrancy"; // HOST_ERROR only
export const ERROR_KINDS = new Set([
  KIND_REMOTE,
  KIND_CANCELLED,
  KIND_UNKNOWN_TOOL,
  KIND_INVALID_ARGUMENTS,
  KIND_SERIALIZATION,
  KIND_PAYLOAD_TOO_LARGE,
  KIND_PROTOCOL,
]);
export const HOST_ERROR_KINDS = new Set([
  KIND_REMOTE,
  KIND_UNKNOWN_TOOL,
  KIND_INVALID_ARGUMENTS,
  KIND_CANCELLED,
  KIND_SERIALIZATION,
  KIND_REENTRANCY,
]);

// A message carries at most this many frames or (roughly) bytes, so one large payload does
// not hold a batch of small results behind it for long.
export const MAX_BATCH_FRAMES = 512;
export const MAX_BATCH_BYTES = 1 << 20;
export const MAX_CHUNKS = MAX_BATCH_FRAMES; // chunks in one CHUNKS frame
export const LANE_HEADER_BYTES = 4; // unsigned, little-endian

function spec(name, toWorker, fields, required = fields.length) {
  return { name, toWorker, fields: fields.map((f) => f.split(":")), required };
}

/** kind -> {name, toWorker, fields: [[name, type]], required}. */
export const TABLE = new Map([
  [CALL, spec("CALL", true, ["id:uint", "tool:str", "args:bin", "session_id:str?", "deadline:number?", "window:uint", "meta:map?"], 6)],
  [CANCEL, spec("CANCEL", true, ["id:uint"])],
  [CREDIT, spec("CREDIT", true, ["id:uint", "n:uint"])],
  [SESSION_END, spec("SESSION_END", true, ["session_id:str"])],
  [PING, spec("PING", true, ["seq:uint"])],
  [HELLO, spec("HELLO", true, ["protocol:str", "capabilities:[str]", "shm:map?"], 1)],
  [UNMAPPED_RESULTS, spec("UNMAPPED_RESULTS", true, ["names:[str]"])],
  [REVOKE, spec("REVOKE", true, ["id:uint"])],
  [HOST_RESULT, spec("HOST_RESULT", true, ["id:uint", "result:bin"])],
  [HOST_ERROR, spec("HOST_ERROR", true, ["id:uint", "type:str", "message:str", "kind:str"])],
  [RESULT, spec("RESULT", false, ["id:uint", "result:bin", "run_time:number?"], 2)],
  [CHUNK, spec("CHUNK", false, ["id:uint", "chunk:bin"])],
  [END, spec("END", false, ["id:uint"])],
  [ERROR, spec("ERROR", false, ["id:uint", "type:str", "message:str", "traceback:str", "kind:str", "detail:map?"], 5)],
  [PROGRESS, spec("PROGRESS", false, ["id:uint", "done:number", "total:number?", "message:str?"])],
  [PONG, spec("PONG", false, ["seq:uint", "rss:uint?"])],
  [WELCOME, spec("WELCOME", false, ["describe:map"])],
  [UNMAPPED_ARGS, spec("UNMAPPED_ARGS", false, ["names:[str]"])],
  [HOST_CALL, spec("HOST_CALL", false, ["id:uint", "call_id:uint", "tool:str", "args:bin", "meta:map?"], 4)],
  [HOST_CANCEL, spec("HOST_CANCEL", false, ["id:uint"])],
  [EVENT, spec("EVENT", false, ["call_id:uint?", "name:str", "measurements:map", "metadata:map", "time:number"])],
  [HOST_TOOLS, spec("HOST_TOOLS", false, ["id:uint", "call_id:uint"])],
  [BATCH, spec("BATCH", true, ["id:uint", "tool:str", "args:bin", "session_id:str?", "deadline:number?", "stop:uint", "meta:map?"], 6)],
  [CHUNKS, spec("CHUNKS", false, ["id:uint", "chunks:[bin]"])],
]);

/** A decoded msgpack map: a plain object (not an array, bin or extension value). */
export function isMap(v) {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const CHECKS = {
  uint: (v) => (typeof v === "number" && Number.isInteger(v) && v >= 0) || (typeof v === "bigint" && v >= 0n),
  str: (v) => typeof v === "string",
  bin: (v) => v instanceof Uint8Array,
  number: (v) => typeof v === "number" || typeof v === "bigint",
  map: isMap,
  "[str]": (v) => Array.isArray(v) && v.every((x) => typeof x === "string"),
  "[bin]": (v) => Array.isArray(v) && v.every((x) => x instanceof Uint8Array),
};

// Frames whose kind field must be one of a set: its index in the frame, and the set.
const KINDS = new Map([
  [ERROR, [5, ERROR_KINDS]],
  [HOST_ERROR, [4, HOST_ERROR_KINDS]],
]);

function makeParser(kind) {
  const { name, fields, required } = TABLE.get(kind);
  const checks = fields.map(([field, type]) => {
    const base = CHECKS[type.replace(/\?$/, "")];
    const nullable = type.endsWith("?");
    return [field, type, nullable ? (v) => v === null || base(v) : base];
  });
  const kinds = KINDS.get(kind);
  return (frame) => {
    const n = frame.length - 1;
    if (n < required || n > fields.length) {
      const expected = required === fields.length ? `${required}` : `${required} to ${fields.length}`;
      throw new ProtocolViolation(`${name} needs ${expected} fields, got ${n}`);
    }
    const parsed = { frameKind: kind, frameName: name };
    for (let i = 0; i < checks.length; i++) {
      const [field, type, check] = checks[i];
      if (i >= n) {
        parsed[field] = null;
        continue;
      }
      const value = frame[i + 1];
      if (!check(value)) throw new ProtocolViolation(`${name}.${field} must be ${type}, got ${shown(value)}`);
      parsed[field] = value;
    }
    if (kinds !== undefined) {
      const [at, allowed] = kinds;
      if (!allowed.has(frame[at])) {
        throw new ProtocolViolation(`${name}.kind ${shown(frame[at])} is not one of ${[...allowed].sort().join(", ")}`);
      }
    }
    return parsed;
  };
}

const PARSERS = new Map([...TABLE.keys()].map((kind) => [kind, makeParser(kind)]));
const FROM_HOST = new Map([...PARSERS].filter(([kind]) => TABLE.get(kind).toWorker));
const FROM_WORKER = new Map([...PARSERS].filter(([kind]) => !TABLE.get(kind).toWorker));

function parseWith(parsers, frame, side) {
  if (!Array.isArray(frame) || frame.length === 0) {
    throw new ProtocolViolation(`a frame must be a non-empty array, got ${shown(frame)}`);
  }
  const parse = typeof frame[0] === "number" ? parsers.get(frame[0]) : undefined;
  if (parse === undefined) throw new ProtocolViolation(`${shown(frame[0])} is not a ${side} frame kind`);
  return parse(frame);
}

/**
 * Check a frame the host sent and return it parsed.
 * @throws {ProtocolViolation} it is not a host-to-worker frame with the fields TABLE lists
 */
export function parseFromHost(frame) {
  return parseWith(FROM_HOST, frame, "host to worker");
}

/** Check a frame a worker sent (the tests' fake host reads what the worker says with it). */
export function parseFromWorker(frame) {
  return parseWith(FROM_WORKER, frame, "worker to host");
}

// --- constructors: worker -> host -----------------------------------------------------------
export const result = (id, payload, runTime) => [RESULT, id, payload, runTime];
export const chunk = (id, payload) => [CHUNK, id, payload];
export const chunks = (id, payloads) => [CHUNKS, id, payloads];
export const end = (id) => [END, id];
export function error(id, type, message, kind, traceback = "", detail = null) {
  const frame = [ERROR, id, type, message, traceback, kind];
  if (detail !== null) frame.push(detail);
  return frame;
}
export const progress = (id, done, total, message) => [PROGRESS, id, done, total, message];
export const pong = (seq, rss) => [PONG, seq, rss];
export const welcome = (describe) => [WELCOME, describe];
export const unmappedArgs = (names) => [UNMAPPED_ARGS, names];
export function hostCall(id, callId, tool, args, meta = null) {
  return meta === null ? [HOST_CALL, id, callId, tool, args] : [HOST_CALL, id, callId, tool, args, meta];
}
export const hostCancel = (id) => [HOST_CANCEL, id];
export const event = (callId, name, measurements, metadata, time) => [EVENT, callId, name, measurements, metadata, time];
export const hostTools = (id, callId) => [HOST_TOOLS, id, callId];

// --- constructors: host -> worker (what a host, or a test playing one, sends) ---------------
export function call(id, tool, args, sessionId = null, deadline = null, window = 0, meta = null) {
  const frame = [CALL, id, tool, args, sessionId, deadline, window];
  if (meta !== null) frame.push(meta);
  return frame;
}
export function batch(id, tool, args, sessionId = null, deadline = null, stop = false, meta = null) {
  const frame = [BATCH, id, tool, args, sessionId, deadline, stop ? 1 : 0];
  if (meta !== null) frame.push(meta);
  return frame;
}
export const cancel = (id) => [CANCEL, id];
export const credit = (id, n) => [CREDIT, id, n];
export const sessionEnd = (sessionId) => [SESSION_END, sessionId];
export const ping = (seq) => [PING, seq];
export const hello = (capabilities = [CAP_HOST_TOOLS, CAP_EVENTS], protocol = PROTOCOL) => [HELLO, protocol, capabilities];
export const unmappedResults = (names) => [UNMAPPED_RESULTS, names];
export const revoke = (id) => [REVOKE, id];
export const hostResult = (id, payload) => [HOST_RESULT, id, payload];
export const hostError = (id, type, message, kind) => [HOST_ERROR, id, type, message, kind];

// --- batching ----------------------------------------------------------------------------
function textSize(text) {
  return typeof text === "string" ? Buffer.byteLength(text, "utf8") : 0;
}

/**
 * The payload size of a worker-to-host frame: a result's or chunk's bytes, a host call's
 * arguments, an error's or a progress report's text (a batch must stay within the host's
 * message limit).
 */
export function payloadSize(frame) {
  switch (frame[0]) {
    case RESULT:
    case CHUNK:
      return frame[2] instanceof Uint8Array ? frame[2].byteLength : 0;
    case CHUNKS:
      return Array.isArray(frame[2]) ? frame[2].reduce((n, p) => n + (p instanceof Uint8Array ? p.byteLength : 0), 0) : 0;
    case HOST_CALL:
      return frame[4] instanceof Uint8Array ? frame[4].byteLength : 0;
    case ERROR:
      return textSize(frame[3]) + textSize(frame[4]);
    case PROGRESS:
      return textSize(frame[4]);
    default:
      return 0;
  }
}

/** The payload size of a host-to-worker frame. */
export function callSize(frame) {
  if (CALL_KINDS.has(frame[0])) return frame[3].byteLength;
  if (frame[0] === HOST_RESULT) return frame[2].byteLength;
  return 0;
}

/** Cut `frames` into messages of at most MAX_BATCH_FRAMES frames and ~MAX_BATCH_BYTES. */
export function splitBatches(frames, sizeOf = payloadSize) {
  const out = [];
  let start = 0;
  let size = 0;
  for (let i = 0; i < frames.length; i++) {
    size += sizeOf(frames[i]);
    if (i + 1 - start >= MAX_BATCH_FRAMES || size >= MAX_BATCH_BYTES) {
      out.push(frames.slice(start, i + 1));
      start = i + 1;
      size = 0;
    }
  }
  if (start < frames.length) out.push(frames.slice(start));
  return out;
}
