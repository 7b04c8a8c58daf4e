// Telemetry from a worker: ctx.emit / ctx.span in tools, emit / span outside calls.
//
// Each event leaves as an EVENT frame ([20, call_id, name, measurements, metadata, time]) in
// the next batch, and reaches the host's handlers as "adapter.<name>". Rules, as the Python
// worker's:
// - What a tool passes is checked where it is passed (TypeError / RangeError naming the key),
//   so an event that cannot be encoded never reaches a batch.
// - Sent only to a host that named "events" in its HELLO; to any other, events are checked
//   and dropped. Events emitted outside calls before such a host connects (in initialize)
//   wait for it, at most MAX_PENDING of them.
// - A span sends "<name>.stop" with its duration in seconds, preceded by "<name>.exception"
//   (with error_type) when its function threw; the error propagates.
// - time is seconds since this worker process started, on a monotonic clock.

import { performance } from "node:perf_hooks";
import * as w from "./frames.mjs";
import { log } from "./log.mjs";
import { shown } from "./text.mjs";

export const MAX_PENDING = 1000;
export const MAX_KEYS = 64;
export const MAX_TEXT = 4096;
export const MAX_NAME = 200;
const NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** Seconds since this process started (the EVENT frame's time). */
export function now() {
  return performance.now() / 1000;
}

export function checkName(what, name, limit = MAX_NAME) {
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`${what} must be a non-empty string; got ${shown(name)}`);
  }
  if (name.length > limit || !NAME.test(name)) {
    throw new RangeError(
      `${what} must be dotted words of letters, digits, '_' or '-' (such as ` +
        `'model.inference'), at most ${limit} characters; got ${shown(name)}`,
    );
  }
  return name;
}

function entries(where, value) {
  if (value === null || value === undefined) return [];
  const proto = typeof value === "object" ? Object.getPrototypeOf(value) : undefined;
  if (value instanceof Map) {
    for (const key of value.keys()) {
      if (typeof key !== "string") throw new TypeError(`${where} keys must be strings; got ${shown(key)}`);
    }
  } else if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`${where} must be a plain object or null; got ${shown(value)}`);
  }
  const pairs = value instanceof Map ? [...value] : Object.entries(value);
  if (pairs.length > MAX_KEYS) throw new RangeError(`${where} may hold at most ${MAX_KEYS} entries; got ${pairs.length}`);
  for (const [key] of pairs) {
    // Checked here: a key no UTF-8 can hold would fail the whole batch it travels in.
    if (!key.isWellFormed()) throw new TypeError(`${where} key ${shown(key)} holds a lone surrogate`);
  }
  return pairs;
}

function measurement(key, value) {
  if (typeof value === "number") {
    if (Number.isNaN(value)) throw new RangeError(`measurements[${shown(key)}] must be a number, not NaN`);
    return value;
  }
  if (typeof value === "bigint") return value >= INT64_MIN && value <= UINT64_MAX ? value : Number(value);
  throw new TypeError(`measurements[${shown(key)}] must be a number (seconds, bytes, a count); got ${shown(value)}`);
}

function scalar(where, key, value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "boolean") return value;
  if (typeof value === "string") return value.slice(0, MAX_TEXT).toWellFormed();
  if (typeof value === "number" || typeof value === "bigint") return measurement(key, value);
  throw new TypeError(
    `${where}[${shown(key)}] must be a string, a number, a boolean or null; got ${shown(value)}; pass String(value), or a number`,
  );
}

/** Numbers by name (booleans and NaN refused). */
export function checkMeasurements(value) {
  return Object.fromEntries(entries("measurements", value).map(([k, v]) => [k, measurement(k, v)]));
}

/** Strings (cut to MAX_TEXT), numbers, booleans or null by name. */
export function checkMetadata(value, where = "metadata") {
  return Object.fromEntries(entries(where, value).map(([k, v]) => [k, scalar(where, k, v)]));
}

/**
 * Where events that belong to no call go: the connection of a host that takes them (the
 * latest one), or a short list waiting for one.
 */
class Outlet {
  #send = null;
  #pending = [];
  #dropped = 0;

  bind(send) {
    this.#send = send;
    const pending = this.#pending;
    const dropped = this.#dropped;
    this.#pending = [];
    this.#dropped = 0;
    for (const frame of pending) send(frame);
    if (dropped) {
      log.warning(`${dropped} telemetry events emitted before the host connected were dropped (at most ${MAX_PENDING} wait)`);
    }
  }

  unbind(send) {
    if (this.#send === send) this.#send = null;
  }

  send(frame) {
    if (this.#send !== null) {
      this.#send(frame);
    } else if (this.#pending.length < MAX_PENDING) {
      this.#pending.push(frame);
    } else {
      this.#dropped += 1;
    }
  }
}

export const outlet = new Outlet();

/**
 * Send an event. `route(frame)`: the call's way to its host (null: the host takes no
 * events, so it is dropped once checked); `callId` null: an event outside calls.
 */
export function emitEvent(route, callId, name, measurements, metadata) {
  checkName("event name", name);
  const values = checkMeasurements(measurements);
  const details = checkMetadata(metadata);
  send(route, callId, name, values, details);
}

function send(route, callId, name, measurements, metadata) {
  const frame = w.event(callId, name, measurements, metadata, now());
  if (callId === null) outlet.send(frame);
  else if (route !== null) route(frame);
}

/**
 * Time `fn` (sync or async) and send "<name>.stop" with its duration, preceded by
 * "<name>.exception" when it threw; returns what it returned, throws what it threw.
 */
export async function runSpan(route, callId, name, attributes, fn) {
  checkName("span name", name, MAX_NAME - ".exception".length);
  const details = checkMetadata(attributes, "span attributes");
  if (typeof fn !== "function") throw new TypeError(`span ${shown(name)} needs a function to time; got ${shown(fn)}`);
  const started = performance.now();
  let duration = null;
  try {
    return await fn();
  } catch (error) {
    duration = (performance.now() - started) / 1000;
    let type;
    try {
      type = String(error?.name ?? typeof error);
    } catch {
      type = "Error";
    }
    send(route, callId, `${name}.exception`, { duration }, { ...details, error_type: type.toWellFormed() });
    throw error;
  } finally {
    duration ??= (performance.now() - started) / 1000;
    send(route, callId, `${name}.stop`, { duration }, { ...details });
  }
}

/**
 * Send a telemetry event that belongs to no call (from initialize, module code, a timer).
 * The host's handlers get it as "adapter.<name>" with call_id null; events sent before the
 * host connects wait for it (at most 1000). Inside a tool, ctx.emit ties it to its call.
 */
export function emit(name, measurements = null, metadata = null) {
  emitEvent(null, null, name, measurements, metadata);
}

/** Time `fn` outside calls, as ctx.span does inside them. */
export function span(name, attributes, fn) {
  return runSpan(null, null, name, attributes, fn);
}
