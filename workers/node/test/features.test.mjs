// What the contract adapter does not reach: session variables, the host proxy, spans,
// exclusive tools, cancel of a tool that ignores it, declared defaults, extra arguments,
// sync tools and generators, events from initialize, a context used after its call.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { decode, encode } from "../src/codec.mjs";
import * as w from "../src/frames.mjs";
import { LaneHost, valueOf } from "./helpers/lane-host.mjs";
import { FIXTURES, startWorker } from "./helpers/worker.mjs";

async function roundTrip(host, seq) {
  host.send(w.ping(seq));
  return host.next((f) => f[0] === w.PONG && f[1] === seq, `PONG ${seq}`);
}

describe("the features adapter", () => {
  let worker;
  let host;
  before(async () => {
    worker = await startWorker({ adapter: join(FIXTURES, "features.mjs"), args: ["--capacity", "2"] });
    host = await LaneHost.open(worker.lane);
  });
  after(async () => {
    host?.close();
    await worker?.kill();
    assert.deepEqual(host?.violations ?? [], []);
  });

  test("an event emitted in initialize waits for the first host that takes events", async () => {
    const event = await host.next((f) => f[0] === w.EVENT && f[2] === "features.ready");
    assert.deepEqual(event.slice(1, 5), [null, "features.ready", { tools: 12 }, { where: "initialize" }]);
    assert.equal(host.describe.thread_safe, true);
  });

  test("session variables go through the reserved host calls", async () => {
    host.call(1, "vars", { name: "x", value: 5 }, { sessionId: "s" });
    const set = await host.next((f) => f[0] === w.HOST_CALL);
    assert.deepEqual([set[3], decode(set[4])], ["snakepit.set_variable", { name: "x", value: 5 }]);
    host.send(w.hostResult(set[1], encode({ value: 5 })));
    const get = await host.next((f) => f[0] === w.HOST_CALL);
    assert.deepEqual([get[3], decode(get[4])], ["snakepit.get_variable", { name: "x" }]);
    host.send(w.hostResult(get[1], encode({ value: 5 })));
    assert.equal(valueOf(await host.final(1)), 5);

    host.call(2, "vars", { name: "y" });
    const missing = await host.next((f) => f[0] === w.HOST_CALL);
    host.send(w.hostResult(missing[1], encode({ error: { name: "y", constraint: "", message: "no variable 'y'" } })));
    const error = await host.final(2);
    assert.deepEqual([error[2], error[3], error[5]], ["InvalidVariable", "no variable 'y'", "remote"]);
  });

  test("ctx.host.<name>(args) calls a host tool", async () => {
    host.call(3, "proxy", { key: 7 });
    const call = await host.next((f) => f[0] === w.HOST_CALL);
    assert.deepEqual([call[2], call[3], decode(call[4])], [3, "lookup", { key: 7 }]);
    host.send(w.hostResult(call[1], encode("seven")));
    assert.equal(valueOf(await host.final(3)), "seven");
    host.call(4, "tools");
    const listing = await host.next((f) => f[0] === w.HOST_TOOLS);
    host.send(w.hostResult(listing[1], encode([{ name: "lookup", description: "d", params: [] }])));
    assert.deepEqual(valueOf(await host.final(4)), { lookup: { name: "lookup", description: "d", params: [] } });
  });

  test("a span sends .stop, and .exception first when its function throws", async () => {
    host.call(5, "spanned");
    assert.equal(valueOf(await host.final(5)), "spanned");
    const stop = await host.next((f) => f[0] === w.EVENT && f[1] === 5);
    assert.equal(stop[2], "work.stop");
    assert.ok(stop[3].duration >= 0);
    assert.deepEqual(stop[4], { model: "small" });

    host.call(6, "spanned", { fail: true });
    const error = await host.final(6);
    assert.deepEqual([error[2], error[3]], ["RangeError", "span failed"]);
    const first = await host.next((f) => f[0] === w.EVENT && f[1] === 6);
    const second = await host.next((f) => f[0] === w.EVENT && f[1] === 6);
    assert.deepEqual([first[2], first[4]], ["work.exception", { model: "small", error_type: "RangeError" }]);
    assert.equal(second[2], "work.stop");
    assert.equal(first[3].duration, second[3].duration);
  });

  test("an exclusive tool runs one call at a time", async () => {
    host.call(7, "gate", { ms: 30 });
    host.call(8, "gate", { ms: 30 });
    assert.equal(valueOf(await host.final(7)), 1); // calls of it inside at once
    assert.equal(valueOf(await host.final(8)), 1);
    host.call(9, "gate", { ms: 60_000 });
    host.call(10, "gate", { ms: 60_000 });
    await roundTrip(host, 11);
    host.send(w.cancel(10)); // it waits for the lock, holding its slot: it started
    assert.deepEqual((await host.final(10)).slice(2), ["CancelledError", "call cancelled", "", "cancelled"]);
    host.send(w.cancel(9));
    assert.equal((await host.final(9))[5], "cancelled");
  });

  test("a cancelled tool that ignores its signal ends, and frees its slot, when its code does", async () => {
    host.call(12, "stubborn", { ms: 300 });
    host.call(13, "stubborn", { ms: 300 });
    host.call(14, "plain", { x: 2 }); // waits for a slot
    await roundTrip(host, 15);
    host.send(w.cancel(12));
    const cancelled = await host.final(12);
    assert.equal(cancelled[5], "cancelled");
    const plain = await host.final(14);
    assert.equal(valueOf(plain), 4);
    const order = host.messages.flat().filter((f) => f[1] === 12 || f[1] === 14).map((f) => f[1]);
    assert.deepEqual(order, [12, 14]); // 14 had no slot before 12 ended
    assert.equal(valueOf(await host.final(13)), "finished anyway");
  });

  test("declared defaults are filled in, fresh for each call; acceptsExtra takes any argument", async () => {
    host.call(16, "defaults");
    host.call(17, "defaults", { n: 3 });
    assert.deepEqual(valueOf(await host.final(16)), { list: [1], n: null });
    assert.deepEqual(valueOf(await host.final(17)), { list: [1], n: 3 });
    host.call(18, "extra", { a: 1, z: "extra" });
    assert.deepEqual(valueOf(await host.final(18)), { a: 1, z: "extra" });
    host.call(19, "extra", { z: 1 });
    assert.equal((await host.final(19))[5], "invalid_arguments");
    const tools = Object.fromEntries(host.describe.tools.map((t) => [t.name, t]));
    assert.equal(tools.extra.accepts_extra, true);
    assert.deepEqual(tools.defaults.params[1], { name: "n", type: "int?", required: false, default: Uint8Array.from([0xc0]) });
  });

  test("sync tools, sync generators and methods returning an iterable", async () => {
    host.call(20, "plain", { x: 21 });
    assert.equal(valueOf(await host.final(20)), 42);
    host.call(21, "letters", { word: "abc" }, { window: 8 });
    assert.deepEqual(await host.final(21), [w.END, 21]);
    assert.deepEqual(host.taken(w.CHUNK, 21).map(valueOf), ["a", "b", "c"]);
    host.call(22, "iterable", { n: 3 }, { window: 8 });
    await host.final(22);
    assert.deepEqual(host.taken(w.CHUNK, 22).map(valueOf), [0, 10, 20]);
    const tools = Object.fromEntries(host.describe.tools.map((t) => [t.name, t]));
    assert.equal(tools.letters.streaming, true);
    assert.equal(tools.plain.streaming, false);
  });

  test("text with a lone surrogate never reaches a batch: the call fails, the worker serves on", async () => {
    host.call(30, "surrogates", { where: "error" });
    assert.equal((await host.final(30))[3], "bad \ufffd text");
    host.call(31, "surrogates", { where: "progress" });
    assert.equal(valueOf(await host.final(31)), "ok");
    assert.deepEqual(host.taken(w.PROGRESS, 31), [[w.PROGRESS, 31, 1, 2, "bad \ufffd text"]]);
    host.call(32, "surrogates", { where: "event" });
    assert.deepEqual((await host.final(32)).slice(2, 3), ["TypeError"]);
    host.call(33, "surrogates", { where: "host" });
    assert.deepEqual((await host.final(33)).slice(2, 3), ["TypeError"]);
    host.call(34, "surrogates", { where: "result" });
    const result = await host.final(34);
    assert.deepEqual([result[2], result[5]], ["SerializationError", "serialization"]);
    assert.equal((await roundTrip(host, 35))[1], 35);
  });

  test("a context used after its call ended: progress is dropped, events still go", async () => {
    host.call(23, "later");
    assert.equal(valueOf(await host.final(23)), "now");
    await host.next((f) => f[0] === w.EVENT && f[2] === "late.event");
    await roundTrip(host, 24);
    assert.deepEqual(host.taken(w.PROGRESS, 23), []);
  });
});
