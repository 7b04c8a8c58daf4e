// Starting a real worker process for a test, as the host does: flags, a ready pipe (fd 3),
// its own session (so it leads a process group), stdin a pipe the test holds.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const PACKAGE = join(HERE, "..", "..");
export const BIN = join(PACKAGE, "bin", "snakepit-worker.mjs");
export const FIXTURES = join(HERE, "..", "fixtures");
// The contract suite's adapter, beside this package in the project's tree.
export const CONTRACT = join(PACKAGE, "..", "..", "tests", "adapters", "contract.mjs");

/** A deadline for waiting on something a test expects (never a stand-in for an event). */
export const WAIT_MS = 10_000;

/** Resolves with `promise`, or rejects naming `what` after `ms`. */
export function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A running worker: its process, sockets, and what it printed. */
export class Worker {
  constructor(child, dir, paths) {
    this.child = child;
    this.dir = dir;
    this.socket = paths.socket;
    this.lane = paths.lane;
    this.stderr = "";
    this.stdout = "";
    child.stderr.setEncoding("utf8").on("data", (text) => {
      this.stderr += text;
    });
    child.stdout.setEncoding("utf8").on("data", (text) => {
      this.stdout += text;
    });
    child.stdin.on("error", () => {}); // written to after it exited: fine
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  get pid() {
    return this.child.pid;
  }

  /** Stop it (SIGKILL unless it is gone) and remove its directory. */
  async kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Start a worker and wait for its READY line.
 * @param {object} [options]
 * @param {string} [options.adapter] its adapter file (default: the contract adapter)
 * @param {string[]} [options.args] more flags
 * @param {boolean} [options.lane] serve the local lane too (default true)
 * @returns {Promise<Worker>} a ready worker; rejects (with its stderr) if it exits first
 */
export async function startWorker({ adapter = CONTRACT, args = [], lane = true, env = {} } = {}) {
  const worker = launch({ adapter, args, lane, env });
  const ready = await within(readyLine(worker), "READY");
  if (!ready.startsWith("READY ")) {
    await worker.kill();
    throw new Error(`the worker did not report READY (${JSON.stringify(ready)}); stderr:\n${worker.stderr}`);
  }
  return worker;
}

/** Start a worker without waiting for it (a test that expects it to fail before READY). */
export function launch({ adapter = CONTRACT, args = [], lane = true, env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "spw-"));
  const paths = { socket: join(dir, "w.sock"), lane: lane ? join(dir, "w.lane") : null };
  const argv = [BIN, "--adapter", adapter, "--socket", paths.socket, "--ready-fd", "3", ...args];
  if (lane) argv.push("--lane", paths.lane);
  const child = spawn(process.execPath, argv, {
    stdio: ["pipe", "pipe", "pipe", "pipe"],
    detached: true, // a session of its own, as the host starts it
    env: { ...process.env, ...env },
  });
  return new Worker(child, dir, paths);
}

/** What the worker wrote on its ready pipe before closing it ("" if it exited first). */
export function readyLine(worker) {
  return new Promise((resolve) => {
    let text = "";
    const pipe = worker.child.stdio[3];
    pipe.setEncoding("utf8");
    pipe.on("data", (chunk) => {
      text += chunk;
    });
    pipe.on("close", () => resolve(text));
    pipe.on("error", () => resolve(text));
  });
}
