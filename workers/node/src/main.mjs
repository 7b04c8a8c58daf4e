// The worker process: load the adapter, serve it, report READY, stop on SIGTERM.
//
// Lifecycle: tie to the host (hygiene.mjs) -> import the adapter -> initialize() -> serve
// gRPC on --socket and the local lane on --lane, or the lane on TCP with --listen for hosts
// that prove the token -> write "READY <pid>\n" to --ready-fd, or "READY <pid> <port>\n" when
// listening on TCP (to stdout without a ready fd: started by hand or by a service manager)
// (only now may a host connect) -> run until SIGTERM: no call starts any more, running ones
// are cancelled and send their final frames, cleanup() runs, exit 0, each step bounded
// (below). A broken adapter exits with EXIT_ADAPTER_ERROR and its cause as the last line on
// stderr, before READY, which the host reports as the pool's start error.

import { closeSync, writeSync } from "node:fs";
import { collectTools, loadAdapterClass } from "./adapter.mjs";
import { UsageError, parseWorkerArgs } from "./args.mjs";
import { describeMap } from "./describe.mjs";
import { AdapterLoadError } from "./errors.mjs";
import { MAX_BATCH_BYTES } from "./frames.mjs";
import { GrpcServer } from "./grpc.mjs";
import { ignoreInterrupts, watchHost, watchStdin } from "./hygiene.mjs";
import { LaneServer } from "./lane.mjs";
import { log, stackOf } from "./log.mjs";
import { describe } from "./outcomes.mjs";
import { Runtime } from "./runtime.mjs";

export const EXIT_USAGE = 2;
export const EXIT_ADAPTER_ERROR = 3;
const DRAIN_MS = 2000; // running calls' time to end once cancelled
const CLOSE_MS = 1000; // connections' time to send what they owe
const CLEANUP_MS = 1500; // the adapter's cleanup(): all three within the host's default 5 s grace

function fail(code, message) {
  try {
    writeSync(2, message.endsWith("\n") ? message : `${message}\n`);
  } catch {
    // stderr is gone too: the exit code says enough.
  }
  process.exit(code);
}

function within(ms, promise) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([promise.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/** Load and start the adapter: its class, its tools, an instance, initialize(). */
async function startAdapter(spec) {
  const cls = await loadAdapterClass(spec);
  const tools = collectTools(cls);
  const adapter = new cls();
  if (typeof adapter.initialize === "function") await adapter.initialize();
  return { cls, tools, adapter };
}

export async function main(argv) {
  let args;
  try {
    args = parseWorkerArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) fail(EXIT_USAGE, `snakepit worker: ${error.message}`);
    throw error;
  }
  ignoreInterrupts();
  if (args.watchStdin) watchStdin();
  watchHost(args.hostPid);
  // A tool's stray promise or timer must not take every other call down with the worker:
  // what escapes is logged, as the Python worker's event loop logs it, and serving goes on.
  process.on("unhandledRejection", (reason) => log.error("an unhandled promise rejection (from a tool?)", reason));
  process.on("uncaughtException", (error) => log.error("an uncaught exception (from a tool?)", error));
  process.stdout.on("error", () => {}); // the host closed its pipes: it is going, and so are we
  process.stderr.on("error", () => {});

  let started;
  try {
    started = await startAdapter(args.adapter);
  } catch (error) {
    const cause = error instanceof AdapterLoadError ? error.message : describe(error);
    const stack = error instanceof AdapterLoadError ? (error.cause === undefined ? "" : stackOf(error.cause)) : stackOf(error);
    fail(EXIT_ADAPTER_ERROR, `${stack ? `${stack}\n` : ""}snakepit worker: adapter failed to start: ${cause}`);
  }
  const { cls, tools, adapter } = started;

  const runtime = new Runtime({
    adapter,
    tools,
    capacity: args.capacity,
    maxPayload: args.maxPayload,
    threadSafe: cls.threadSafe === true,
  });
  // A batch holds at most one payload over MAX_BATCH_BYTES, plus small frames.
  const maxMessage = args.maxPayload + 2 * MAX_BATCH_BYTES;
  const describeNow = describeMap(runtime, args.adapter);
  const grpcServer = args.socket ? new GrpcServer(runtime, describeNow, maxMessage) : null;
  const lane = args.lane || args.listen ? new LaneServer(runtime, describeNow, maxMessage) : null;
  let ready = `READY ${process.pid}`;
  try {
    if (grpcServer !== null) await grpcServer.start(args.socket);
    if (args.lane) await lane.start(args.lane);
    if (args.listen) ready += ` ${await lane.startTcp(args.listen.host, args.listen.port, args.token, args.tls)}`;
  } catch (error) {
    fail(1, `${stackOf(error)}\nsnakepit worker: cannot listen: ${describe(error)}`);
  }

  let stopping = null;
  process.on("SIGTERM", () => {
    stopping ??= stop(runtime, grpcServer, lane, adapter);
  });
  if (args.orphanTimeout !== null) {
    const timeoutMs = args.orphanTimeout * 1000;
    // How late past the timeout a silence may be noticed.
    const watch = setInterval(() => {
      lane.dropSilent(timeoutMs);
      if (performance.now() - lane.lastHeard < timeoutMs || stopping !== null) return;
      clearInterval(watch);
      process.stderr.write(
        `snakepit worker: no host for ${args.orphanTimeout} s (--orphan-timeout): cancelling every call and exiting\n`,
      );
      stopping = stop(runtime, grpcServer, lane, adapter); // no host will stop it otherwise
    }, Math.min(timeoutMs / 4, 1000));
  }

  if (args.readyFd >= 0) {
    try {
      writeSync(args.readyFd, `${ready}\n`);
      closeSync(args.readyFd);
    } catch (error) {
      fail(1, `snakepit worker: cannot report READY on fd ${args.readyFd}: ${describe(error)}`);
    }
  } else if (args.listen) {
    try {
      writeSync(1, `${ready}\n`); // started by hand or by a service manager: say the port
    } catch (error) {
      fail(1, `snakepit worker: cannot report READY on stdout: ${describe(error)}`);
    }
  }
}

/**
 * Graceful stop (the host wants no more results): no call starts, running calls are
 * cancelled and send their final frames, connections close, cleanup() runs, exit 0. Each
 * step is bounded: a tool that ignores its signal cannot hold the exit back.
 */
async function stop(runtime, grpcServer, lane, adapter) {
  try {
    runtime.stopping = true;
    runtime.cancelAll();
    if (!(await within(DRAIN_MS, runtime.drain()))) {
      log.warning(`${runtime.inFlight} calls did not end within ${DRAIN_MS} ms of their cancel; exiting without them`);
    }
    await Promise.all([lane?.close(CLOSE_MS), grpcServer?.close(CLOSE_MS)]);
    if (typeof adapter.cleanup === "function") {
      const cleaned = await within(
        CLEANUP_MS,
        (async () => {
          try {
            await adapter.cleanup();
          } catch (error) {
            log.error("adapter cleanup() failed", error);
          }
        })(),
      );
      if (!cleaned) log.warning(`adapter cleanup() did not finish within ${CLEANUP_MS} ms`);
    }
  } catch (error) {
    log.error("stopping failed", error);
  }
  process.exit(0);
}
