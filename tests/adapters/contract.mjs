// The contract suite's adapter for the Node.js worker: the twin of contract.py.
//
// Both declare the same tools with the same parameters and behave the same, so one test
// runs against either runtime. Keep them in step: a tool added there is added here.
// Node's standard library only: an adapter is a plain file, run from any directory.

import { randomFillSync } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

class ValueError extends Error {
  static {
    this.prototype.name = "ValueError";
  }
}

/** Resolves when `signal` aborts (never, if it does not). */
function aborted(signal) {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

export default class Contract {
  static tools = {
    echo: { description: "Return the value unchanged", params: { value: { type: "any", default: null } } },
    add: { params: { a: { type: "int" }, b: { type: "int", default: 1 } } },
    fail: { params: { message: { type: "str", default: "boom" } } },
    sleep: { params: { seconds: { type: "float" } } },
    pid: {},
    crash: { params: { code: { type: "int", default: 1 } } },
    big: { params: { size: { type: "int" } } },
    unencodable: {},
    context: {},
    steps: { params: { n: { type: "int" } } },
    count: { streaming: true, params: { n: { type: "int" } } },
    ticks: { streaming: true, params: { n: { type: "int" } } },
    stall: {
      streaming: true,
      description: "Yield ``first``, then wait until closed or cancelled.",
      params: { first: { type: "int" } },
    },
    raise_after: { streaming: true, params: { n: { type: "int" } } },
    incr: {},
    ended: {},
    block: {
      description: "Block the worker's event loop (a tool that never yields): heartbeats stop.",
      params: { seconds: { type: "float" } },
    },
    grow: {
      description: "Keep ``megabytes`` more of touched memory alive in this worker.",
      params: { megabytes: { type: "int" } },
    },
    host: {
      description: "Call the host tool ``name``; its error comes back as a map, not raised.",
      params: { name: { type: "str" }, args: { type: "dict?", required: true } },
    },
    host_list: {},
    emit: { params: { name: { type: "str" }, value: { type: "float" } } },
  };

  async initialize() {
    this.counts = new Map();
    this.endedSessions = [];
    this.leak = [];
  }

  async echo({ value }) {
    return value;
  }

  async add({ a, b }) {
    return a + b;
  }

  async fail({ message }) {
    throw new ValueError(message);
  }

  async sleep({ seconds }, ctx) {
    await sleep(seconds * 1000, undefined, { signal: ctx.signal });
    return "slept";
  }

  async pid() {
    return process.pid;
  }

  async crash({ code }) {
    process.exit(code);
  }

  async big({ size }) {
    return new Uint8Array(size).fill(0x78); // b"x" * size
  }

  async unencodable() {
    return () => {};
  }

  async context(args, ctx) {
    return { request_id: ctx.requestId, session_id: ctx.sessionId, remaining: ctx.timeRemaining() };
  }

  async steps({ n }, ctx) {
    for (let i = 0; i < n; i++) ctx.progress(i + 1, n, `step ${i + 1}`);
    return n;
  }

  async *count({ n }) {
    for (let i = 0; i < n; i++) yield i;
  }

  async *ticks({ n }, ctx) {
    for (let i = 0; i < n; i++) {
      ctx.progress(i + 1, n);
      yield i;
    }
  }

  async *stall({ first }, ctx) {
    yield first;
    await aborted(ctx.signal);
  }

  async *raise_after({ n }) {
    for (let i = 0; i < n; i++) yield i;
    throw new ValueError(`after ${n}`);
  }

  async incr(args, ctx) {
    const key = ctx.sessionId ?? "-";
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    return { count: this.counts.get(key), pid: process.pid, session: ctx.sessionId };
  }

  async ended() {
    return this.endedSessions;
  }

  async block({ seconds }) {
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      // The fault this tool reproduces: the event loop never gets a turn.
    }
    return "done";
  }

  async grow({ megabytes }) {
    this.leak.push(randomFillSync(Buffer.allocUnsafe(megabytes * 2 ** 20)));
    return this.leak.reduce((total, b) => total + b.length, 0);
  }

  async host({ name, args }, ctx) {
    try {
      return { ok: await ctx.callHostTool(name, args) };
    } catch (err) {
      return { error: err.name, kind: err.kind ?? null };
    }
  }

  async host_list(args, ctx) {
    return Object.keys(await ctx.hostTools()).sort();
  }

  async emit({ name, value }, ctx) {
    ctx.emit(name, { value }, { source: "contract" });
    return null;
  }

  async onSessionEnd(sessionId) {
    this.endedSessions.push(sessionId);
    this.counts.delete(sessionId);
  }
}
