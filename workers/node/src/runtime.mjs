// Runs tool calls inside the worker: one RunningCall per call, frames out through a sink.
//
// Rules, as the Python worker's:
// - Every accepted CALL or BATCH ends with exactly one RESULT, END or ERROR frame, whatever
//   happens: building the final frame never throws (a value that cannot be encoded is a
//   serialization error; if even building the error fails, a constant ERROR is sent), so no
//   call hangs and no slot is lost.
// - Whatever a tool throws ends that call only; the worker serves on.
// - At most `capacity` calls run at once, streams and batches included (slots.mjs); calls
//   beyond it wait in arrival order. A borrowed call runs beyond it.
// - A CANCEL or REVOKE for a call still waiting is answered at once with ERROR "cancelled"
//   {started: false}; the call never starts.
// - A cancelled call's signal aborts; it keeps its slot until its code has stopped (its
//   promise settled, its generator closed), and then ends with ERROR "cancelled". JavaScript
//   cannot interrupt a function: a tool that never looks at ctx.signal runs to its end.
// - A tool declared `exclusive` runs one call at a time.

import { performance } from "node:perf_hooks";
import { checkArguments, withDefaults } from "./adapter.mjs";
import * as batch from "./batch.mjs";
import { RunningCall, callState } from "./call.mjs";
import { decode, encode } from "./codec.mjs";
import { PayloadTooLarge, SerializationError } from "./errors.mjs";
import * as w from "./frames.mjs";
import { log } from "./log.mjs";
import { cancelledFrame, errorFrame, notStartedFrame, progressValues, unreportableFrame } from "./outcomes.mjs";
import { Mutex, QUEUED, RUNNING, Slots, WITHDRAWN } from "./slots.mjs";
import { runStream } from "./stream.mjs";
import { repr } from "./text.mjs";

export class Runtime {
  #locks; // an exclusive tool's lock, by name
  #idle = []; // resolvers waiting for inFlight to reach 0

  /**
   * @param {object} options
   * @param {object} options.adapter the adapter instance
   * @param {Map<string, object>} options.tools its tools (adapter.mjs)
   * @param {number} options.capacity calls run at once
   * @param {number} options.maxPayload the largest result or chunk, in bytes
   * @param {boolean} options.threadSafe the adapter's declaration (reported in its description)
   */
  constructor({ adapter, tools, capacity, maxPayload, threadSafe = false }) {
    this.adapter = adapter;
    this.tools = tools;
    this.capacity = capacity;
    this.maxPayload = maxPayload;
    this.threadSafe = threadSafe;
    this.slots = new Slots(capacity);
    this.calls = new Set(); // accepted and not finished
    this.inFlight = 0;
    this.requests = 0;
    this.started = performance.now();
    this.stopping = false; // SIGTERM: no call starts any more
    this.#locks = new Map([...tools.values()].filter((t) => t.exclusive).map((t) => [t.name, new Mutex()]));
  }

  /** A result or chunk's payload. @throws {SerializationError|PayloadTooLarge} */
  encode(value, what) {
    return encode(value, { what, limit: this.maxPayload });
  }

  /**
   * Start a CALL; on a bad request, send its ERROR frame and return null.
   * @param {object} frame the parsed CALL (frames.mjs)
   * @param {object} link the connection's: sink, onDone, host (HostCalls or null), route
   */
  startCall(frame, link) {
    const { id, tool, deadline, window } = frame;
    const info = this.tools.get(tool);
    if (info === undefined) {
      link.sink(w.error(id, "UnknownTool", `unknown tool ${repr(tool)}`, w.KIND_UNKNOWN_TOOL));
      return null;
    }
    let args;
    try {
      args = frame.args.byteLength === 0 ? {} : decode(frame.args, { what: info.what.args });
    } catch (error) {
      link.sink(w.error(id, "SerializationError", error.message, w.KIND_SERIALIZATION));
      return null;
    }
    const problem = checkArguments(info, args);
    if (problem !== null) {
      const [param, reason] = problem;
      const message = param === null ? reason : `argument ${repr(param)}: ${reason}`;
      link.sink(w.error(id, "InvalidArguments", message, w.KIND_INVALID_ARGUMENTS));
      return null;
    }
    if (this.stopping) return this.#refuse(id, link);
    const state = this.#state(frame, link);
    const call = new RunningCall({
      id,
      info,
      state,
      sink: link.sink,
      onDone: link.onDone,
      borrowed: link.borrowed === true,
      credit: info.streaming ? Math.max(Number(window), 1) : 0,
      run: () => this.adapter[info.name](withDefaults(info, args), call.ctx),
    });
    return this.#launch(call, link);
  }

  /** Start a BATCH (see batch.mjs); on a bad request, send its ERROR frame and return null. */
  startBatch(frame, link) {
    const { id, tool, stop } = frame;
    const info = this.tools.get(tool);
    const refusal = batch.refused(id, info, tool);
    if (refusal !== null) {
      link.sink(refusal);
      return null;
    }
    let items;
    try {
      items = decode(frame.args, { what: `arguments of a batch of ${repr(tool)}` });
    } catch (error) {
      link.sink(w.error(id, "SerializationError", error.message, w.KIND_SERIALIZATION));
      return null;
    }
    const problem = batch.problem(info, items);
    if (problem !== null) {
      link.sink(w.error(id, "InvalidArguments", problem, w.KIND_INVALID_ARGUMENTS));
      return null;
    }
    if (this.stopping) return this.#refuse(id, link);
    const state = this.#state(frame, link);
    const call = new RunningCall({
      id,
      info: { name: info.name, streaming: false, exclusive: info.exclusive, what: info.what },
      state,
      sink: link.sink,
      onDone: link.onDone,
      borrowed: link.borrowed === true,
      run: batch.runner(info, items, {
        invoke: (args) => this.adapter[info.name](args, call.ctx),
        cancelled: () => call.cancelRequested,
        stop: Number(stop) !== 0,
        encode: (value, what) => this.encode(value, what),
        limit: this.maxPayload,
      }),
    });
    return this.#launch(call, link);
  }

  /** A call that arrives while the worker stops is given back unstarted (it may run elsewhere). */
  #refuse(id, link) {
    link.sink(notStartedFrame(id));
    return null;
  }

  #state(frame, link) {
    const { id, session_id: sessionId, deadline } = frame;
    const sink = link.sink;
    return callState({
      id,
      sessionId,
      deadline,
      host: link.host,
      route: link.route,
      progress: (done, total, message) => sink(w.progress(id, ...progressValues(done, total, message))),
    });
  }

  #launch(call, link) {
    call.withdraw = (c) => this.withdraw(c);
    // Known to its connection before its tool runs: a tool's first synchronous steps may
    // already call the host, which only a call in flight may do.
    link.register?.(call);
    this.calls.add(call);
    this.inFlight += 1;
    this.requests += 1;
    if (call.borrowed || this.slots.take(call)) this.#begin(call);
    return call;
  }

  /**
   * CANCEL or REVOKE of a call that has not started: answer it and never start it.
   * @returns {boolean} true if it was withdrawn, false if it had started
   */
  withdraw(call) {
    if (call.state !== QUEUED) return false;
    call.state = WITHDRAWN; // skipped when its turn in the queue comes
    call.sink(notStartedFrame(call.id));
    this.#finished(call);
    return true;
  }

  #begin(call) {
    call.state = RUNNING;
    this.#run(call).catch((error) => {
      // #run reports every outcome itself; reaching here is a bug of this worker, and the
      // call's end is still owed to the host.
      log.error(`call ${call.id}: the runtime failed`, error);
      if (!call.context.finished) {
        call.sink(unreportableFrame(call.id, error));
        this.#finished(call);
      }
    });
  }

  async #run(call) {
    const started = performance.now();
    const lock = this.#locks.get(call.info.name);
    let value;
    let failed = false;
    let error;
    try {
      if (lock !== undefined) await lock.acquire(call.context.controller.signal);
      try {
        if (call.info.streaming) await runStream(call, (v, what) => this.encode(v, what));
        else value = await call.run();
      } finally {
        lock?.release();
      }
    } catch (thrown) {
      failed = true;
      error = thrown;
    }
    if (!call.borrowed) this.#release();
    if (!call.info.streaming || failed) {
      const frame = this.#outcomeFrame(call, value, failed, error, (performance.now() - started) / 1000);
      value = undefined;
      call.sink(frame);
    }
    this.#finished(call);
  }

  /** The final frame of a call; never throws. */
  #outcomeFrame(call, value, failed, error, runTime) {
    try {
      if (call.cancelRequested) return cancelledFrame(call.id);
      if (failed) return errorFrame(call.id, error);
      const payload = value instanceof batch.Packed ? value.payload : this.encode(value, call.info.what.result);
      return w.result(call.id, payload, runTime);
    } catch (problem) {
      if (problem instanceof SerializationError || problem instanceof PayloadTooLarge) return errorFrame(call.id, problem);
      return unreportableFrame(call.id, problem);
    }
  }

  /** A call that held a slot ended: the slot goes to the first waiting call. */
  #release() {
    const following = this.slots.giveBack();
    if (following !== null) this.#begin(following);
  }

  #finished(call) {
    call.context.finished = true;
    call.run = null; // its arguments and adapter references go
    this.calls.delete(call);
    this.inFlight -= 1;
    if (this.inFlight === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
    call.onDone?.(call.id);
  }

  /** Resolves once no call is in flight. */
  drain() {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Cancel every call: waiting ones are withdrawn, running ones see their signal abort. */
  cancelAll() {
    for (const call of [...this.calls]) call.cancel();
  }

  /** SESSION_END: the adapter's onSessionEnd(sessionId); what it throws is logged. */
  endSession(sessionId) {
    const hook = this.adapter.onSessionEnd;
    if (typeof hook !== "function") return;
    (async () => {
      try {
        await hook.call(this.adapter, sessionId);
      } catch (error) {
        log.error(`onSessionEnd(${repr(sessionId)}) failed`, error);
      }
    })();
  }
}
