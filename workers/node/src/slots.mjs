// One limit on the calls a worker runs at once, whatever their kind: its capacity.
//
// Calls beyond it (the host sends a few ahead: prefetch) wait in one queue, in arrival
// order, and a freed slot goes to the first of them. A CANCEL or REVOKE withdraws a waiting
// call (it never starts); it stays in the queue, skipped when it comes first. A borrowed call
// (nested in a host tool whose call waits in this worker) takes no slot: it runs beyond the
// limit, since the slot of the call it serves is idle until it ends.
//
// Invariant: a slot is free only while no call waits.

export const QUEUED = "queued";
export const RUNNING = "running";
export const WITHDRAWN = "withdrawn";

/** A first-in first-out queue with O(1) shift. */
class Queue {
  #items = [];
  #head = 0;

  get length() {
    return this.#items.length - this.#head;
  }

  push(item) {
    this.#items.push(item);
  }

  shift() {
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

export class Slots {
  #free;
  #waiting = new Queue();

  constructor(capacity) {
    this.capacity = capacity;
    this.#free = capacity;
  }

  /** `call` arrived: true if a slot is its now, false if it waits for one. */
  take(call) {
    if (this.#free > 0 && this.#waiting.length === 0) {
      this.#free -= 1;
      return true;
    }
    this.#waiting.push(call);
    return false;
  }

  /** A call that held a slot ended: the first waiting call still queued gets it (returned), or it is freed. */
  giveBack() {
    while (this.#waiting.length) {
      const call = this.#waiting.shift();
      if (call.state === QUEUED) return call;
    }
    this.#free += 1;
    return null;
  }

  /** Slots taken now (borrowed calls hold none). */
  get running() {
    return this.capacity - this.#free;
  }
}

/** A first-come first-served lock (an exclusive tool's), whose waiters can give up. */
export class Mutex {
  #locked = false;
  #waiters = new Queue();

  /** Resolves once the lock is held; rejects with `signal.reason` if it aborts first. */
  acquire(signal) {
    if (!this.#locked) {
      this.#locked = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = { resolve, done: false };
      const onAbort = () => {
        if (waiter.done) return;
        waiter.done = true; // skipped when its turn comes
        reject(signal.reason);
      };
      waiter.resolve = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  release() {
    while (this.#waiters.length) {
      const waiter = this.#waiters.shift();
      if (!waiter.done) {
        waiter.done = true;
        waiter.resolve();
        return;
      }
    }
    this.#locked = false;
  }
}
