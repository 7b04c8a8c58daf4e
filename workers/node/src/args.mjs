// The worker's command line: the same flags as `python -m snakepit_trio.worker`.

import { parseArgs } from "node:util";
import { parseTcpUrl, serverTls } from "./tcp.mjs";
import { readToken } from "./token-proof.mjs";

export const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;

const USAGE =
  "usage: snakepit-worker --adapter PATH (--socket PATH | --listen tcp://HOST:PORT --token-file PATH) " +
  "[--ready-fd FD] [--capacity N] [--max-payload BYTES] [--host-pid PID] [--watch-stdin] " +
  "[--shm-threshold N] [--lane PATH] [--tls-cert PATH --tls-key PATH [--tls-client-ca PATH]]";

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
        listen: { type: "string", default: "" },
        "token-file": { type: "string", default: "" },
        "tls-cert": { type: "string", default: "" },
        "tls-key": { type: "string", default: "" },
        "tls-client-ca": { type: "string", default: "" },
        "orphan-timeout": { type: "string", default: "" },
      },
    }));
  } catch (error) {
    throw new UsageError(`${error.message}\n${USAGE}`);
  }
  if (!values.adapter) throw new UsageError(`--adapter is required\n${USAGE}`);
  if (!(values.socket || values.listen)) {
    throw new UsageError(`give --socket (started by a host) or --listen tcp://HOST:PORT\n${USAGE}`);
  }
  if (values.lane && values.listen) {
    throw new UsageError(
      "--lane and --listen: give one (a host that starts the worker serves it with --lane; " +
        "--listen is for workers started elsewhere)",
    );
  }
  let tcp = { listen: null, token: null, tls: null };
  if (values.listen) tcp = tcpOptions(values);
  else if (
    values["token-file"] ||
    values["tls-cert"] ||
    values["tls-key"] ||
    values["tls-client-ca"] ||
    values["orphan-timeout"]
  ) {
    throw new UsageError("--token-file, --tls-cert, --tls-key, --tls-client-ca and --orphan-timeout go with --listen");
  }
  return {
    adapter: values.adapter,
    socket: values.socket,
    ...tcp,
    readyFd: integer("ready-fd", values["ready-fd"], { min: -1 }),
    capacity: integer("capacity", values.capacity, { min: 1 }),
    maxPayload: integer("max-payload", values["max-payload"], { min: 1 }),
    hostPid: integer("host-pid", values["host-pid"], { min: 0 }),
    watchStdin: values["watch-stdin"],
    shmThreshold: integer("shm-threshold", values["shm-threshold"], { min: 0 }),
    lane: values.lane,
    orphanTimeout: orphanTimeout(values["orphan-timeout"]),
  };
}

/** --orphan-timeout in seconds, or null (never); a positive finite number. */
function orphanTimeout(text) {
  if (text === "") return null;
  const seconds = Number(text);
  if (!(seconds > 0 && Number.isFinite(seconds))) {
    throw new UsageError(`--orphan-timeout must be a positive number of seconds, not ${JSON.stringify(text)}`);
  }
  return seconds;
}

/** --listen and its companions, checked: the address, the token, the TLS context or null. */
function tcpOptions(values) {
  let listen;
  try {
    listen = parseTcpUrl(values.listen);
  } catch (error) {
    throw new UsageError(`--listen: ${error.message}`);
  }
  if (!values["token-file"]) {
    throw new UsageError("--listen needs --token-file: a file holding the token hosts must prove");
  }
  let token;
  try {
    token = readToken(values["token-file"]);
  } catch (error) {
    throw new UsageError(`--token-file: ${error.message}`);
  }
  if (Boolean(values["tls-cert"]) !== Boolean(values["tls-key"])) {
    throw new UsageError("give both --tls-cert and --tls-key, or neither (plain TCP)");
  }
  if (values["tls-client-ca"] && !values["tls-cert"]) {
    throw new UsageError(
      "--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked inside TLS only",
    );
  }
  let tls = null;
  if (values["tls-cert"]) {
    try {
      tls = serverTls(values["tls-cert"], values["tls-key"]);
    } catch (error) {
      throw new UsageError(`--tls-cert/--tls-key: cannot load them: ${error.message}`);
    }
    if (values["tls-client-ca"]) {
      try {
        tls = serverTls(values["tls-cert"], values["tls-key"], values["tls-client-ca"]);
      } catch (error) {
        throw new UsageError(`--tls-client-ca: cannot load ${values["tls-client-ca"]}: ${error.message}`);
      }
    }
  }
  return { listen, token, tls };
}
