// The chaos suite's adapter for Node.js workers: the twin of chaos.py (same tools, same
// parameters). Every run of a call appends its token to $SNAKEPIT_CHAOS_LOG (one short
// O_APPEND write: atomic), so the suite can count calls that ran twice.
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

function ran(token) {
  fs.appendFileSync(process.env.SNAKEPIT_CHAOS_LOG, `${token}\n`);
}

const work = {
  params: {
    token: { type: "str", required: true },
    seconds: { type: "float", required: true },
  },
};
const numbers = {
  streaming: true,
  params: { token: { type: "str", required: true }, n: { type: "int", required: true } },
};

export default class Chaos {
  static tools = {
    work,
    awork: work,
    via_host: work,
    avia_host: work,
    numbers,
    anumbers: numbers,
    incr: { params: { token: { type: "str", required: true } } },
  };

  async initialize() {
    this.counters = new Map();
  }

  async work({ token, seconds }, ctx) {
    ran(token);
    await sleep(seconds * 1000, undefined, { signal: ctx.signal });
    return token;
  }

  async awork(args, ctx) {
    return this.work(args, ctx);
  }

  async via_host({ token, seconds }, ctx) {
    ran(token);
    return String(await ctx.callHostTool("echo_back", { token, seconds }));
  }

  async avia_host(args, ctx) {
    return this.via_host(args, ctx);
  }

  async *numbers({ token, n }, ctx) {
    ran(token);
    for (let i = 0; i < n; i++) {
      if (i % 10 === 0) await sleep(1, undefined, { signal: ctx.signal });
      yield i;
    }
  }

  async *anumbers(args, ctx) {
    yield* this.numbers(args, ctx);
  }

  async incr({ token }, ctx) {
    ran(token);
    const key = ctx.sessionId ?? "";
    const count = (this.counters.get(key) ?? 0) + 1;
    this.counters.set(key, count);
    return count;
  }

  async onSessionEnd(sessionId) {
    this.counters.delete(sessionId);
  }
}
