// The small parts on their own: sending in batches (outflow), reading lane messages,
// slots and the exclusive lock, argument checks.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkArguments, collectTools } from "../src/adapter.mjs";
import { AdapterLoadError } from "../src/errors.mjs";
import * as w from "../src/frames.mjs";
import { MessageReader, frameMessage } from "../src/messages.mjs";
import { unpack } from "../src/msgpack.mjs";
import { Outflow } from "../src/outflow.mjs";
import { Mutex, QUEUED, Slots, WITHDRAWN } from "../src/slots.mjs";

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A connection as the outflow sees it: an outbox, takeBatches, finished. */
function fakeConnection() {
  const conn = {
    outbox: [],
    finished: false,
    takeBatches() {
      const frames = this.outbox;
      this.outbox = [];
      return w.splitBatches(frames).map((batch) => batch);
    },
  };
  return conn;
}

function carrier({ flowing = true, throws = null } = {}) {
  const log = { writes: [], finished: 0, aborted: [], resume: null };
  const outflow = new Outflow({
    write: (batches, resume) => {
      if (throws) throw throws;
      log.writes.push(batches);
      log.resume = resume;
      return typeof flowing === "function" ? flowing() : flowing;
    },
    finish: () => log.finished++,
    abort: (error) => log.aborted.push(error),
  });
  return { outflow, log };
}

describe("outflow", () => {
  test("frames emitted in one turn leave in one write", async () => {
    const conn = fakeConnection();
    const { outflow, log } = carrier();
    outflow.attach(conn);
    for (let i = 0; i < 5; i++) {
      conn.outbox.push(w.end(i));
      outflow.wake();
    }
    await turn();
    assert.equal(log.writes.length, 1);
    assert.deepEqual(log.writes[0], [[0, 1, 2, 3, 4].map(w.end)]);
  });

  test("while the carrier is full, frames pile up and leave together once it drains", async () => {
    const conn = fakeConnection();
    let full = true;
    const { outflow, log } = carrier({ flowing: () => !full });
    outflow.attach(conn);
    conn.outbox.push(w.end(1));
    outflow.wake();
    await turn();
    for (let i = 2; i <= 4; i++) {
      conn.outbox.push(w.end(i));
      outflow.wake();
      await turn();
    }
    assert.equal(log.writes.length, 1); // blocked: nothing more written
    full = false;
    log.resume();
    await turn();
    assert.deepEqual(log.writes[1], [[2, 3, 4].map(w.end)]);
  });

  test("a finished connection is closed once its outbox is sent", async () => {
    const conn = fakeConnection();
    const { outflow, log } = carrier();
    outflow.attach(conn);
    conn.outbox.push(w.end(1));
    conn.finished = true;
    outflow.wake();
    await turn();
    assert.equal(log.finished, 1);
    outflow.wake(); // after: nothing more
    await turn();
    assert.equal(log.writes.length, 1);
  });

  test("a batch that cannot be encoded, or a write that throws, closes the connection", async () => {
    const conn = fakeConnection();
    conn.takeBatches = () => {
      throw new Error("cannot encode");
    };
    const { outflow, log } = carrier();
    outflow.attach(conn);
    outflow.wake();
    await turn();
    assert.equal(log.aborted[0].message, "cannot encode");

    const other = fakeConnection();
    const broken = carrier({ throws: new Error("EPIPE") });
    broken.outflow.attach(other);
    other.outbox.push(w.end(1));
    broken.outflow.wake();
    await turn();
    assert.equal(broken.log.aborted[0].message, "EPIPE");
    other.outbox.push(w.end(2));
    broken.outflow.wake(); // stopped: it sends nothing more
    await turn();
    assert.equal(broken.log.aborted.length, 1);
  });
});

describe("lane messages", () => {
  const message = (payload) => Buffer.concat(frameMessage(payload));

  test("split anywhere, joined in order", () => {
    const bytes = Buffer.concat([message(Buffer.from([0x91, 0x01])), message(Buffer.alloc(0)), message(Buffer.from("abc"))]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const reader = new MessageReader(100);
      const got = [...reader.push(bytes.subarray(0, cut)), ...reader.push(bytes.subarray(cut))];
      assert.deepEqual(got.map((b) => b.toString("hex")), ["9101", "", "616263"]);
    }
    const reader = new MessageReader(100);
    const got = [];
    for (const byte of bytes) got.push(...reader.push(Buffer.from([byte])));
    assert.deepEqual(unpack(got[0]), [1]);
  });

  test("a message over the limit is refused as soon as its header is in; those before it count", () => {
    const reader = new MessageReader(10);
    const [header] = frameMessage(Buffer.alloc(11));
    const got = reader.push(Buffer.concat([message(Buffer.from([0xc0])), header]));
    assert.deepEqual(got.map((b) => b.toString("hex")), ["c0"]);
    assert.equal(reader.refused, 11);
    assert.deepEqual(reader.push(message(Buffer.from([0xc0]))), []); // nothing more is read
  });
});

describe("slots and the exclusive lock", () => {
  test("calls beyond capacity wait in arrival order; withdrawn ones are skipped", () => {
    const slots = new Slots(1);
    const calls = [1, 2, 3].map((id) => ({ id, state: QUEUED }));
    assert.equal(slots.take(calls[0]), true);
    assert.equal(slots.take(calls[1]), false);
    assert.equal(slots.take(calls[2]), false);
    calls[1].state = WITHDRAWN;
    assert.equal(slots.giveBack(), calls[2]);
    assert.equal(slots.running, 1);
    assert.equal(slots.giveBack(), null);
    assert.equal(slots.running, 0);
  });

  test("the lock is first come, first served; a waiter whose signal aborts gives up its turn", async () => {
    const mutex = new Mutex();
    const order = [];
    await mutex.acquire();
    const controller = new AbortController();
    const second = mutex.acquire(controller.signal).then(() => order.push("second"), (e) => order.push(e.name));
    const third = mutex.acquire().then(() => order.push("third"));
    controller.abort(new DOMException("cancelled", "AbortError"));
    await second;
    mutex.release();
    await third;
    assert.deepEqual(order, ["AbortError", "third"]);
  });
});

describe("declarations and arguments", () => {
  class Adapter {
    static tools = {
      t: { params: { a: { type: "int" }, b: { type: "str?", default: null } } },
      any: { acceptsExtra: true },
    };
    t() {}
    any() {}
  }

  test("missing, unknown and ill-typed argument maps are named", () => {
    const tools = collectTools(Adapter);
    const t = tools.get("t");
    assert.equal(checkArguments(t, { a: 1 }), null);
    assert.deepEqual(checkArguments(t, {}), ["a", "missing required argument"]);
    assert.deepEqual(checkArguments(t, { a: 1, c: 2 }), ["c", "unexpected argument; the tool takes ['a', 'b']"]);
    assert.deepEqual(checkArguments(t, null), [null, "expected a dict of keyword arguments, got NoneType"]);
    assert.equal(checkArguments(tools.get("any"), { whatever: 1 }), null);
  });

  test("declarations the worker cannot serve are refused", () => {
    const refused = [
      [{ tools: { t: { params: { a: { type: "int", required: true, default: 1 } } } } }, /has no default/],
      [{ tools: { t: { params: { a: { type: "any?" } } } } }, /type 'any\?' is not one of/],
      [{ tools: { t: { streaming: "yes" } } }, /streaming must be true or false/],
      [{ tools: { t: { params: [] } } }, /params must be a plain object/],
      [{ tools: { initialize: {} } }, /may not be named 'initialize'/],
      [{ tools: [] }, /static tools must be a plain object/],
    ];
    for (const [statics, pattern] of refused) {
      const cls = class {
        t() {}
        initialize() {}
      };
      Object.assign(cls, statics);
      assert.throws(() => collectTools(cls), (e) => e instanceof AdapterLoadError && pattern.test(e.message));
    }
    const generator = class {
      static tools = { g: { streaming: false } };
      async *g() {}
    };
    assert.throws(() => collectTools(generator), /streaming: false, but its method is a generator/);
  });
});
