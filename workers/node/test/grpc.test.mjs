// The gRPC carrier against a real worker: Describe, Health, Connect (the lane's batches in
// Batch messages), Execute and ExecuteStream, with a grpc-js client on the unix socket.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import grpc from "@grpc/grpc-js";
import { encode } from "../src/codec.mjs";
import * as w from "../src/frames.mjs";
import { loadService } from "../src/grpc.mjs";
import { pack, unpack } from "../src/msgpack.mjs";
import { startWorker, within } from "./helpers/worker.mjs";

const Client = grpc.makeGenericClientConstructor(loadService(), "Worker");

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

/** A Connect stream, as the host holds it: send frames, wait for frames. */
class ConnectHost {
  #waiters = [];

  constructor(client) {
    this.frames = [];
    this.stream = client.Connect();
    this.stream.on("data", (message) => {
      for (const frame of unpack(message.frames)) this.frames.push(frame);
      for (const waiter of [...this.#waiters]) {
        const i = this.frames.findIndex(waiter.match);
        if (i >= 0) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(this.frames.splice(i, 1)[0]);
        }
      }
    });
    this.stream.on("error", () => {});
    this.ended = new Promise((resolve) => this.stream.on("end", resolve));
  }

  send(...frames) {
    this.stream.write({ frames: Buffer.from(pack(frames)) });
  }

  next(match, what) {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return within(new Promise((resolve) => this.#waiters.push({ match, resolve })), what);
  }

  final(id) {
    return this.next((f) => [w.RESULT, w.END, w.ERROR].includes(f[0]) && f[1] === id, `the final frame of ${id}`);
  }
}

describe("the gRPC service", () => {
  let worker;
  let client;
  before(async () => {
    worker = await startWorker({ lane: false, args: ["--capacity", "2"] });
    client = new Client(`unix:${worker.socket}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await worker?.kill();
  });

  test("Describe: the description's fields, runtime included", async () => {
    const reply = await unary(client, "Describe", {});
    assert.equal(reply.protocol, "snakepit.v1");
    assert.equal(reply.pid, worker.pid);
    assert.equal(reply.capacity, 2);
    assert.equal(reply.runtime, "node");
    assert.deepEqual([...reply.capabilities].sort(), ["arrow", "batch", "call_meta", "events", "host_tools"]);
    assert.equal(reply.thread_safe, false);
    const echo = reply.tools.find((t) => t.name === "echo");
    assert.equal(echo.description, "Return the value unchanged");
    assert.equal(echo.params[0].name, "value");
    assert.deepEqual([...echo.params[0].default], [0xc0]);
    assert.equal(reply.tools.find((t) => t.name === "count").streaming, true);
  });

  test("Health: serving, with its counters", async () => {
    const reply = await unary(client, "Health", {});
    assert.equal(reply.status, "serving");
    assert.equal(reply.pid, worker.pid);
    assert.ok(reply.uptime > 0);
    assert.equal(reply.in_flight, 0);
  });

  test("Connect: HELLO unanswered, then calls, streams with credit, cancel, ping", async () => {
    const host = new ConnectHost(client);
    host.send(w.hello([w.CAP_EVENTS]));
    host.send(w.call(1, "echo", encode({ value: [1, "two"] }), null, null, 0));
    assert.deepEqual(unpack((await host.final(1))[2]), [1, "two"]);
    host.send(w.call(2, "count", encode({ n: 3 }), null, null, 1));
    await host.next((f) => f[0] === w.CHUNK && f[1] === 2, "chunk 0");
    host.send(w.credit(2, 3));
    assert.deepEqual(await host.final(2), [w.END, 2]);
    host.send(w.call(3, "stall", encode({ first: 1 }), null, null, 4));
    await host.next((f) => f[0] === w.CHUNK && f[1] === 3, "stall's chunk");
    host.send(w.cancel(3), w.ping(4));
    assert.equal((await host.final(3))[5], "cancelled");
    assert.equal((await host.next((f) => f[0] === w.PONG, "PONG"))[1], 4);
    host.send(w.call(5, "emit", encode({ name: "e", value: 1 }), null, null, 0));
    assert.equal((await host.next((f) => f[0] === w.EVENT, "EVENT"))[2], "e");
    host.send(w.batch(6, "add", encode([{ a: 1 }, { a: 2 }])));
    assert.deepEqual(unpack((await host.final(6))[2]), [[0, 2], [0, 3]]);
    assert.equal(host.frames.filter((f) => f[0] === w.WELCOME).length, 0);
    host.stream.end(); // the host is done: the worker ends its side once its calls did
    await within(host.ended, "the stream's end");
  });

  test("Execute: one call per RPC, errors as ErrorInfo", async () => {
    const ok = await unary(client, "Execute", { tool: "add", args: Buffer.from(encode({ a: 40, b: 2 })) });
    assert.equal(unpack(ok.result), 42);
    assert.equal(ok.error, null);
    const failed = await unary(client, "Execute", { tool: "fail", args: Buffer.from(encode({})) });
    assert.equal(failed.error.kind, "remote");
    assert.equal(failed.error.type, "ValueError");
    assert.equal(failed.error.message, "boom");
    const streams = await unary(client, "Execute", { tool: "count", args: Buffer.from(encode({ n: 1 })) });
    assert.equal(streams.error.kind, "invalid_arguments");
    const unknown = await unary(client, "Execute", { tool: "nope" });
    assert.equal(unknown.error.kind, "unknown_tool");
    const host = await unary(client, "Execute", { tool: "host", args: Buffer.from(encode({ name: "x", args: null })) });
    assert.deepEqual(unpack(host.result), { error: "HostToolsUnavailable", kind: "unavailable" });
    const ctx = await unary(client, "Execute", { tool: "context", session_id: "s", timeout: 10 });
    const seen = unpack(ctx.result);
    assert.equal(seen.session_id, "s");
    assert.ok(seen.remaining > 5 && seen.remaining <= 10);
  });

  test("Execute cancelled by its client cancels the call", async () => {
    const inFlight = async (n) => {
      for (;;) if ((await unary(client, "Health", {})).in_flight === n) return;
    };
    const call = client.Execute({ tool: "sleep", args: Buffer.from(encode({ seconds: 60 })) }, () => {});
    await within(inFlight(1), "the call to run");
    call.cancel();
    await within(inFlight(0), "the call to end");
  });

  test("ExecuteStream: the chunks, then the end", async () => {
    const stream = client.ExecuteStream({ tool: "count", args: Buffer.from(encode({ n: 40 })) });
    const chunks = [];
    stream.on("data", (reply) => chunks.push(unpack(reply.result)));
    await within(new Promise((resolve, reject) => stream.on("end", resolve).on("error", reject)), "the stream's end");
    assert.deepEqual(chunks, Array.from({ length: 40 }, (_, i) => i));
    const failing = client.ExecuteStream({ tool: "raise_after", args: Buffer.from(encode({ n: 1 })) });
    const replies = [];
    failing.on("data", (reply) => replies.push(reply));
    await within(new Promise((resolve) => failing.on("end", resolve)), "its end");
    assert.equal(unpack(replies[0].result), 0);
    assert.equal(replies[1].error.type, "ValueError");
  });
});
