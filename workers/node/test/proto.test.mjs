// The package carries its own copy of the proto (it loads the gRPC service from it); in the
// project's tree it must be the same file as proto/snakepit/v1/worker.proto.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PACKAGE } from "./helpers/worker.mjs";

const COPY = join(PACKAGE, "proto", "snakepit", "v1", "worker.proto");
const ORIGINAL = join(PACKAGE, "..", "..", "proto", "snakepit", "v1", "worker.proto");

test("the package's proto is byte-identical to the project's", { skip: !existsSync(ORIGINAL) && "not inside the project's tree" }, () => {
  const copy = readFileSync(COPY);
  const original = readFileSync(ORIGINAL);
  assert.ok(
    copy.equals(original),
    `${COPY} differs from ${ORIGINAL}: copy it again (cp ${ORIGINAL} ${COPY})`,
  );
});

test("the package's proto declares the service the worker serves", () => {
  const text = readFileSync(COPY, "utf8");
  for (const rpc of ["Describe", "Health", "Connect", "Execute", "ExecuteStream"]) {
    assert.match(text, new RegExp(`rpc ${rpc}\\(`));
  }
});
