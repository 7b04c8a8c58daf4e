// The gRPC carrier: the Worker service of proto/snakepit/v1/worker.proto on a unix socket.
//
// Describe and Health answer from the runtime; Connect carries the same batches as the
// local lane, one Batch message each (the host's first frame is HELLO, which is not
// answered); Execute and ExecuteStream serve simple clients one call per RPC.

import { chmodSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import { Connection } from "./connection.mjs";
import * as w from "./frames.mjs";
import { log } from "./log.mjs";
import { unpack } from "./msgpack.mjs";
import { Outflow } from "./outflow.mjs";
import { removeStaleSocket } from "./sockets.mjs";
import { repr } from "./text.mjs";

const PROTO = join(dirname(fileURLToPath(import.meta.url)), "..", "proto", "snakepit", "v1", "worker.proto");
const STREAM_WINDOW = 16; // chunks ExecuteStream lets a stream run ahead of its client

/** The Worker service definition, loaded from the package's copy of the proto. */
export function loadService() {
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  return grpc.loadPackageDefinition(definition).snakepit.v1.Worker.service;
}

function asBuffer(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An ExecuteResponse for a RESULT, CHUNK or ERROR frame. */
function response(frame) {
  if (frame[0] === w.ERROR) {
    const [, , type, message, traceback, kind] = frame;
    return { error: { kind, type, message, traceback } };
  }
  return { result: asBuffer(frame[2]) };
}

export class GrpcServer {
  #server;
  #streams = new Set(); // {conn, stream, outflow} of the open Connect streams

  /**
   * @param {import("./runtime.mjs").Runtime} runtime
   * @param {() => object} describe the description map (describe.mjs)
   * @param {number} maxMessage the longest message read (max payload + 2 MiB)
   */
  constructor(runtime, describe, maxMessage) {
    this.runtime = runtime;
    this.describe = describe;
    this.#server = new grpc.Server({
      "grpc.max_receive_message_length": maxMessage,
      "grpc.max_send_message_length": -1,
    });
    this.#server.addService(loadService(), {
      Describe: (call, callback) => callback(null, this.#describeResponse()),
      Health: (call, callback) => callback(null, this.#health()),
      Connect: (stream) => this.#connect(stream),
      Execute: (call, callback) => this.#execute(call, callback),
      ExecuteStream: (call) => this.#executeStream(call),
    });
  }

  /** Serve on unix socket `path` (readable and writable by this user only). */
  start(path) {
    removeStaleSocket(path);
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (error) => {
        if (error) return reject(error);
        try {
          chmodSync(path, 0o600);
        } catch (problem) {
          return reject(problem);
        }
        resolve();
      });
    });
  }

  #describeResponse() {
    const d = this.describe;
    return {
      adapter: d.adapter,
      pid: d.pid,
      capacity: d.capacity,
      protocol: d.protocol,
      capabilities: d.capabilities,
      runtime: d.runtime,
      thread_safe: d.thread_safe,
      tools: d.tools.map((t) => ({
        name: t.name,
        description: t.description,
        streaming: t.streaming,
        accepts_extra: t.accepts_extra,
        threaded: t.threaded,
        params: t.params.map((p) => ({ name: p.name, type: p.type, required: p.required, default: asBuffer(p.default) })),
      })),
    };
  }

  #health() {
    const runtime = this.runtime;
    return {
      status: "serving",
      pid: process.pid,
      uptime: (performance.now() - runtime.started) / 1000,
      in_flight: runtime.inFlight,
      requests: runtime.requests,
    };
  }

  #connect(stream) {
    let entry = null;
    const outflow = new Outflow({
      write: (batches, resume) => {
        let flowing = true;
        for (const batch of batches) flowing = stream.write({ frames: asBuffer(batch) });
        if (!flowing) stream.once("drain", resume);
        return flowing;
      },
      finish: () => {
        stream.end();
        done();
      },
      abort: (error) => {
        stream.emit("error", { code: grpc.status.INTERNAL, details: `the worker failed: ${error.message}` });
        done();
      },
    });
    const conn = new Connection(this.runtime, outflow.wake);
    outflow.attach(conn);
    entry = { conn, stream, outflow };
    this.#streams.add(entry);
    const done = () => {
      outflow.stop();
      conn.close();
      this.#streams.delete(entry);
    };
    stream.on("data", (message) => {
      if (conn.readingDone) return;
      let frames;
      try {
        frames = unpack(message.frames);
      } catch {
        log.warning(`ignoring an undecodable batch of ${message.frames.length} bytes`);
        return;
      }
      try {
        conn.handle(frames);
      } catch (error) {
        log.error("handling a Connect batch failed; closing the stream", error);
        outflow.stop();
        stream.emit("error", { code: grpc.status.INTERNAL, details: "the worker failed to handle a batch" });
        done();
      }
    });
    stream.on("end", () => {
      conn.readingDone = true;
      outflow.wake(); // it may have finished already
    });
    stream.on("cancelled", done); // the host went away: its calls are cancelled
    stream.on("error", (error) => {
      log.warning(`the Connect stream failed: ${error.message}`);
      done();
    });
  }

  #start(request, window, sink) {
    return this.runtime.startCall(
      {
        id: 0,
        tool: request.tool,
        args: request.args,
        session_id: request.session_id || null,
        deadline: request.timeout || null,
        window,
      },
      // No connection: no host tools, no events.
      { sink, onDone: null, host: null, route: () => null, borrowed: false },
    );
  }

  #execute(call, callback) {
    const request = call.request;
    const info = this.runtime.tools.get(request.tool);
    if (info?.streaming) {
      const reason = `tool ${repr(request.tool)} streams; call it with ExecuteStream`;
      callback(null, response(w.error(0, "InvalidArguments", reason, w.KIND_INVALID_ARGUMENTS)));
      return;
    }
    let answered = false;
    const running = this.#start(request, 0, (frame) => {
      if (answered || (frame[0] !== w.RESULT && frame[0] !== w.ERROR)) return;
      answered = true;
      callback(null, response(frame));
    });
    call.on("cancelled", () => {
      if (!answered) running?.cancel();
    });
  }

  #executeStream(call) {
    let finished = false;
    let running = null;
    running = this.#start(call.request, STREAM_WINDOW, (frame) => {
      if (finished) return;
      switch (frame[0]) {
        case w.CHUNK:
          // One more chunk may come once this one was handed to HTTP/2.
          call.write(response(frame), () => running?.addCredit(1));
          break;
        case w.END:
          finished = true;
          call.end();
          break;
        case w.RESULT:
        case w.ERROR:
          finished = true;
          call.write(response(frame));
          call.end();
          break;
        default:
          break; // PROGRESS: this RPC has no place for it
      }
    });
    call.on("cancelled", () => {
      if (!finished) running?.cancel();
    });
  }

  /**
   * Stop: each Connect stream sends what it owes and ends, then the server shuts down
   * (forced after `timeoutMs`). Called once the runtime has drained.
   */
  async close(timeoutMs = 2000) {
    for (const { conn, outflow } of this.#streams) {
      conn.readingDone = true;
      outflow.wake();
    }
    const shutdown = new Promise((resolve) => this.#server.tryShutdown(() => resolve()));
    const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([shutdown, timer]);
    this.#server.forceShutdown();
  }
}
