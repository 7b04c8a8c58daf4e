// Sending a connection's frames on a carrier, in batches.
//
// Frames emitted during one turn of the event loop leave together: the first one schedules a
// flush (setImmediate, after the loop's I/O callbacks), and everything queued by then goes
// in one write. While the carrier cannot take more (its buffer is full, a write is waiting
// for 'drain'), frames keep piling up and leave together in the next write.

import { log } from "./log.mjs";

export class Outflow {
  #conn = null;
  #write;
  #finish;
  #abort;
  #scheduled = false;
  #blocked = false;
  #done = false;

  /**
   * @param {object} carrier
   * @param {(batches: Uint8Array[], resume: () => void) => boolean} carrier.write sends the
   *   messages; false when the carrier is full (it calls `resume` once it can take more)
   * @param {() => void} carrier.finish nothing more to send, nothing more to come: close
   * @param {(error: Error) => void} carrier.abort sending failed: close the connection now
   */
  constructor({ write, finish, abort }) {
    this.#write = write;
    this.#finish = finish;
    this.#abort = abort;
  }

  /** The connection whose outbox this sends (set once, right after both exist). */
  attach(conn) {
    this.#conn = conn;
  }

  /** The connection has frames, or may have finished: send them soon. */
  wake = () => {
    if (this.#scheduled || this.#blocked || this.#done) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  };

  #flush = () => {
    this.#scheduled = false;
    if (this.#done || this.#blocked) return;
    const conn = this.#conn;
    let batches;
    try {
      batches = conn.takeBatches();
    } catch (error) {
      this.#fail("a batch of frames could not be encoded", error);
      return;
    }
    if (batches.length > 0) {
      let flowing;
      try {
        flowing = this.#write(batches, this.#resume);
      } catch (error) {
        this.#fail("writing to the host failed", error);
        return;
      }
      if (!flowing) {
        this.#blocked = true;
        return;
      }
    }
    if (conn.outbox.length > 0) this.wake();
    else if (conn.finished) {
      this.stop();
      this.#finish();
    }
  };

  #resume = () => {
    this.#blocked = false;
    if (this.#conn.outbox.length > 0 || this.#conn.finished) this.wake();
  };

  /** What was to be sent is lost: close the connection, so its calls are not left hanging. */
  #fail(what, error) {
    log.error(`${what}; closing the connection`, error);
    this.stop();
    this.#abort(error);
  }

  /** Send nothing more (the carrier is closing). */
  stop() {
    this.#done = true;
  }
}
