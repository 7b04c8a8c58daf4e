// One connection to the host, whichever carrier brings it: frames in, calls started,
// frames out.
//
// The carriers (lane.mjs, grpc.mjs) feed it decoded batches (`handle`) and send what
// `takeBatches` gives them when it calls their `wake`. Frames produced while a message is on
// the wire pile up in the outbox and leave together in the next message. Chunks that pile up
// go to a host that named "chunks" in one CHUNKS frame: a CHUNK emitted right after a CHUNKS
// of the same call, with nothing in between, joins it (up to MAX_CHUNKS chunks and
// MAX_BATCH_BYTES bytes), so the host handles a burst of chunks at once.

import { pack } from "./msgpack.mjs";
import { outlet } from "./events.mjs";
import * as w from "./frames.mjs";
import { HostCalls } from "./host-calls.mjs";
import { log } from "./log.mjs";
import { wire } from "./text.mjs";

export class Connection {
  #wake;
  #link; // what a call started here is given: where its frames go, its host calls, its events
  #woken = false;
  #run = null; // the CHUNKS frame that chunks may still join
  #runBytes = 0; // its chunks' bytes

  /**
   * @param {import("./runtime.mjs").Runtime} runtime
   * @param {() => void} wake the carrier's: frames are waiting (called once until it takes them)
   */
  constructor(runtime, wake) {
    this.runtime = runtime;
    this.calls = new Map(); // id -> RunningCall, started through this connection
    this.outbox = [];
    this.readingDone = false;
    this.closed = false;
    // What the host serves, from its HELLO (the first frame on either carrier); until then
    // nothing beyond the base frames is sent to it.
    this.hostCapabilities = new Set();
    this.host = new HostCalls(
      (frame) => this.emit(frame),
      (id) => this.calls.get(id)?.cancelRequested === false,
      runtime.maxPayload,
    );
    this.eventRoute = null; // set once the host named "events"
    this.#wake = wake;
    this.#link = {
      sink: (frame) => this.emit(frame),
      onDone: (id) => this.#callDone(id),
      host: this.host,
      route: () => this.eventRoute,
      borrowed: false,
      register: (call) => this.calls.set(call.id, call),
    };
  }

  emit(frame) {
    if (this.closed) return; // the host is gone; its calls are being cancelled
    if (frame[0] === w.CHUNK && this.hostCapabilities.has(w.CAP_CHUNKS)) {
      const run = this.#run;
      const payload = frame[2];
      if (
        run !== null &&
        this.outbox[this.outbox.length - 1] === run && // nothing queued since, not sent yet
        run[1] === frame[1] &&
        run[2].length < w.MAX_CHUNKS &&
        this.#runBytes + payload.byteLength <= w.MAX_BATCH_BYTES
      ) {
        run[2].push(payload);
        this.#runBytes += payload.byteLength;
        return; // the carrier was woken when the run began
      }
      frame = this.#run = w.chunks(frame[1], [payload]);
      this.#runBytes = payload.byteLength;
    }
    this.outbox.push(frame);
    if (!this.#woken) {
      this.#woken = true;
      this.#wake();
    }
  }

  /** Nothing more will come in or go out: the carrier may close. */
  get finished() {
    return this.readingDone && this.calls.size === 0 && this.outbox.length === 0;
  }

  /** A decoded message from the host: a batch of frames. */
  handle(frames) {
    if (!Array.isArray(frames)) {
      log.warning("ignoring a malformed batch (not an array of frames)");
      return;
    }
    for (const frame of frames) {
      let parsed;
      try {
        parsed = w.parseFromHost(frame);
      } catch (violation) {
        this.#malformed(frame, violation);
        continue;
      }
      this.#handleOne(parsed);
    }
  }

  /**
   * The host is the one that acts on violations (it replaces a worker that sends one). A
   * worker answers what it can and serves on: a CALL or BATCH it cannot read gets an ERROR
   * when its id is readable, so its caller is not left waiting, and a host call whose answer
   * cannot be read fails.
   */
  #malformed(frame, violation) {
    log.warning(`ignoring a malformed frame: ${violation.message}`);
    if (!Array.isArray(frame) || frame.length < 2) return;
    const [kind, id] = frame;
    const readable = (typeof id === "number" && Number.isInteger(id) && id >= 0) || (typeof id === "bigint" && id >= 0n);
    if (!readable) return;
    if (w.CALL_KINDS.has(kind)) {
      if (!this.calls.has(id)) this.emit(w.error(id, "ProtocolError", wire(violation.message), w.KIND_PROTOCOL));
    } else if (kind === w.HOST_RESULT || kind === w.HOST_ERROR) {
      this.host.fail(id, `the host's answer did not parse: ${violation.message}`);
    }
  }

  #handleOne(frame) {
    switch (frame.frameKind) {
      case w.CALL:
      case w.BATCH:
        this.#start(frame);
        break;
      case w.CANCEL:
        this.calls.get(frame.id)?.cancel(); // withdrawn at once if it has not started
        break;
      case w.REVOKE: {
        const call = this.calls.get(frame.id);
        if (call !== undefined) this.runtime.withdraw(call); // a call that began just goes on
        break;
      }
      case w.CREDIT:
        this.calls.get(frame.id)?.addCredit(frame.n);
        break;
      case w.SESSION_END:
        this.runtime.endSession(frame.session_id);
        break;
      case w.PING:
        this.emit(w.pong(frame.seq, rss()));
        break;
      case w.UNMAPPED_RESULTS:
        break; // this worker makes no shared-memory segments: nothing to reuse
      case w.HELLO:
        this.#hello(frame);
        break;
      case w.HOST_RESULT:
        this.host.onResult(frame);
        break;
      case w.HOST_ERROR:
        this.host.onError(frame);
        break;
      default:
        throw new Error(`frame kind ${frame.frameKind} parsed but not handled`);
    }
  }

  /** HELLO: what the host serves (the lane answers it with WELCOME; Connect does not). */
  #hello(frame) {
    this.hostCapabilities = new Set(frame.capabilities ?? []);
    this.host.capabilities = this.hostCapabilities;
    if (this.hostCapabilities.has(w.CAP_EVENTS) && this.eventRoute === null) {
      this.eventRoute = (event) => this.emit(event);
      outlet.bind(this.eventRoute); // events outside calls go here too
    }
  }

  /** A CALL or a BATCH: one call id, started by the runtime (or answered with ERROR). */
  #start(frame) {
    if (this.calls.has(frame.id)) {
      this.emit(w.error(frame.id, "ProtocolError", "duplicate call id", w.KIND_PROTOCOL));
      return;
    }
    const borrowed = frame.meta?.borrow === true;
    const link = borrowed ? { ...this.#link, borrowed } : this.#link;
    // The runtime registers the call here (link.register) before its tool runs.
    if (frame.frameKind === w.CALL) this.runtime.startCall(frame, link);
    else this.runtime.startBatch(frame, link);
  }

  #callDone(id) {
    this.calls.delete(id);
    this.host.callCancelled(id); // host calls its tool left open are given up
    if (this.readingDone && this.calls.size === 0 && !this.#woken) {
      this.#woken = true;
      this.#wake(); // the carrier may close now
    }
  }

  /**
   * The messages to send now, each one msgpack array of frames.
   * @throws {Error} a frame that cannot be encoded: a bug of this worker; the carrier
   *   closes the connection rather than drop work silently
   */
  takeBatches() {
    this.#woken = false;
    this.#run = null; // sent: no chunk joins it now
    const frames = this.outbox;
    this.outbox = [];
    return w.splitBatches(frames, w.payloadSize).map((batch) => pack(batch));
  }

  /** The connection is over: every call is cancelled, every host call fails. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.readingDone = true;
    if (this.eventRoute !== null) outlet.unbind(this.eventRoute);
    for (const call of [...this.calls.values()]) call.cancel();
    this.host.close();
    this.outbox = [];
  }
}

/** This process's resident memory in bytes, sent with each PONG. */
function rss() {
  try {
    return process.memoryUsage.rss();
  } catch {
    return null;
  }
}
