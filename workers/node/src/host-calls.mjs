// Host calls: a running tool calls a tool registered on the host, over its call's connection.
//
// One HostCalls per connection (a call's host calls travel where the call came from).
// Rules, as the Python worker's:
// - Only for a call this connection is running and that was not cancelled, so no HOST_CALL
//   ever follows its call's final frame.
// - Only to a host that named "host_tools" in its HELLO: otherwise HostToolsUnavailable at
//   once, nothing sent.
// - A call cancelled by the host fails its waiting host calls with HostToolError kind
//   "cancelled" and sends HOST_CANCEL for each; a call that ends with host calls still open
//   (a tool that did not await them) cancels them the same way. When the connection goes,
//   every open host call fails as cancelled.

import { decode, encode } from "./codec.mjs";
import { HostToolError, HostToolsUnavailable, PayloadTooLarge, SerializationError, UnknownHostTool } from "./errors.mjs";
import * as w from "./frames.mjs";

// The names a session's variables are read and written through (see worker.proto).
export const GET_VARIABLE = "snakepit.get_variable";
export const SET_VARIABLE = "snakepit.set_variable";
const LIST = "host tool list"; // how a HOST_TOOLS request is named in errors

export class HostCalls {
  #emit;
  #isLive;
  #maxPayload;
  #nextId = 1;
  #open = new Map(); // host call id -> {callId, tool, resolve, reject}
  #byCall = new Map(); // call id -> Set of host call ids

  /**
   * @param {(frame: any[]) => void} emit sends a frame to the host
   * @param {(callId: number) => boolean} isLive the call runs on this connection, not cancelled
   */
  constructor(emit, isLive, maxPayload) {
    this.#emit = emit;
    this.#isLive = isLive;
    this.#maxPayload = maxPayload;
    /** What the host serves, from its HELLO. */
    this.capabilities = new Set();
  }

  /** Call host tool `tool` with keyword arguments `args`; resolves to its value. */
  call(callId, tool, args, meta = null) {
    this.#checkCapable(tool);
    let payload;
    try {
      payload = encode(args, { what: `arguments of host tool '${tool}'`, limit: this.#maxPayload });
    } catch (error) {
      if (error instanceof SerializationError || error instanceof PayloadTooLarge) {
        throw new HostToolError(tool, w.KIND_SERIALIZATION, error.message);
      }
      throw error;
    }
    return this.#start(callId, tool, (id) => w.hostCall(id, callId, tool, payload, meta));
  }

  /** The host tools `callId` may use (HOST_TOOLS); resolves to the host's list. */
  list(callId) {
    this.#checkCapable(LIST);
    return this.#start(callId, LIST, (id) => w.hostTools(id, callId));
  }

  #checkCapable(tool) {
    if (!this.capabilities.has(w.CAP_HOST_TOOLS)) throw new HostToolsUnavailable(tool);
  }

  #start(callId, tool, frameFor) {
    if (!this.#isLive(callId)) {
      return Promise.reject(new HostToolError(tool, w.KIND_CANCELLED, "the calling tool's call was cancelled"));
    }
    const id = this.#nextId++;
    const promise = new Promise((resolve, reject) => {
      this.#open.set(id, { callId, tool, resolve, reject });
    });
    let ids = this.#byCall.get(callId);
    if (ids === undefined) this.#byCall.set(callId, (ids = new Set()));
    ids.add(id);
    this.#emit(frameFor(id));
    return promise;
  }

  #take(id) {
    const pending = this.#open.get(id);
    if (pending === undefined) return undefined;
    this.#open.delete(id);
    const ids = this.#byCall.get(pending.callId);
    if (ids !== undefined) {
      ids.delete(id);
      if (ids.size === 0) this.#byCall.delete(pending.callId);
    }
    return pending;
  }

  /** HOST_RESULT. An answer for an id given up meanwhile crossed our HOST_CANCEL: dropped. */
  onResult(frame) {
    const pending = this.#take(frame.id);
    if (pending === undefined) return;
    let value;
    try {
      value = decode(frame.result, { what: `result of host tool '${pending.tool}'` });
    } catch (error) {
      pending.reject(new HostToolError(pending.tool, w.KIND_SERIALIZATION, error.message));
      return;
    }
    pending.resolve(value);
  }

  /** HOST_ERROR. */
  onError(frame) {
    const pending = this.#take(frame.id);
    if (pending === undefined) return;
    if (frame.kind === w.KIND_UNKNOWN_TOOL) {
      pending.reject(new UnknownHostTool(pending.tool, w.KIND_UNKNOWN_TOOL, frame.message));
    } else if (frame.kind === w.KIND_REMOTE) {
      pending.reject(new HostToolError(pending.tool, frame.kind, frame.message, frame.type));
    } else {
      pending.reject(new HostToolError(pending.tool, frame.kind, frame.message));
    }
  }

  /** An answer for `id` came that cannot be read: its tool gets an error. */
  fail(id, message) {
    const pending = this.#take(id);
    if (pending !== undefined) pending.reject(new HostToolError(pending.tool, w.KIND_PROTOCOL, message));
  }

  /** The host cancelled `callId` (or it ended): its open host calls are given up. */
  callCancelled(callId) {
    const ids = this.#byCall.get(callId);
    if (ids === undefined) return; // the common case, once per call
    for (const id of [...ids].sort((a, b) => a - b)) {
      const pending = this.#take(id);
      this.#emit(w.hostCancel(id));
      pending.reject(new HostToolError(pending.tool, w.KIND_CANCELLED, "the calling call was cancelled"));
    }
  }

  /** The connection is gone: every open host call fails. */
  close() {
    for (const id of [...this.#open.keys()]) {
      const pending = this.#take(id);
      pending.reject(new HostToolError(pending.tool, w.KIND_CANCELLED, "the host went away"));
    }
  }
}
