// The worker process and its host: READY, a broken adapter, SIGTERM, stdin's end, the host's
// death, SIGUSR1 (no debugger port, ever), quiet stdout.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as w from "../src/frames.mjs";
import { LaneHost, valueOf } from "./helpers/lane-host.mjs";
import { BIN, FIXTURES, launch, readyLine, startWorker, within } from "./helpers/worker.mjs";

/** Whether `pid` is a zombie (dead, not yet reaped). */
function isZombie(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true; // gone
  }
}

/** A worker that must fail before READY: its exit and stderr. */
async function failsToStart(adapter, args = []) {
  const worker = launch({ adapter, args });
  const ready = readyLine(worker);
  const { code } = await within(worker.exited, "the worker's exit");
  assert.equal(await ready, "", "no READY");
  await worker.kill();
  const lines = worker.stderr.trim().split("\n");
  return { code, last: lines[lines.length - 1], stderr: worker.stderr };
}

describe("a broken adapter: exit 3 before READY, the cause last on stderr", () => {
  const cases = [
    ["does-not-exist.mjs", /adapter failed to start: the adapter module .*does-not-exist.mjs does not exist/],
    ["no-default.mjs", /no default export that is a class .*named exports: Named/],
    ["missing-method.mjs", /tool 'ghost' is declared, but the class has no method 'ghost'/],
    ["bad-type.mjs", /parameter 'x': type 'integer' is not one of int, float/],
    ["unknown-key.mjs", /unknown key 'stream'; a tool declares description, streaming/],
    ["no-tools.mjs", /declares no tools/],
    ["throws-on-import.mjs", /Error: broken at import \(raised while importing the adapter module/],
    ["initialize-throws.mjs", /adapter failed to start: TypeError: cannot load the model/],
    ["bad-default.mjs", /parameter 'f': cannot encode its default: a function/],
  ];
  for (const [file, pattern] of cases) {
    test(file, async () => {
      const { code, last, stderr } = await failsToStart(join(FIXTURES, file));
      assert.equal(code, 3, stderr);
      assert.match(last, pattern);
    });
  }

  test("a bad flag exits 2 with the usage", async () => {
    const { code, stderr } = await failsToStart(join(FIXTURES, "features.mjs"), ["--capacity", "zero"]);
    assert.equal(code, 2);
    assert.match(stderr, /--capacity must be an integer/);
  });
});

describe("a running worker", () => {
  test("prints nothing on stdout, and its sockets are its user's only", async () => {
    const worker = await startWorker();
    try {
      const host = await LaneHost.open(worker.lane);
      host.call(1, "echo", { value: 1 });
      await host.final(1);
      const { statSync } = await import("node:fs");
      assert.equal(statSync(worker.socket).mode & 0o777, 0o600);
      assert.equal(statSync(worker.lane).mode & 0o777, 0o600);
      host.close();
      worker.child.kill("SIGTERM");
      await within(worker.exited, "exit");
      assert.equal(worker.stdout, "");
      assert.equal(worker.stderr, "");
    } finally {
      await worker.kill();
    }
  });

  test("SIGTERM: running calls end with their final frames, cleanup runs, exit 0", async () => {
    const worker = await startWorker({ adapter: join(FIXTURES, "features.mjs"), args: ["--capacity", "3"] });
    try {
      const host = await LaneHost.open(worker.lane);
      host.call(1, "gate", { ms: 60_000 });
      host.call(2, "letters", { word: "ab" }, { window: 1 }); // waits for credit
      host.call(3, "stubborn", { ms: 200 }); // ignores its cancel: ends in its own time
      await host.next((f) => f[0] === w.CHUNK && f[1] === 2);
      worker.child.kill("SIGTERM");
      assert.equal((await host.final(1))[5], "cancelled");
      assert.equal((await host.final(2))[5], "cancelled");
      assert.equal((await host.final(3))[5], "cancelled");
      await host.closed;
      const { code, signal } = await within(worker.exited, "exit");
      assert.deepEqual({ code, signal }, { code: 0, signal: null });
      assert.match(worker.stderr, /features: cleanup ran/);
    } finally {
      await worker.kill();
    }
  });

  test("SIGTERM: a call that arrives while it stops is given back unstarted", async () => {
    const worker = await startWorker({ adapter: join(FIXTURES, "features.mjs"), args: ["--capacity", "2"] });
    try {
      const host = await LaneHost.open(worker.lane);
      host.call(1, "stubborn", { ms: 1500 }); // keeps the worker stopping for a while
      host.call(2, "gate", { ms: 60_000 });
      host.send(w.ping(9));
      await host.next((f) => f[0] === w.PONG);
      worker.child.kill("SIGTERM");
      assert.equal((await host.final(2))[5], "cancelled"); // the worker is stopping now
      host.call(3, "plain", { x: 1 });
      const answer = await host.final(3);
      assert.deepEqual([answer[5], answer[6]], ["cancelled", { started: false }]);
      assert.equal((await host.final(1))[5], "cancelled");
      assert.equal((await within(worker.exited, "exit")).code, 0);
    } finally {
      await worker.kill();
    }
  });

  test("stdin's end (the host died) ends the worker and its process group at once", async () => {
    const worker = await startWorker({ args: ["--watch-stdin"] });
    try {
      worker.child.stdin.end();
      const { code, signal } = await within(worker.exited, "exit on stdin's end");
      // It leads its group (as the host starts it), so it goes down with the group.
      assert.ok(signal === "SIGKILL" || code === 70, `code ${code} signal ${signal}`);
    } finally {
      await worker.kill();
    }
  });

  test("the host's death takes the processes a tool started down too, detached ones included", async () => {
    const worker = await startWorker({ adapter: join(FIXTURES, "features.mjs"), args: ["--watch-stdin"] });
    const alive = (pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    let pids = [];
    try {
      const host = await LaneHost.open(worker.lane);
      host.call(1, "child", { detached: false });
      host.call(2, "child", { detached: true });
      pids = [valueOf(await host.final(1)), valueOf(await host.final(2))];
      assert.ok(pids.every(alive));
      worker.child.stdin.end();
      await within(worker.exited, "exit on stdin's end");
      // Killed before the worker exited; reaped by init a moment later.
      await within(
        (async () => {
          // Polled: nothing tells this process when another one is gone.
          while (pids.some((pid) => alive(pid) && !isZombie(pid))) await new Promise((r) => setTimeout(r, 10));
        })(),
        "its children to be gone",
      );
    } finally {
      for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
      await worker.kill();
    }
  });

  test("a --host-pid that is gone at start: exit 70 before READY", async () => {
    const gone = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => gone.once("exit", resolve));
    const worker = launch({ args: ["--host-pid", String(gone.pid)] });
    try {
      const ready = readyLine(worker);
      const { code, signal } = await within(worker.exited, "exit");
      assert.ok(code === 70 || signal === "SIGKILL", `code ${code} signal ${signal}`);
      assert.equal(await ready, "");
    } finally {
      await worker.kill();
    }
  });

  test("a --host-pid that dies later: the worker follows it", async () => {
    const hostProcess = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    const worker = await startWorker({ args: ["--host-pid", String(hostProcess.pid)] });
    try {
      hostProcess.kill("SIGKILL");
      const { code, signal } = await within(worker.exited, "exit after the host died");
      assert.ok(code === 70 || signal === "SIGKILL", `code ${code} signal ${signal}`);
    } finally {
      hostProcess.kill("SIGKILL");
      await worker.kill();
    }
  });
});

describe("SIGUSR1 opens no debugger", () => {
  /** Whether something accepts connections on 127.0.0.1:9229, the inspector's port. */
  function inspectorListening() {
    return new Promise((resolve) => {
      const socket = net.connect(9229, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
  }

  test("the check itself: a node process without a handler does open one", async (t) => {
    if (await inspectorListening()) return t.skip("something already listens on 9229");
    const script = "process.stdout.write('up\\n'); setInterval(() => {}, 1000)";
    const plain = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const said = (stream, text) =>
        new Promise((resolve) => {
          let seen = "";
          stream.setEncoding("utf8").on("data", (chunk) => {
            seen += chunk;
            if (seen.includes(text)) resolve();
          });
        });
      const listening = said(plain.stderr, "Debugger listening");
      await within(said(plain.stdout, "up"), "the process to be up"); // its handlers are set
      plain.kill("SIGUSR1");
      await within(listening, "'Debugger listening' from a node without a handler");
      assert.ok(await inspectorListening());
    } finally {
      const exited = new Promise((resolve) => plain.once("exit", resolve));
      plain.kill("SIGKILL");
      await exited; // its port is free again for the next test
    }
  });

  test("the worker carries on, with no inspector listening and nothing said", async (t) => {
    if (await inspectorListening()) return t.skip("something already listens on 9229");
    const worker = await startWorker();
    try {
      const host = await LaneHost.open(worker.lane);
      for (let i = 1; i <= 3; i++) {
        worker.child.kill("SIGUSR1");
        host.send(w.ping(i)); // the signal was handled before this turn of its loop ends
        await host.next((f) => f[0] === w.PONG && f[1] === i);
      }
      host.call(10, "echo", { value: "alive" });
      assert.equal(valueOf(await host.final(10)), "alive");
      assert.equal(await inspectorListening(), false);
      assert.doesNotMatch(worker.stderr, /Debugger listening/);
      assert.equal(worker.child.exitCode, null);
      host.close();
    } finally {
      await worker.kill();
    }
  });
});

test("the entry script is executable and runs with node", async () => {
  const { accessSync, constants } = await import("node:fs");
  accessSync(BIN, constants.X_OK);
});
