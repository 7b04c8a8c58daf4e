// The worker's command line: the same flags as `python -m snakepit_trio.worker`.

import { parseArgs } from "node:util";

export const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;

const USAGE =
  "usage: snakepit-worker --adapter PATH --socket PATH [--ready-fd FD] [--capacity N] " +
  "[--max-payload BYTES] [--host-pid PID] [--watch-stdin] [--shm-threshold N] [--lane PATH]";

export class UsageError extends Error {
  static {
    this.prototype.name = "UsageError";
  }
}

function integer(name, text, { min }) {
  if (!/^-?\d+$/.test(text ?? "")) throw new UsageError(`--${name} must be an integer; got ${text}`);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name} must be at least ${min}; got ${text}`);
  return value;
}

/**
 * The options of `argv` (the arguments after the script).
 * @throws {UsageError} an unknown flag, a missing required one, or a malformed value
 */
export function parseWorkerArgs(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        adapter: { type: "string" },
        socket: { type: "string" },
        "ready-fd": { type: "string", default: "-1" },
        capacity: { type: "string", default: "1" },
        "max-payload": { type: "string", default: String(DEFAULT_MAX_PAYLOAD) },
        "host-pid": { type: "string", default: "0" },
        "watch-stdin": { type: "boolean", default: false },
        // Accepted for the host's sake: this worker offers no shared memory, so the host
        // sends it every payload inline whatever the threshold.
        "shm-threshold": { type: "string", default: "0" },
        lane: { type: "string", default: "" },
      },
    }));
  } catch (error) {
    throw new UsageError(`${error.message}\n${USAGE}`);
  }
  for (const name of ["adapter", "socket"]) {
    if (!values[name]) throw new UsageError(`--${name} is required\n${USAGE}`);
  }
  return {
    adapter: values.adapter,
    socket: values.socket,
    readyFd: integer("ready-fd", values["ready-fd"], { min: -1 }),
    capacity: integer("capacity", values.capacity, { min: 1 }),
    maxPayload: integer("max-payload", values["max-payload"], { min: 1 }),
    hostPid: integer("host-pid", values["host-pid"], { min: 0 }),
    watchStdin: values["watch-stdin"],
    shmThreshold: integer("shm-threshold", values["shm-threshold"], { min: 0 }),
    lane: values.lane,
  };
}
