// A fake host on the local lane: sends batches of frames, and lets a test wait for the
// frames the worker sends (each one parsed as the real host parses it).

import net from "node:net";
import { encode } from "../../src/codec.mjs";
import * as w from "../../src/frames.mjs";
import { MessageReader, frameMessage } from "../../src/messages.mjs";
import { pack, unpack } from "../../src/msgpack.mjs";
import { WAIT_MS, within } from "./worker.mjs";

export class LaneHost {
  #waiters = [];

  constructor(socket) {
    this.socket = socket;
    this.frames = []; // received and not yet taken by `next`
    this.messages = []; // every message received: its frames, as sent
    this.violations = [];
    const reader = new MessageReader(1 << 30);
    socket.on("data", (chunk) => {
      for (const message of reader.push(chunk)) {
        const frames = unpack(message);
        this.messages.push(frames);
        for (const frame of frames) {
          try {
            w.parseFromWorker(frame);
          } catch (error) {
            this.violations.push(`${error.message}: ${JSON.stringify(frame)}`);
          }
          this.frames.push(frame);
        }
        this.#check();
      }
    });
    this.closed = new Promise((resolve) => socket.once("close", resolve));
    socket.on("error", () => {});
  }

  /** Connect to a worker's lane (no handshake yet). */
  static connect(path) {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path, () => resolve(new LaneHost(socket)));
      socket.once("error", reject);
    });
  }

  /** Connect and shake hands: HELLO with `capabilities`; resolves to the WELCOME map. */
  static async open(path, capabilities = [w.CAP_HOST_TOOLS, w.CAP_EVENTS]) {
    const host = await LaneHost.connect(path);
    host.send(w.hello(capabilities));
    const welcome = await host.next((f) => f[0] === w.WELCOME);
    host.describe = welcome[1];
    return host;
  }

  /** Send one message holding `frames`. */
  send(...frames) {
    this.sendRaw(pack(frames));
  }

  /** Send one message holding `payload` as it is. */
  sendRaw(payload) {
    for (const part of frameMessage(payload)) this.socket.write(part);
  }

  /** Send a CALL of `tool` with `args` (a value, encoded here). */
  call(id, tool, args = {}, { sessionId = null, deadline = null, window = 0, meta = null } = {}) {
    this.send(w.call(id, tool, encode(args), sessionId, deadline, window, meta));
  }

  /** The first received frame `match` accepts (taken off the list), waiting for it. */
  next(match = () => true, what = "a frame", ms = WAIT_MS) {
    const found = this.#take(match);
    if (found !== undefined) return Promise.resolve(found);
    return within(
      new Promise((resolve) => this.#waiters.push({ match, resolve })),
      `${what} (received so far: ${JSON.stringify(this.frames.map((f) => f.slice(0, 2)))})`,
      ms,
    );
  }

  /** The final frame (RESULT, END or ERROR) of call `id`. */
  final(id, ms = WAIT_MS) {
    return this.next((f) => [w.RESULT, w.END, w.ERROR].includes(f[0]) && f[1] === id, `the final frame of call ${id}`, ms);
  }

  /** Frames of call `id` of kind `kind`, taken, as they are now. */
  taken(kind, id) {
    const out = this.frames.filter((f) => f[0] === kind && f[1] === id);
    this.frames = this.frames.filter((f) => !(f[0] === kind && f[1] === id));
    return out;
  }

  #take(match) {
    const i = this.frames.findIndex(match);
    if (i < 0) return undefined;
    return this.frames.splice(i, 1)[0];
  }

  #check() {
    for (const waiter of [...this.#waiters]) {
      const found = this.#take(waiter.match);
      if (found !== undefined) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(found);
      }
    }
  }

  close() {
    this.socket.destroy();
  }
}

/** The decoded payload of a RESULT or CHUNK frame. */
export function valueOf(frame) {
  return unpack(frame[2]);
}
