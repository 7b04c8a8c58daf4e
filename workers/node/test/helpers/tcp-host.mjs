// A host of "Carrier 1 over TCP", by hand: TCP (and TLS), the worker's nonce, the token
// proof, then the lane as LaneHost speaks it. And workers started with --listen, as an
// operator starts them: READY with the port on stdout.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import * as w from "../../src/frames.mjs";
import { frameMessage } from "../../src/messages.mjs";
import { pack, unpack } from "../../src/msgpack.mjs";
import { proof } from "../../src/token-proof.mjs";
import { LaneHost } from "./lane-host.mjs";
import { BIN, CONTRACT, Worker, within } from "./worker.mjs";

export const TOKEN = "a-test-token-0123456789abcdef";
const TLS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "tls");
// A throwaway CA and a certificate of it for 127.0.0.1, localhost and ::1 (test use only).
export const TLS_FILES = { ca: join(TLS_DIR, "ca.pem"), cert: join(TLS_DIR, "worker.pem"), key: join(TLS_DIR, "worker.key") };
const CA = readFileSync(TLS_FILES.ca);

/** One lane message holding `value` (a proof, or anything a test sends instead). */
export function message(value) {
  return Buffer.concat(frameMessage(pack(value)));
}

/**
 * A TCP connection to `port`, inside TLS trusting the test CA when `secure`.
 * Resolves once connected (and the TLS handshake is done).
 */
export function connect(port, { secure = false, host = "127.0.0.1" } = {}) {
  return new Promise((resolve, reject) => {
    const socket = secure
      ? tls.connect({ host, port, ca: CA }, () => resolve(socket))
      : net.connect({ host, port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** The first whole message the peer sends, decoded; null when it closes the connection first. */
export function firstMessage(socket) {
  return within(
    new Promise((resolve) => {
      let buffer = Buffer.alloc(0);
      const onData = (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        if (buffer.length < w.LANE_HEADER_BYTES) return;
        const size = buffer.readUInt32LE(0);
        if (buffer.length < w.LANE_HEADER_BYTES + size) return;
        done(unpack(buffer.subarray(w.LANE_HEADER_BYTES, w.LANE_HEADER_BYTES + size)));
      };
      const onClose = () => done(null);
      const done = (value) => {
        socket.off("data", onData);
        socket.off("close", onClose);
        resolve(value);
      };
      socket.on("data", onData);
      socket.once("close", onClose);
      socket.on("error", () => {});
    }),
    "the worker's first message",
  );
}

/** Whether the peer closes the connection (true), or sends something first (false). */
export function closes(socket) {
  return within(
    new Promise((resolve) => {
      if (socket.destroyed) return resolve(true);
      socket.once("data", () => resolve(false));
      socket.once("close", () => resolve(true));
      socket.on("error", () => {});
    }),
    "the worker to close the connection",
  );
}

/**
 * Connect, take the nonce, prove `token` and say HELLO in one write; resolves to a
 * LaneHost with the WELCOME map as its `describe`.
 */
export async function openHost(port, { secure = false, token = TOKEN, host = "127.0.0.1" } = {}) {
  const socket = await connect(port, { secure, host });
  const nonce = await firstMessage(socket);
  if (!(nonce instanceof Uint8Array)) throw new Error(`no nonce: ${JSON.stringify(nonce)}`);
  socket.write(Buffer.concat([message(proof(Buffer.from(token), nonce)), message([w.hello([])])]));
  const lane = new LaneHost(socket);
  lane.describe = (await lane.next((f) => f[0] === w.WELCOME, "WELCOME"))[1];
  return lane;
}

/** A token file holding `token` and a newline, in a fresh folder. */
export function tokenFile(token = TOKEN) {
  const path = join(mkdtempSync(join(tmpdir(), "spw-tcp-")), "token");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return path;
}

/** Start a worker with --listen (no ready fd: READY goes to stdout); not waited for. */
export function launchListening({ listen = "tcp://127.0.0.1:0", secure = false, args = [], tokens = tokenFile() } = {}) {
  const argv = [BIN, "--adapter", CONTRACT, "--listen", listen, "--token-file", tokens, ...args];
  if (secure) argv.push("--tls-cert", TLS_FILES.cert, "--tls-key", TLS_FILES.key);
  const child = spawn(process.execPath, argv, { stdio: ["pipe", "pipe", "pipe"], detached: true });
  return new Worker(child, dirname(tokens), { socket: null, lane: null });
}

/** Start a worker with --listen and wait for "READY <pid> <port>" on its stdout. */
export async function startListening(options = {}) {
  const worker = launchListening(options);
  const line = await within(
    new Promise((resolve) => {
      const check = () => {
        if (worker.stdout.includes("\n")) resolve(worker.stdout.split("\n")[0]);
      };
      worker.child.stdout.on("data", check);
      worker.child.once("exit", () => resolve(worker.stdout));
    }),
    "READY on stdout",
  );
  const match = /^READY (\d+) (\d+)$/.exec(line);
  if (match === null || Number(match[1]) !== worker.pid) {
    await worker.kill();
    throw new Error(`no READY line (${JSON.stringify(line)}); stderr:\n${worker.stderr}`);
  }
  worker.port = Number(match[2]);
  return worker;
}
