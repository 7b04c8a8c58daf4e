// The frame table and its parsers: the same table as the proto's, every field checked.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ProtocolViolation } from "../src/errors.mjs";
import * as w from "../src/frames.mjs";
import { PACKAGE } from "./helpers/worker.mjs";

const bin = (n = 0) => new Uint8Array(n);

describe("the frame table", () => {
  test("is the proto's, kind by kind, field by field", () => {
    const proto = readFileSync(join(PACKAGE, "proto", "snakepit", "v1", "worker.proto"), "utf8");
    const rows = [...proto.matchAll(/^\/\/\s+(\d+)\s+([A-Z_]+)\s+([<>])\s+(.+)$/gm)];
    assert.equal(rows.length, w.TABLE.size);
    for (const [, kind, name, dir, fields] of rows) {
      const spec = w.TABLE.get(Number(kind));
      assert.ok(spec, `kind ${kind} is in the table`);
      assert.equal(spec.name, name);
      assert.equal(spec.toWorker, dir === ">");
      // "[name:type]" may be left off the end (a type itself may be "[str]").
      const tokens = fields.trim().split(/\s+/);
      const optional = tokens.filter((t) => /^\[\w/.test(t)).map((t) => t.slice(1, -1));
      const required = tokens.filter((t) => !/^\[\w/.test(t));
      assert.deepEqual(spec.fields.map((f) => f.join(":")), [...required, ...optional], name);
      assert.equal(spec.required, required.length, `${name}: fields that may be left off`);
    }
  });
});

describe("parsing what the host sends", () => {
  test("valid frames parse to named fields; left-off optional fields are null", () => {
    const call = w.parseFromHost([w.CALL, 7, "echo", bin(1), null, 2.5, 0]);
    assert.deepEqual(
      { ...call },
      { frameKind: w.CALL, frameName: "CALL", id: 7, tool: "echo", args: bin(1), session_id: null, deadline: 2.5, window: 0, meta: null },
    );
    assert.deepEqual(w.parseFromHost([w.CALL, 7, "echo", bin(), "s", null, 4, { borrow: true }]).meta, { borrow: true });
    assert.deepEqual(w.parseFromHost([w.HELLO, "snakepit.v1"]).capabilities, null);
    assert.deepEqual(w.parseFromHost(w.hello(["events"])).capabilities, ["events"]);
    assert.equal(w.parseFromHost([w.PING, 2n ** 60n]).seq, 2n ** 60n); // uints beyond 2^53
    assert.equal(w.parseFromHost(w.hostError(3, "KeyError", "k", "reentrancy")).kind, "reentrancy");
    assert.equal(w.parseFromHost(w.batch(1, "t", bin(), null, null, true)).stop, 1);
  });

  const refused = [
    [[], /non-empty array/],
    ["CALL", /non-empty array/],
    [[99, 1], /not a host to worker frame kind/],
    [[w.RESULT, 1, bin()], /not a host to worker frame kind/], // the worker's own kind
    [["0", 1], /not a host to worker frame kind/],
    [[w.CALL, 1, "echo", bin(), null, null], /CALL needs 6 to 7 fields, got 5/],
    [[w.CALL, 1, "echo", bin(), null, null, 0, null, 9], /CALL needs 6 to 7 fields, got 8/],
    [[w.CALL, -1, "echo", bin(), null, null, 0], /CALL.id must be uint/],
    [[w.CALL, 1.5, "echo", bin(), null, null, 0], /CALL.id must be uint/],
    [[w.CALL, 1, 5, bin(), null, null, 0], /CALL.tool must be str/],
    [[w.CALL, 1, "echo", "x", null, null, 0], /CALL.args must be bin/],
    [[w.CALL, 1, "echo", bin(), 3, null, 0], /CALL.session_id must be str\?/],
    [[w.CALL, 1, "echo", bin(), null, "soon", 0], /CALL.deadline must be number\?/],
    [[w.CALL, 1, "echo", bin(), null, null, null], /CALL.window must be uint/],
    [[w.CALL, 1, "echo", bin(), null, null, 0, [1]], /CALL.meta must be map\?/],
    [[w.CREDIT, 1], /CREDIT needs 2 fields, got 1/],
    [[w.HELLO, "snakepit.v1", ["a", 1]], /HELLO.capabilities must be \[str\]/],
    [[w.HOST_ERROR, 1, "T", "m", "weird"], /HOST_ERROR.kind 'weird' is not one of/],
    [[w.SESSION_END, null], /SESSION_END.session_id must be str/],
  ];
  for (const [frame, pattern] of refused) {
    test(`refuses ${JSON.stringify(frame, (k, v) => (v instanceof Uint8Array ? "bin" : typeof v === "bigint" ? `${v}` : v))}`, () => {
      assert.throws(() => w.parseFromHost(frame), (e) => e instanceof ProtocolViolation && pattern.test(e.message));
    });
  }

  test("what the worker sends parses as the host parses it", () => {
    for (const frame of [
      w.result(1, bin(2), 0.5),
      w.result(1, bin(2), null),
      w.chunk(1, bin()),
      w.end(1),
      w.error(1, "ValueError", "m", "remote", "tb"),
      w.error(1, "CancelledError", "m", "cancelled", "", { started: false }),
      w.progress(1, 1, 3, "step"),
      w.pong(1, 1000),
      w.welcome({ protocol: w.PROTOCOL }),
      w.hostCall(1, 2, "lookup", bin()),
      w.hostCall(1, 2, "lookup", bin(), { traceparent: "x" }),
      w.hostCancel(1),
      w.event(null, "a.b", { v: 1 }, {}, 0.1),
      w.hostTools(1, 2),
    ]) {
      assert.equal(w.parseFromWorker(frame).frameKind, frame[0]);
    }
    assert.throws(() => w.parseFromWorker(w.error(1, "T", "m", "reentrancy")), ProtocolViolation); // HOST_ERROR's only
  });
});

describe("batches", () => {
  test("at most 512 frames a batch", () => {
    const frames = Array.from({ length: 1200 }, (_, i) => w.end(i));
    assert.deepEqual(w.splitBatches(frames).map((b) => b.length), [512, 512, 176]);
  });

  test("about 1 MiB a batch; one larger payload travels alone", () => {
    const big = w.result(1, bin(w.MAX_BATCH_BYTES + 10), null);
    const small = (id) => w.chunk(id, bin(600_000));
    const batches = w.splitBatches([small(1), small(2), big, small(3), w.end(4)]);
    assert.deepEqual(batches.map((b) => b.map((f) => f[1])), [[1, 2], [1], [3, 4]]);
  });

  test("error and progress texts count toward a batch's size", () => {
    assert.equal(w.payloadSize(w.error(1, "T", "é".repeat(10), "remote", "x".repeat(5))), 25);
    assert.equal(w.payloadSize(w.progress(1, 1, null, "abc")), 3);
    assert.equal(w.payloadSize(w.pong(1, 5)), 0);
  });
});
