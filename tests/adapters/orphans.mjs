// The Node.js twin of orphans.py's Marked, for --orphan-timeout: its long call leaves a mark
// when it starts and when it is cancelled, so a test can tell a call cancelled by a lost
// host from one that ran on. Node's standard library only.

import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Resolves when `signal` aborts (never, if it does not). */
function aborted(signal) {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

export default class Marked {
  static tools = {
    add: { params: { a: { type: "int" }, b: { type: "int", default: 1 } } },
    pid: {},
    asleep: { params: { seconds: { type: "float" } } },
    marked: { params: { marker: { type: "str" } } },
  };

  add({ a, b }) {
    return a + b;
  }

  pid() {
    return process.pid;
  }

  async asleep({ seconds }, ctx) {
    await sleep(seconds * 1000, undefined, { signal: ctx.signal });
    return "slept";
  }

  /** Write "started" to `marker`, wait until cancelled, then write "cancelled". */
  async marked({ marker }, ctx) {
    writeFileSync(marker, "started");
    await aborted(ctx.signal);
    writeFileSync(marker, "cancelled");
    throw new Error("cancelled");
  }
}
