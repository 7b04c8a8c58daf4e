// The error classes an adapter meets (exported from index.mjs) and the worker's own.
// Each sets `name` to its class name: the host reports a tool's error by its name, and a
// tool tells these apart by `err.name` or `instanceof`.

import { repr } from "./text.mjs";

/** Base class of every error this package raises. */
export class SnakepitError extends Error {
  static {
    this.prototype.name = "SnakepitError";
  }
}

/** A value cannot be encoded or decoded (the message says where, and what it is). */
export class SerializationError extends SnakepitError {
  static {
    this.prototype.name = "SerializationError";
  }
}

/** An encoded payload is larger than the pool's max_payload_bytes. */
export class PayloadTooLarge extends SnakepitError {
  static {
    this.prototype.name = "PayloadTooLarge";
  }

  /**
   * @param {string} what what was encoded ("result of 'big'")
   * @param {number} size its encoded size in bytes
   * @param {number} limit the limit in bytes
   */
  constructor(what, size, limit, option = "max_payload_bytes") {
    super(
      `${what} is ${size} bytes encoded, over the ${limit}-byte limit; ` +
        `raise the pool's ${option} option or send less data`,
    );
    this.size = size;
    this.limit = limit;
    this.option = option;
  }
}

/**
 * A host tool called by `ctx.callHostTool` did not return a value.
 *
 * `kind`: "remote" (it threw on the host: `remoteType` and `remoteMessage` are its own),
 * "unknown_tool", "invalid_arguments", "cancelled" (this call was cancelled, its deadline
 * passed, or the host went away), "serialization", "reentrancy", "unavailable" (the host
 * serves no host tools) or "protocol" (the host's answer could not be read).
 */
export class HostToolError extends SnakepitError {
  static {
    this.prototype.name = "HostToolError";
  }

  constructor(tool, kind, message, remoteType = "") {
    const what = remoteType ? `${remoteType}: ${message}` : message;
    super(`host tool ${repr(tool)} failed (${kind}): ${what}`);
    this.tool = tool;
    this.kind = kind;
    this.remoteType = remoteType;
    this.remoteMessage = message;
  }
}

/** No host tool of that name is visible to the calling call. `kind` is "unknown_tool". */
export class UnknownHostTool extends HostToolError {
  static {
    this.prototype.name = "UnknownHostTool";
  }
}

/** The host offers no host tools (it did not name them when it connected); nothing was sent. */
export class HostToolsUnavailable extends HostToolError {
  static {
    this.prototype.name = "HostToolsUnavailable";
  }

  constructor(tool) {
    super(
      tool,
      "unavailable",
      "the host did not offer host tools when it connected (an older host, or a " +
        "client that calls tools directly); nothing was sent",
    );
  }
}

/** A session variable that was never registered, a value that breaks its rules, or no session. */
export class InvalidVariable extends SnakepitError {
  static {
    this.prototype.name = "InvalidVariable";
  }

  constructor(variable, constraint, message) {
    super(message);
    this.variable = variable;
    this.constraint = constraint;
  }
}

/** The adapter module cannot be loaded or does not declare its tools correctly. */
export class AdapterLoadError extends SnakepitError {
  static {
    this.prototype.name = "AdapterLoadError";
  }
}

/** A frame that does not parse, or that arrives where the protocol allows none. */
export class ProtocolViolation extends SnakepitError {
  static {
    this.prototype.name = "ProtocolViolation";
  }
}
