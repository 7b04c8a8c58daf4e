// The local lane against a real worker process running the contract adapter: a fake host
// on a real unix socket, every frame kind, every error kind.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { decode, encode } from "../src/codec.mjs";
import * as w from "../src/frames.mjs";
import { frameMessage } from "../src/messages.mjs";
import { pack } from "../src/msgpack.mjs";
import { LaneHost, valueOf } from "./helpers/lane-host.mjs";
import { startWorker } from "./helpers/worker.mjs";

/** Send PING `seq` and wait for its PONG: everything the worker sent before it is in. */
async function roundTrip(host, seq) {
  host.send(w.ping(seq));
  return host.next((f) => f[0] === w.PONG && f[1] === seq, `PONG ${seq}`);
}

describe("a worker of capacity 2", () => {
  let worker;
  let host;
  before(async () => {
    worker = await startWorker({ args: ["--capacity", "2", "--max-payload", "100000"] });
    host = await LaneHost.open(worker.lane);
  });
  after(async () => {
    host?.close();
    await worker?.kill();
    assert.deepEqual(host?.violations ?? [], []);
  });

  test("WELCOME describes the worker and its tools", () => {
    const d = host.describe;
    assert.equal(d.protocol, "snakepit.v1");
    assert.equal(d.pid, worker.pid);
    assert.equal(d.capacity, 2);
    assert.equal(d.runtime, "node");
    assert.equal(d.thread_safe, false);
    assert.deepEqual([...d.capabilities].sort(), ["arrow", "batch", "call_meta", "events", "host_tools"]);
    assert.equal(d.gil_enabled, undefined);
    const tools = Object.fromEntries(d.tools.map((t) => [t.name, t]));
    assert.equal(tools.echo.description, "Return the value unchanged");
    assert.deepEqual(tools.echo.params, [{ name: "value", type: "any", required: false, default: Uint8Array.from([0xc0]) }]);
    assert.deepEqual(tools.add.params[1], { name: "b", type: "int", required: false, default: Uint8Array.from([1]) });
    assert.deepEqual(tools.add.params[0], { name: "a", type: "int", required: true, default: new Uint8Array(0) });
    assert.deepEqual(tools.host.params[1], { name: "args", type: "dict?", required: true, default: new Uint8Array(0) });
    assert.equal(tools.count.streaming, true);
    assert.equal(tools.echo.streaming, false);
    for (const t of d.tools) {
      assert.equal(t.threaded, false);
      assert.equal(t.accepts_extra, false);
    }
  });

  test("CALL echo answers RESULT with the value and the run time", async () => {
    const value = { a: [1, "x", Uint8Array.from([1, 2]), null, true, 2.5, 2 ** 40, 2n ** 63n], m: {} };
    host.call(1, "echo", { value });
    const result = await host.final(1);
    assert.equal(result[0], w.RESULT);
    assert.deepEqual(valueOf(result), value);
    assert.equal(typeof result[3], "number");
    host.call(2, "add", { a: 2 });
    assert.equal(valueOf(await host.final(2)), 3); // the declared default of b
    host.send(w.call(3, "echo", new Uint8Array(0))); // no arguments at all
    assert.equal(valueOf(await host.final(3)), null);
  });

  test("every error kind, as the Python worker sends it", async () => {
    host.call(10, "nope");
    host.call(11, "add", {});
    host.call(12, "add", { a: 1, c: 2 });
    host.send(w.call(13, "add", encode([1, 2])));
    host.send(w.call(14, "add", Uint8Array.from([0xc1])));
    host.call(15, "fail", { message: "bad" });
    host.call(16, "unencodable");
    host.call(17, "big", { size: 200_000 });
    const [unknown, missing, extra, notMap, undecodable, remote, unencodable, large] = await Promise.all(
      [10, 11, 12, 13, 14, 15, 16, 17].map((id) => host.final(id)),
    );
    assert.deepEqual(unknown.slice(2), ["UnknownTool", "unknown tool 'nope'", "", "unknown_tool"]);
    assert.deepEqual(missing.slice(2), ["InvalidArguments", "argument 'a': missing required argument", "", "invalid_arguments"]);
    assert.deepEqual(extra.slice(2), ["InvalidArguments", "argument 'c': unexpected argument; the tool takes ['a', 'b']", "", "invalid_arguments"]);
    assert.deepEqual(notMap.slice(2), ["InvalidArguments", "expected a dict of keyword arguments, got list", "", "invalid_arguments"]);
    assert.equal(undecodable[2], "SerializationError");
    assert.equal(undecodable[5], "serialization");
    assert.match(undecodable[3], /^cannot decode arguments of 'add'/);
    assert.deepEqual([remote[2], remote[3], remote[5]], ["ValueError", "bad", "remote"]);
    assert.match(remote[4], /ValueError: bad\n\s+at Contract.fail/);
    assert.deepEqual([unencodable[2], unencodable[5]], ["SerializationError", "serialization"]);
    assert.match(unencodable[3], /cannot encode result of 'unencodable': a function/);
    assert.deepEqual([large[2], large[5]], ["PayloadTooLarge", "payload_too_large"]);
    assert.deepEqual(large[6], { size: 200_005, limit: 100_000 });
  });

  test("a stream sends only as many chunks as it has credit", async () => {
    host.call(20, "count", { n: 5 }, { window: 2 });
    await host.next((f) => f[0] === w.CHUNK && f[1] === 20);
    await host.next((f) => f[0] === w.CHUNK && f[1] === 20);
    await roundTrip(host, 21); // had credit been ignored, chunk 3 would be in by now
    assert.deepEqual(host.taken(w.CHUNK, 20), []);
    host.send(w.credit(20, 3));
    const rest = [];
    for (let i = 0; i < 3; i++) rest.push(valueOf(await host.next((f) => f[0] === w.CHUNK && f[1] === 20)));
    assert.deepEqual(rest, [2, 3, 4]);
    // Pumped only with credit: the generator's end is found with the next one.
    await roundTrip(host, 25);
    assert.deepEqual(host.frames.filter((f) => f[1] === 20), []);
    host.send(w.credit(20, 1));
    assert.deepEqual(await host.final(20), [w.END, 20]);
  });

  test("a stream's error ends it after its chunks; progress comes before its frames", async () => {
    host.call(22, "raise_after", { n: 2 }, { window: 8 });
    const error = await host.final(22);
    assert.deepEqual([error[2], error[3], error[5]], ["ValueError", "after 2", "remote"]);
    assert.deepEqual(host.taken(w.CHUNK, 22).map(valueOf), [0, 1]);
    host.call(23, "steps", { n: 3 });
    assert.equal(valueOf(await host.final(23)), 3);
    assert.deepEqual(host.taken(w.PROGRESS, 23), [
      [w.PROGRESS, 23, 1, 3, "step 1"],
      [w.PROGRESS, 23, 2, 3, "step 2"],
      [w.PROGRESS, 23, 3, 3, "step 3"],
    ]);
    host.call(24, "ticks", { n: 2 }, { window: 4 });
    await host.final(24);
    assert.deepEqual(host.taken(w.PROGRESS, 24), [[w.PROGRESS, 24, 1, 2, null], [w.PROGRESS, 24, 2, 2, null]]);
    assert.deepEqual(host.taken(w.CHUNK, 24).map(valueOf), [0, 1]);
  });

  test("CANCEL stops a running call and a waiting stream: one ERROR cancelled each", async () => {
    host.call(30, "stall", { first: 7 }, { window: 4 });
    assert.equal(valueOf(await host.next((f) => f[0] === w.CHUNK && f[1] === 30)), 7);
    host.call(31, "sleep", { seconds: 60 });
    await roundTrip(host, 32);
    host.send(w.cancel(30), w.cancel(31));
    assert.deepEqual((await host.final(30)).slice(2), ["CancelledError", "call cancelled", "", "cancelled"]);
    assert.deepEqual((await host.final(31)).slice(2), ["CancelledError", "call cancelled", "", "cancelled"]);
    host.send(w.cancel(31), w.credit(31, 1)); // for a call that ended: nothing
    await roundTrip(host, 33);
    assert.deepEqual(host.frames.filter((f) => f[1] === 31), []);
  });

  test("calls beyond capacity wait in arrival order; CANCEL and REVOKE give back a waiting one", async () => {
    host.call(40, "sleep", { seconds: 60 });
    host.call(41, "sleep", { seconds: 60 });
    host.call(42, "echo", { value: "a" });
    host.call(43, "echo", { value: "b" });
    host.call(44, "echo", { value: "c" });
    await roundTrip(host, 45);
    assert.deepEqual(host.frames.filter((f) => f[1] >= 40 && f[1] <= 44), []); // all waiting or running
    host.send(w.cancel(42), w.revoke(43));
    const notStarted = ["CancelledError", "call cancelled before it started", "", "cancelled", { started: false }];
    assert.deepEqual((await host.final(42)).slice(2), notStarted);
    assert.deepEqual((await host.final(43)).slice(2), notStarted);
    host.send(w.revoke(40)); // started: not affected
    await roundTrip(host, 46);
    assert.deepEqual(host.frames.filter((f) => f[1] === 40), []);
    host.send(w.cancel(41));
    assert.equal((await host.final(41))[5], "cancelled");
    assert.equal(valueOf(await host.final(44)), "c"); // took 41's slot
    host.send(w.cancel(40));
    assert.equal((await host.final(40))[5], "cancelled");
  });

  test("a borrowed call starts at once, beyond capacity", async () => {
    host.call(50, "sleep", { seconds: 60 });
    host.call(51, "sleep", { seconds: 60 });
    host.call(52, "echo", { value: "borrowed" }, { meta: { borrow: true } });
    assert.equal(valueOf(await host.final(52)), "borrowed");
    host.send(w.cancel(50), w.cancel(51));
    await host.final(50);
    await host.final(51);
  });

  test("PING is answered with PONG and this process's resident memory", async () => {
    const pong = await roundTrip(host, 60);
    assert.equal(pong.length, 3);
    assert.ok(pong[2] > 1_000_000, `rss ${pong[2]}`);
  });

  test("BATCH runs a tool once per item, in order", async () => {
    host.send(w.batch(70, "add", encode([{ a: 1 }, { a: 2, b: 5 }])));
    assert.deepEqual(valueOf(await host.final(70)), [[0, 2], [0, 7]]);
    host.send(w.batch(71, "fail", encode([{ message: "x" }, null, { message: "z" }])));
    const entries = valueOf(await host.final(71));
    assert.deepEqual(entries.map((e) => e.slice(0, 3)), [[1, "ValueError", "x"], [1, "ValueError", "boom"], [1, "ValueError", "z"]]);
    assert.equal(entries[0][4], "remote");
    host.send(w.batch(72, "fail", encode([{}, {}]), null, null, true));
    assert.equal(valueOf(await host.final(72)).length, 1); // stop: the first error ends it
    host.send(w.batch(73, "count", encode([{ n: 1 }])));
    assert.deepEqual((await host.final(73)).slice(2, 4), ["InvalidArguments", "'count' streams; a batch runs only tools that return"]);
    host.send(w.batch(74, "nope", encode([])));
    assert.equal((await host.final(74))[5], "unknown_tool");
    host.send(w.batch(75, "add", encode([{ a: 1 }, { b: 1 }])));
    assert.deepEqual((await host.final(75)).slice(2, 4), ["InvalidArguments", "item 1: argument 'a': missing required argument"]);
    host.send(w.batch(76, "add", encode({ a: 1 })));
    assert.equal((await host.final(76))[5], "invalid_arguments");
    host.send(w.batch(77, "echo", encode([null, { value: "ok" }]))); // nil: no arguments
    assert.deepEqual(valueOf(await host.final(77)), [[0, null], [0, "ok"]]);
  });

  test("a batch's item past the payload limit ends it with payload_too_large", async () => {
    host.send(w.batch(78, "big", encode([{ size: 40_000 }, { size: 40_000 }, { size: 40_000 }])));
    const entries = valueOf(await host.final(78));
    assert.equal(entries.length, 3);
    assert.equal(entries[0][0], 0);
    assert.equal(entries[1][0], 0);
    assert.deepEqual([entries[2][0], entries[2][4]], [1, "payload_too_large"]);
    host.send(w.batch(79, "unencodable", encode([null, null])));
    const failed = valueOf(await host.final(79));
    assert.deepEqual(failed.map((e) => [e[0], e[4]]), [[1, "serialization"], [1, "serialization"]]);
  });

  test("a cancelled batch ends with ERROR cancelled", async () => {
    host.send(w.batch(80, "sleep", encode([{ seconds: 60 }, { seconds: 60 }])));
    await roundTrip(host, 81);
    host.send(w.cancel(80));
    assert.equal((await host.final(80))[5], "cancelled");
  });

  test("SESSION_END runs onSessionEnd; sessions and deadlines reach the context", async () => {
    host.call(90, "incr", {}, { sessionId: "s1" });
    host.call(91, "incr", {}, { sessionId: "s1" });
    assert.equal(valueOf(await host.final(90)).count, 1);
    assert.deepEqual(valueOf(await host.final(91)), { count: 2, pid: worker.pid, session: "s1" });
    host.send(w.sessionEnd("s1"));
    host.call(92, "ended");
    assert.deepEqual(valueOf(await host.final(92)), ["s1"]);
    host.call(93, "incr", {}, { sessionId: "s1" });
    assert.equal(valueOf(await host.final(93)).count, 1);
    host.call(94, "context", {}, { sessionId: "s2", deadline: 30 });
    const ctx = valueOf(await host.final(94));
    assert.equal(ctx.request_id, 94);
    assert.equal(ctx.session_id, "s2");
    assert.ok(ctx.remaining > 25 && ctx.remaining <= 30, `remaining ${ctx.remaining}`);
  });

  test("frames leave in batches of at most 512", async () => {
    const before = host.messages.length;
    host.call(100, "count", { n: 1200 }, { window: 1201 });
    await host.final(100);
    const mine = host.messages.slice(before).map((m) => m.filter((f) => f[1] === 100));
    assert.ok(mine.every((m) => m.length <= 512));
    assert.ok(mine.filter((m) => m.length > 0).length >= 3);
    assert.deepEqual(host.taken(w.CHUNK, 100).map(valueOf), Array.from({ length: 1200 }, (_, i) => i));
  });

  test("malformed frames: a CALL with a readable id is answered, the rest ignored", async () => {
    host.send([w.CALL, 110, "echo", "not bin", null, null, 0]);
    const error = await host.final(110);
    assert.deepEqual([error[2], error[5]], ["ProtocolError", "protocol"]);
    assert.match(error[3], /CALL.args must be bin/);
    host.send([w.CANCEL], "garbage", [99, 1], [w.CREDIT, -1, 1]);
    host.sendRaw(Uint8Array.from([0xc1, 0xc1])); // not msgpack: ignored
    host.sendRaw(pack({ not: "a list" }));
    host.call(111, "echo", { value: "still serving" });
    assert.equal(valueOf(await host.final(111)), "still serving");
    host.call(112, "sleep", { seconds: 60 });
    host.call(112, "echo", { value: 1 });
    assert.deepEqual((await host.final(112)).slice(2, 4), ["ProtocolError", "duplicate call id"]);
    host.send(w.cancel(112));
    assert.equal((await host.final(112))[5], "cancelled");
  });

  test("UNMAPPED_RESULTS is accepted and needs no answer", async () => {
    host.send(w.unmappedResults(["snakepit-x"]));
    await roundTrip(host, 120);
  });
});

describe("host tools and events", () => {
  let worker;
  before(async () => {
    worker = await startWorker();
  });
  after(async () => {
    await worker?.kill();
  });

  test("HOST_CALL goes out for a host that serves host tools, and its answer comes back", async () => {
    const host = await LaneHost.open(worker.lane);
    host.call(1, "host", { name: "lookup", args: { k: 1 } });
    const hostCall = await host.next((f) => f[0] === w.HOST_CALL);
    assert.deepEqual([hostCall[2], hostCall[3], decode(hostCall[4])], [1, "lookup", { k: 1 }]);
    host.send(w.hostResult(hostCall[1], encode({ found: true })));
    assert.deepEqual(valueOf(await host.final(1)), { ok: { found: true } });

    host.call(2, "host", { name: "boom", args: null });
    const second = await host.next((f) => f[0] === w.HOST_CALL);
    assert.deepEqual(decode(second[4]), {});
    host.send(w.hostError(second[1], "KeyError", "no", "remote"));
    assert.deepEqual(valueOf(await host.final(2)), { error: "HostToolError", kind: "remote" });

    host.call(3, "host", { name: "ghost", args: {} });
    const third = await host.next((f) => f[0] === w.HOST_CALL);
    host.send(w.hostError(third[1], "UnknownTool", "no such tool", "unknown_tool"));
    assert.deepEqual(valueOf(await host.final(3)), { error: "UnknownHostTool", kind: "unknown_tool" });

    host.call(4, "host", { name: "bad", args: {} });
    const fourth = await host.next((f) => f[0] === w.HOST_CALL);
    host.send([w.HOST_RESULT, fourth[1], "not bin"]); // malformed: its tool fails
    assert.deepEqual(valueOf(await host.final(4)), { error: "HostToolError", kind: "protocol" });

    host.call(5, "host_list");
    const listing = await host.next((f) => f[0] === w.HOST_TOOLS);
    assert.equal(listing[2], 5);
    host.send(w.hostResult(listing[1], encode([{ name: "b", description: "", params: [] }, { name: "a", description: "", params: [] }])));
    assert.deepEqual(valueOf(await host.final(5)), ["a", "b"]);

    host.call(6, "host", { name: "slow", args: {} });
    const sixth = await host.next((f) => f[0] === w.HOST_CALL);
    host.send(w.cancel(6));
    assert.deepEqual(await host.next((f) => f[0] === w.HOST_CANCEL), [w.HOST_CANCEL, sixth[1]]);
    assert.equal((await host.final(6))[5], "cancelled");
    host.send(w.hostResult(sixth[1], encode(1))); // crossed our HOST_CANCEL: dropped
    host.send(w.ping(7));
    await host.next((f) => f[0] === w.PONG);
    assert.deepEqual(host.violations, []);
    host.close();
  });

  test("a host that did not name host_tools is sent none: HostToolsUnavailable at once", async () => {
    const host = await LaneHost.open(worker.lane, []);
    host.call(1, "host", { name: "lookup", args: {} });
    assert.deepEqual(valueOf(await host.final(1)), { error: "HostToolsUnavailable", kind: "unavailable" });
    host.call(2, "emit", { name: "quiet", value: 1 });
    await host.final(2);
    host.send(w.ping(3));
    await host.next((f) => f[0] === w.PONG);
    assert.deepEqual(host.frames.filter((f) => [w.HOST_CALL, w.HOST_TOOLS, w.EVENT].includes(f[0])), []);
    host.close();
  });

  test("EVENT goes to a host that named events", async () => {
    const host = await LaneHost.open(worker.lane);
    host.call(1, "emit", { name: "model.inference", value: 2.5 });
    const event = await host.next((f) => f[0] === w.EVENT);
    assert.deepEqual(event.slice(1, 5), [1, "model.inference", { value: 2.5 }, { source: "contract" }]);
    assert.equal(typeof event[5], "number");
    assert.equal(valueOf(await host.final(1)), null);
    host.call(2, "emit", { name: "bad name!", value: 1 });
    assert.deepEqual((await host.final(2)).slice(2, 3), ["RangeError"]);
    host.close();
  });
});

describe("the lane's limits", () => {
  test("a message over max payload + 2 MiB closes the connection", async () => {
    const worker = await startWorker({ args: ["--max-payload", "1000"] });
    try {
      const host = await LaneHost.open(worker.lane);
      const [header] = frameMessage(new Uint8Array(1000 + 2 * (1 << 20) + 1));
      host.socket.write(header);
      await host.closed;
      const again = await LaneHost.open(worker.lane); // the worker serves on
      again.call(1, "echo", { value: 1 });
      assert.equal(valueOf(await again.final(1)), 1);
      again.close();
    } finally {
      await worker.kill();
    }
  });

  test("a message split across many writes, and many messages in one write, both arrive", async () => {
    const worker = await startWorker();
    try {
      const host = await LaneHost.open(worker.lane);
      const one = Buffer.concat(frameMessage(pack([w.call(1, "echo", encode({ value: "x".repeat(100_000) }), null, null, 0)])));
      for (let i = 0; i < one.length; i += 777) host.socket.write(one.subarray(i, i + 777));
      const two = Buffer.concat([
        ...frameMessage(pack([w.call(2, "echo", encode({ value: 2 }), null, null, 0)])),
        ...frameMessage(pack([w.call(3, "echo", encode({ value: 3 }), null, null, 0)])),
      ]);
      host.socket.write(two);
      assert.equal(valueOf(await host.final(1)).length, 100_000);
      assert.equal(valueOf(await host.final(2)), 2);
      assert.equal(valueOf(await host.final(3)), 3);
      host.close();
    } finally {
      await worker.kill();
    }
  });

  test("a host that stops sending still gets its running calls' results, then the lane closes", async () => {
    const worker = await startWorker({ args: ["--capacity", "1"] });
    try {
      const host = await LaneHost.open(worker.lane);
      host.call(1, "sleep", { seconds: 0.2 });
      host.call(2, "echo", { value: "queued" });
      host.socket.end(); // nothing more from the host
      assert.equal(valueOf(await host.final(1)), "slept");
      assert.equal(valueOf(await host.final(2)), "queued");
      await host.closed;
    } finally {
      await worker.kill();
    }
  });

  test("a host that went away leaves the worker serving the next one", async () => {
    const worker = await startWorker({ args: ["--capacity", "1"] });
    try {
      const first = await LaneHost.open(worker.lane);
      first.call(1, "sleep", { seconds: 0.2 });
      first.send(w.ping(2));
      await first.next((f) => f[0] === w.PONG);
      first.close();
      const second = await LaneHost.open(worker.lane);
      second.call(1, "echo", { value: "free" }); // capacity 1: once the first host's call ended
      assert.equal(valueOf(await second.final(1)), "free");
      second.close();
    } finally {
      await worker.kill();
    }
  });
});
