// snakepit-trio-worker: the public API for adapters.
//
// An adapter is a module whose default export is a class with a static `tools` declaration
// (see README.md). The worker (bin/snakepit-worker.mjs) loads it; an adapter imports from
// here only what it needs: the value classes to build or recognise payload values, the
// errors its host calls may throw, and emit/span for telemetry outside calls.

export { decode, encode } from "./src/codec.mjs";
export { ToolContext } from "./src/context.mjs";
export {
  HostToolError,
  HostToolsUnavailable,
  InvalidVariable,
  PayloadTooLarge,
  SerializationError,
  SnakepitError,
  UnknownHostTool,
} from "./src/errors.mjs";
export { emit, span } from "./src/events.mjs";
export { NDArray } from "./src/ndarray.mjs";
export { ArrowIPC, Decimal, Duration, LocalDate, LocalDateTime, UUID } from "./src/values.mjs";
export { ExtData } from "@msgpack/msgpack";

/**
 * A parameter's declaration.
 * @typedef {object} ParamSpec
 * @property {"int"|"float"|"str"|"bool"|"bytes"|"list"|"dict"|"none"|"any"|"ndarray"|string} [type]
 *   the type the host checks values against ("any" by default); a trailing "?" also allows null
 * @property {boolean} [required] true when the caller must pass it (default: no `default` given)
 * @property {*} [default] filled in when the caller leaves it out (and shown by the host)
 * @property {string} [description]
 */

/**
 * A tool's declaration, in the adapter class's `static tools = { name: ToolSpec }`.
 * @typedef {object} ToolSpec
 * @property {string} [description] shown by the host's pool.tools()
 * @property {boolean} [streaming] it yields chunks (default: whether its method is a generator)
 * @property {Record<string, ParamSpec>} [params] its keyword parameters
 * @property {boolean} [acceptsExtra] it takes arguments beyond `params`
 * @property {boolean} [exclusive] at most one call of it runs at a time in a worker
 */

/**
 * What a tool method receives and returns.
 * @callback Tool
 * @param {Record<string, any>} args its keyword arguments (declared defaults filled in)
 * @param {ToolContext} ctx its call's context
 * @returns {any} its result (or a promise of it); a streaming tool yields its chunks
 */
