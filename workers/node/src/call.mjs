// One call in progress: its id, tool, context, state and (for streams) credit.

import { performance } from "node:perf_hooks";
import { ToolContext } from "./context.mjs";
import { QUEUED } from "./slots.mjs";

/** The reason a cancelled call's signal carries. */
function cancelReason() {
  return new DOMException("the host cancelled the call", "AbortError");
}

export class RunningCall {
  #wake = null; // resolves a stream's wait for credit

  /**
   * @param {object} options
   * @param {number} options.id
   * @param {object} options.info the tool (adapter.mjs's ToolInfo, or a batch's)
   * @param {() => any} options.run runs the tool once the call has a slot
   * @param {(frame: any[]) => void} options.sink where its frames go
   * @param {((id: number) => void)|null} options.onDone told once its final frame was sent
   * @param {boolean} options.borrowed runs beyond capacity (see slots.mjs)
   * @param {number} options.credit a stream's first credit
   * @param {object} options.state the CallState its context reads (callState below)
   */
  constructor({ id, info, run, sink, onDone = null, borrowed = false, credit = 0, state }) {
    this.id = id;
    this.info = info;
    this.run = run;
    this.sink = sink;
    this.onDone = onDone;
    this.borrowed = borrowed;
    this.credit = credit;
    this.state = QUEUED; // see slots.mjs
    this.cancelRequested = false;
    this.context = state; // the CallState its ToolContext reads
    this.ctx = new ToolContext(state);
    this.withdraw = null; // set by the runtime: answers a call that has not started
  }

  /** The host cancelled it: withdraw it if it has not started, else tell its code. */
  cancel() {
    if (this.cancelRequested) return;
    this.cancelRequested = true;
    if (this.withdraw?.(this)) return;
    this.context.host?.callCancelled(this.id); // its waiting host calls fail, HOST_CANCEL sent
    this.context.controller.abort(cancelReason());
    this.#notify(); // a stream waiting for credit notices the cancel
  }

  /** CREDIT: a stream may send `n` more chunks. */
  addCredit(n) {
    this.credit += Number(n);
    this.#notify();
  }

  /** Resolves when credit arrives or the call is cancelled. */
  waitForCredit() {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #notify() {
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      wake();
    }
  }
}

/**
 * The state a call's ToolContext reads (see context.mjs's CallState).
 * `deadline`: seconds the call may still run, as the CALL frame said, or null.
 */
export function callState({ id, sessionId, deadline, host, route, progress }) {
  return {
    id,
    sessionId,
    deadline: deadline === null || deadline === undefined ? null : performance.now() + Number(deadline) * 1000,
    controller: new AbortController(),
    finished: false,
    host,
    route,
    progress,
  };
}
