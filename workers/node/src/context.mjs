// ToolContext: what a running tool knows about its call, and how it reaches the host.
// Passed to every tool as its second argument.

import { performance } from "node:perf_hooks";
import { HostToolsUnavailable, InvalidVariable } from "./errors.mjs";
import { emitEvent, runSpan } from "./events.mjs";
import { GET_VARIABLE, SET_VARIABLE } from "./host-calls.mjs";
import { shown } from "./text.mjs";

/**
 * The call a context belongs to, as the runtime keeps it (the context only reads it).
 * @typedef {object} CallState
 * @property {number} id the call's id
 * @property {string|null} sessionId
 * @property {number|null} deadline performance.now() value, or null
 * @property {AbortController} controller aborted when the host cancels the call
 * @property {boolean} finished its final frame was sent
 * @property {import("./host-calls.mjs").HostCalls|null} host null: no connection (Execute)
 * @property {() => ((frame: any[]) => void)|null} route its connection's way for events
 * @property {(done: number, total: any, message: any) => void} progress sends PROGRESS
 */

export class ToolContext {
  #state;
  #hostTools = null; // asked once per call, then kept

  /** @param {CallState} state */
  constructor(state) {
    this.#state = state;
  }

  /** The call's id, unique within the worker's connection. */
  get requestId() {
    return this.#state.id;
  }

  /** The session the call belongs to, or null. */
  get sessionId() {
    return this.#state.sessionId;
  }

  /** The performance.now() value (milliseconds) after which the host stops waiting, or null. */
  get deadline() {
    return this.#state.deadline;
  }

  /** Aborted when the host cancels this call: pass it on to fetch, timers, child processes. */
  get signal() {
    return this.#state.controller.signal;
  }

  /** True once the host cancelled this call. */
  get cancelled() {
    return this.#state.controller.signal.aborted;
  }

  /** Seconds until the deadline (negative once it has passed), or null without one. */
  timeRemaining() {
    const deadline = this.#state.deadline;
    return deadline === null ? null : (deadline - performance.now()) / 1000;
  }

  /**
   * Report progress to the caller's on_progress; never blocks. Reports after the call was
   * cancelled or ended are dropped.
   * @param {number} done work done so far, in the tool's own unit
   * @param {number} [total] the total, when known
   * @param {string} [message] a short note (at most 4096 characters of it arrive)
   * @throws {TypeError} done or total is not a number
   */
  progress(done, total = null, message = null) {
    const state = this.#state;
    if (!state.finished && !state.controller.signal.aborted) state.progress(done, total, message);
  }

  /**
   * Send a telemetry event; the host's handlers get it as "adapter.<name>".
   * @param {string} name dotted words of letters, digits, "_" or "-"
   * @param {object} [measurements] numbers by name (seconds, bytes, counts)
   * @param {object} [metadata] string, number, boolean or null values by name
   * @throws {TypeError|RangeError} a malformed name or value (the message names its key)
   */
  emit(name, measurements = null, metadata = null) {
    emitEvent(this.#state.route(), this.#state.id, name, measurements, metadata);
  }

  /**
   * Time `fn`: the host gets "adapter.<name>.stop" with its duration in seconds and
   * `attributes` as metadata, preceded by "adapter.<name>.exception" (with error_type)
   * when it threw. Resolves to what `fn` returned; rejects with what it threw.
   */
  span(name, attributes, fn) {
    if (typeof attributes === "function" && fn === undefined) return runSpan(this.#state.route(), this.#state.id, name, null, attributes);
    return runSpan(this.#state.route(), this.#state.id, name, attributes, fn);
  }

  /**
   * Call a tool registered on the host (the pool's, or this call's session's).
   * @param {string} name the host tool's name
   * @param {object|null} [args] its keyword arguments
   * @returns {Promise<any>} what it returned
   * @throws {UnknownHostTool|HostToolError|HostToolsUnavailable}
   */
  async callHostTool(name, args = null) {
    if (typeof name !== "string" || !name.isWellFormed()) {
      throw new TypeError(`a host tool's name must be a string (of valid UTF-16); got ${shown(name)}`);
    }
    return this.#bridge(name).call(this.#state.id, name, keywordArgs(name, args));
  }

  /** Host tools as methods: `await ctx.host.lookup({ key: 1 })`. */
  get host() {
    return new Proxy(Object.create(null), {
      get: (_, name) => {
        // Not a tool: `then` (an awaited proxy must not look like a promise) and symbols.
        if (typeof name !== "string" || name === "then") return undefined;
        return (args = null) => this.callHostTool(name, args);
      },
    });
  }

  /**
   * The host tools this call may use, by name: {name: {name, description, params}}.
   * @throws {HostToolsUnavailable}
   */
  async hostTools() {
    if (this.#hostTools === null) {
      const listing = await this.#bridge("host_tools").list(this.#state.id);
      this.#hostTools = Object.fromEntries(
        (Array.isArray(listing) ? listing : []).filter((t) => t && typeof t.name === "string").map((t) => [t.name, t]),
      );
    }
    return this.#hostTools;
  }

  /** This call's session's variables (kept on the host): getVariable, setVariable. */
  get session() {
    const ctx = this;
    return {
      /** A variable's value. @throws {InvalidVariable|HostToolError} */
      async getVariable(name) {
        return variableReply(name, await ctx.callHostTool(GET_VARIABLE, { name }));
      },
      /** Change a variable's value (it must keep the variable's rules). @throws {InvalidVariable|HostToolError} */
      async setVariable(name, value) {
        variableReply(name, await ctx.callHostTool(SET_VARIABLE, { name, value }));
      },
    };
  }

  #bridge(tool) {
    if (this.#state.host === null) throw new HostToolsUnavailable(tool); // a call by gRPC's Execute
    return this.#state.host;
  }
}

function keywordArgs(name, args) {
  if (args === null || args === undefined) return {};
  const proto = typeof args === "object" ? Object.getPrototypeOf(args) : undefined;
  if (proto !== Object.prototype && proto !== null && !(args instanceof Map)) {
    throw new TypeError(`arguments of host tool '${name}' must be a plain object of keyword arguments or null, not ${shown(args)}`);
  }
  return args;
}

/** The value of a variable request's reply {value}, or its error thrown. */
function variableReply(name, reply) {
  if (reply !== null && typeof reply === "object" && !Array.isArray(reply)) {
    if ("error" in reply) {
      const error = reply.error ?? {};
      throw new InvalidVariable(String(error.name ?? name), String(error.constraint ?? ""), String(error.message ?? "invalid variable"));
    }
    return reply.value ?? null;
  }
  return null;
}
