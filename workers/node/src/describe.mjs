// This worker's description: the WELCOME frame's map and the Describe reply's fields
// (the shape is documented in proto/snakepit/v1/worker.proto).

import * as w from "./frames.mjs";

export const RUNTIME = "node";

/**
 * The description map. No "gil_enabled": the question is Python's (absent means unknown).
 * "threaded" is false for every tool: JavaScript tools run on the event loop, one at a time
 * between awaits, however many calls are in flight.
 */
export function describeMap(runtime, adapterName) {
  return {
    protocol: w.PROTOCOL,
    adapter: adapterName,
    pid: process.pid,
    capacity: runtime.capacity,
    capabilities: [...w.WORKER_CAPABILITIES],
    runtime: RUNTIME,
    thread_safe: runtime.threadSafe,
    tools: [...runtime.tools.values()].map((info) => ({
      name: info.name,
      description: info.description,
      streaming: info.streaming,
      accepts_extra: info.acceptsExtra,
      threaded: false,
      params: info.params.map((p) => ({
        name: p.name,
        type: p.type,
        required: p.required,
        default: p.required || p.defaultBytes === null ? new Uint8Array(0) : p.defaultBytes,
      })),
    })),
  };
}
