// "Carrier 1 over TCP" (--listen): the token proof, the addresses, the door each peer goes
// through (TLS, nonce, proof, refusals logged once), and real worker processes reached
// over TCP and TLS by hand, as the Python worker is in tests/e2e/test_tcp_worker.py.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as w from "../src/frames.mjs";
import { TcpGate } from "../src/tcp-gate.mjs";
import { parseTcpUrl, serverTls, tuneSocket } from "../src/tcp.mjs";
import { proof, proofIsValid, readToken } from "../src/token-proof.mjs";
import { valueOf } from "./helpers/lane-host.mjs";
import {
  TLS_FILES,
  TOKEN,
  closes,
  connect,
  firstMessage,
  message,
  openHost,
  startListening,
  tokenFile,
} from "./helpers/tcp-host.mjs";
import { BIN, CONTRACT, WAIT_MS, within } from "./helpers/worker.mjs";

const REFUSED = /refused a connection from /g;

/** Resolves once `read()` matches `pattern` (polled), or rejects naming it after WAIT_MS. */
async function eventually(read, pattern) {
  const deadline = Date.now() + WAIT_MS;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function refusals(text) {
  return (text.match(REFUSED) ?? []).length;
}

describe("the token proof", () => {
  test("is HMAC-SHA256(token, nonce || 'snakepit.v1'), as the Python host computes it", () => {
    const nonce = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    // hmac.new(TOKEN, bytes(range(32)) + b"snakepit.v1", hashlib.sha256).hexdigest()
    const expected = "3dd626f7ab97f54276f89d441b285c011fe002e96dc652996ea20edf90107bae";
    assert.equal(proof(Buffer.from(TOKEN), nonce).toString("hex"), expected);
  });

  test("only the right 32 bytes are valid", () => {
    const token = Buffer.from(TOKEN);
    const nonce = Buffer.alloc(32, 7);
    const good = proof(token, nonce);
    assert.equal(proofIsValid(token, nonce, good), true);
    assert.equal(proofIsValid(token, nonce, new Uint8Array(good)), true);
    assert.equal(proofIsValid(token, nonce, proof(Buffer.from("another token"), nonce)), false);
    assert.equal(proofIsValid(token, Buffer.alloc(32, 8), good), false);
    assert.equal(proofIsValid(token, nonce, good.subarray(0, 31)), false);
    assert.equal(proofIsValid(token, nonce, Buffer.concat([good, Buffer.alloc(1)])), false);
    assert.equal(proofIsValid(token, nonce, good.toString("hex")), false);
    assert.equal(proofIsValid(token, nonce, null), false);
  });

  test("the token file: its bytes without surrounding whitespace; an empty one is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "spw-token-"));
    try {
      writeFileSync(join(dir, "t"), " \t secret value\r\n\n");
      assert.equal(readToken(join(dir, "t")).toString(), "secret value");
      writeFileSync(join(dir, "empty"), " \n\t");
      assert.throws(() => readToken(join(dir, "empty")), /the token file .*empty is empty: put a secret/);
      assert.throws(() => readToken(join(dir, "missing")), { code: "ENOENT" });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe("--listen addresses", () => {
  test("tcp://HOST:PORT, an IPv6 host in brackets, port 0", () => {
    assert.deepEqual(parseTcpUrl("tcp://127.0.0.1:7100"), { host: "127.0.0.1", port: 7100 });
    assert.deepEqual(parseTcpUrl("tcp://[::1]:0"), { host: "::1", port: 0 });
    assert.deepEqual(parseTcpUrl("TCP://LocalHost:5/"), { host: "localhost", port: 5 });
  });

  const wrong = [
    ["http://127.0.0.1:1", "the scheme must be tcp"],
    ["127.0.0.1:1", "the scheme must be tcp"],
    ["tcp://127.0.0.1", "give both a host and a port"],
    ["tcp://:7100", "give both a host and a port"],
    ["tcp://h:x", "Port could not be cast to integer value as 'x'"],
    ["tcp://h:70000", "Port out of range 0-65535"],
    ["tcp://[::1:5", "Invalid IPv6 URL"],
    ["tcp://h:5/path", "drop what follows the port"],
    ["tcp://h:5?q=1", "drop what follows the port"],
    ["tcp://user@h:5", "drop what follows the port"],
  ];
  for (const [url, why] of wrong) {
    test(`${url}: ${why}`, () => {
      assert.throws(() => parseTcpUrl(url), { message: `'${url}' is not tcp://HOST:PORT: ${why}` });
    });
  }
});

test("each connection gets no Nagle delay and keepalive", () => {
  const calls = [];
  tuneSocket({ setNoDelay: (...a) => calls.push(["noDelay", ...a]), setKeepAlive: (...a) => calls.push(["keepAlive", ...a]) });
  assert.deepEqual(calls, [
    ["noDelay", true],
    ["keepAlive", true, 30_000],
  ]);
});

describe("the gate, in this process", () => {
  const token = Buffer.from(TOKEN);
  let logged = "";
  let realWrite;
  before(() => {
    realWrite = process.stderr.write;
    process.stderr.write = (text) => {
      logged += text;
      return true;
    };
  });
  after(() => {
    process.stderr.write = realWrite;
  });

  /** A gate on 127.0.0.1 that records whom it admits; `close` it. */
  async function openGate({ secure = false, handshakeMs } = {}) {
    const admitted = [];
    const gate = new TcpGate({
      token,
      tls: secure ? serverTls(TLS_FILES.cert, TLS_FILES.key) : null,
      admit: (socket, leftover) => admitted.push({ socket, leftover }),
      handshakeMs,
    });
    gate.port = await gate.listen("127.0.0.1", 0);
    gate.admitted = admitted;
    return gate;
  }

  for (const secure of [false, true]) {
    test(`${secure ? "TLS" : "plain"}: a fresh nonce each time; what follows the proof is handed over with the socket`, async () => {
      const gate = await openGate({ secure });
      const sockets = [];
      try {
        const nonces = [];
        for (const extra of [message([w.hello([])]), Buffer.alloc(0)]) {
          const socket = await connect(gate.port, { secure });
          sockets.push(socket);
          const nonce = await firstMessage(socket);
          assert.ok(nonce instanceof Uint8Array && nonce.byteLength === 32);
          nonces.push(Buffer.from(nonce).toString("hex"));
          socket.write(Buffer.concat([message(proof(token, nonce)), extra]));
          await eventually(() => String(gate.admitted.length), new RegExp(`^${sockets.length}$`));
          assert.deepEqual(Buffer.from(gate.admitted.at(-1).leftover), extra);
        }
        assert.notEqual(nonces[0], nonces[1]);
        assert.equal(gate.admitted[0].socket.encrypted === true, secure);
      } finally {
        gate.close();
        for (const socket of sockets) socket.destroy();
        for (const { socket } of gate.admitted) socket.destroy();
      }
    });
  }

  test("a peer that never proves the token is dropped after the handshake time, logged once", async () => {
    const gate = await openGate({ handshakeMs: 300 });
    logged = "";
    try {
      const socket = await connect(gate.port);
      assert.ok((await firstMessage(socket)) instanceof Uint8Array);
      assert.equal(await closes(socket), true);
      assert.equal(refusals(logged), 1, logged);
      assert.match(logged, /refused a connection from 127\.0\.0\.1:\d+: no token proof in time/);
      assert.equal(gate.admitted.length, 0);
    } finally {
      gate.close();
    }
  });

  test("a peer that never starts TLS is dropped after the handshake time, logged once", async () => {
    const gate = await openGate({ secure: true, handshakeMs: 300 });
    logged = "";
    try {
      const socket = await new Promise((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port: gate.port }, () => resolve(s));
      });
      assert.equal(await closes(socket), true);
      assert.equal(refusals(logged), 1, logged);
      assert.match(logged, /TLS handshake failed \(no handshake in time\)/);
    } finally {
      gate.close();
    }
  });

  test("a peer that closes before proving is logged once", async () => {
    const gate = await openGate();
    logged = "";
    try {
      const socket = await connect(gate.port);
      assert.ok((await firstMessage(socket)) instanceof Uint8Array);
      socket.end(message(Buffer.alloc(0)).subarray(0, 2)); // half a header, then nothing
      await eventually(() => logged, REFUSED);
      assert.match(logged, /it closed the connection before proving the token/);
      assert.equal(refusals(logged), 1, logged);
    } finally {
      gate.close();
    }
  });

  test("close() drops the peers still in the handshake", async () => {
    const gate = await openGate();
    const socket = await connect(gate.port);
    assert.ok((await firstMessage(socket)) instanceof Uint8Array);
    gate.close();
    assert.equal(await closes(socket), true);
  });
});

describe("a worker listening on TCP", () => {
  for (const secure of [false, true]) {
    test(`${secure ? "TLS" : "plain"}: READY <pid> <port> on stdout; hosts that prove the token are served`, async () => {
      const worker = await startListening({ secure });
      try {
        const first = await openHost(worker.port, { secure });
        assert.equal(first.describe.pid, worker.pid);
        assert.equal(first.describe.runtime, "node");
        first.call(1, "echo", { value: [1, "two", Uint8Array.from([3])] });
        assert.deepEqual(valueOf(await first.final(1)), [1, "two", Uint8Array.from([3])]);
        const second = await openHost(worker.port, { secure }); // a second host, a fresh nonce
        second.call(1, "add", { a: 2, b: 3 });
        assert.equal(valueOf(await second.final(1)), 5);
        first.close();
        second.close();
        worker.child.kill("SIGTERM");
        assert.deepEqual(await within(worker.exited, "exit on SIGTERM"), { code: 0, signal: null });
        assert.equal(worker.stderr, "");
        assert.ok(!worker.stdout.includes(TOKEN));
      } finally {
        await worker.kill();
      }
    });
  }

  test("several hosts at once: each its own calls, served side by side", async () => {
    const worker = await startListening({ secure: true, args: ["--capacity", "2"] });
    try {
      const slow = await openHost(worker.port, { secure: true });
      const quick = await openHost(worker.port, { secure: true });
      slow.call(1, "sleep", { seconds: 30 });
      quick.call(1, "echo", { value: "first" }); // the same id on another connection
      assert.equal(valueOf(await quick.final(1)), "first");
      slow.close(); // its host is gone: its call is cancelled, the other host goes on
      quick.call(2, "echo", { value: "still" });
      assert.equal(valueOf(await quick.final(2)), "still");
      quick.close();
      assert.deepEqual(slow.violations, []);
      assert.deepEqual(quick.violations, []);
    } finally {
      await worker.kill();
    }
  });

  test("an IPv6 address in brackets", async (t) => {
    if (!(await ipv6Loopback())) return t.skip("this machine has no IPv6 loopback");
    const worker = await startListening({ listen: "tcp://[::1]:0", secure: true });
    try {
      const host = await openHost(worker.port, { secure: true, host: "::1" });
      host.call(1, "echo", { value: 6 });
      assert.equal(valueOf(await host.final(1)), 6);
      host.close();
    } finally {
      await worker.kill();
    }
  });

  test("with --ready-fd, READY <pid> <port> goes there and stdout stays quiet", async () => {
    const tokens = tokenFile();
    const argv = [BIN, "--adapter", CONTRACT, "--listen", "tcp://127.0.0.1:0", "--token-file", tokens, "--ready-fd", "3"];
    const child = spawn(process.execPath, argv, { stdio: ["pipe", "pipe", "pipe", "pipe"], detached: true });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (text) => {
      stdout += text;
    });
    try {
      const ready = await within(
        new Promise((resolve) => {
          let text = "";
          child.stdio[3].setEncoding("utf8").on("data", (chunk) => {
            text += chunk;
          });
          child.stdio[3].on("close", () => resolve(text));
        }),
        "READY on fd 3",
      );
      const match = /^READY (\d+) (\d+)\n$/.exec(ready);
      assert.ok(match, ready);
      assert.equal(Number(match[1]), child.pid);
      const host = await openHost(Number(match[2]));
      host.close();
      child.kill("SIGTERM");
      assert.equal(await within(exited, "exit"), 0);
      assert.equal(stdout, "");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      rmSync(join(tokens, ".."), { recursive: true, force: true });
    }
  });
});

test("an address it cannot listen on: exit 1 before READY, saying why", async () => {
  const taken = net.createServer();
  await new Promise((resolve) => taken.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const tokens = tokenFile();
  try {
    const argv = [BIN, "--adapter", CONTRACT, "--listen", `tcp://127.0.0.1:${taken.address().port}`, "--token-file", tokens];
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text) => {
      stdout += text;
    });
    child.stderr.setEncoding("utf8").on("data", (text) => {
      stderr += text;
    });
    const code = await within(new Promise((resolve) => child.once("close", resolve)), "the worker's exit");
    assert.equal(code, 1, stderr);
    assert.match(stderr, /snakepit worker: cannot listen: .*EADDRINUSE/);
    assert.equal(stdout, "", "no READY");
  } finally {
    taken.close();
    rmSync(join(tokens, ".."), { recursive: true, force: true });
  }
});

describe("refused peers: logged once each, and the worker keeps serving", () => {
  let worker;
  before(async () => {
    worker = await startListening({ secure: true });
  });
  after(async () => {
    await worker?.kill();
  });

  /** Run `refused`, wait for its log line; then a proper host is still welcome. */
  async function refusedThenServed(refused) {
    const before = refusals(worker.stderr);
    await refused();
    await eventually(() => String(refusals(worker.stderr) - before), /^[1-9]/);
    const host = await openHost(worker.port, { secure: true });
    assert.equal(host.describe.pid, worker.pid);
    host.close();
    assert.equal(refusals(worker.stderr) - before, 1, worker.stderr);
  }

  test("a wrong token", async () => {
    await refusedThenServed(async () => {
      const socket = await connect(worker.port, { secure: true });
      const nonce = await firstMessage(socket);
      socket.write(Buffer.concat([message(proof(Buffer.from("not-the-token"), nonce)), message([w.hello([])])]));
      assert.equal(await closes(socket), true, "no WELCOME, nothing at all");
    });
    assert.match(worker.stderr, /wrong token proof \(the host's token differs from this worker's\)/);
    assert.ok(!worker.stderr.includes(TOKEN) && !worker.stderr.includes("not-the-token"));
  });

  test("a plaintext client to a TLS worker", async () => {
    await refusedThenServed(async () => {
      const socket = await connect(worker.port);
      socket.write(message([w.hello([])]));
      const answer = await firstMessage(socket).catch(() => null);
      assert.ok(!Array.isArray(answer), "nothing of the lane reached it");
      socket.destroy();
    });
    assert.match(worker.stderr, /TLS handshake failed \(/);
  });

  const junk = [
    ["a length far over a proof's", Buffer.from([0, 1, 2, 3].flatMap((b) => Array(64).fill(b)))],
    ["not msgpack", Buffer.from([3, 0, 0, 0, 0xc1, 0xc1, 0xc1])],
    ["a string, not 32 bytes", message("a string, not 32 bytes")],
    ["HELLO without the proof first", message([w.hello([])])],
  ];
  for (const [what, bytes] of junk) {
    test(`junk instead of a proof: ${what}`, async () => {
      await refusedThenServed(async () => {
        const socket = await connect(worker.port, { secure: true });
        assert.ok((await firstMessage(socket)) instanceof Uint8Array);
        socket.write(bytes);
        assert.equal(await closes(socket), true);
      });
    });
  }
});

describe("bad --listen options: exit 2, saying what to change", () => {
  const dir = mkdtempSync(join(tmpdir(), "spw-args-"));
  const tokens = join(dir, "token");
  writeFileSync(tokens, `${TOKEN}\n`);
  writeFileSync(join(dir, "empty"), "\n");
  writeFileSync(join(dir, "not-pem"), "not a certificate\n");
  after(() => rmSync(dir, { recursive: true, force: true }));
  const T = ["--token-file", tokens];
  const cases = [
    [["--listen", "tcp://127.0.0.1:0"], "--listen needs --token-file"],
    [["--listen", "http://127.0.0.1:1", ...T], "the scheme must be tcp"],
    [["--listen", "tcp://127.0.0.1", ...T], "give both a host and a port"],
    [["--listen", "tcp://127.0.0.1:0", ...T, "--tls-cert", TLS_FILES.cert], "or neither"],
    [["--listen", "tcp://127.0.0.1:0", "--token-file", join(dir, "empty")], "is empty"],
    [["--listen", "tcp://127.0.0.1:0", "--token-file", join(dir, "missing")], "--token-file: ENOENT"],
    [["--listen", "tcp://127.0.0.1:0", ...T, "--tls-cert", join(dir, "not-pem"), "--tls-key", TLS_FILES.key], "--tls-cert/--tls-key: cannot load them"],
    [["--socket", "s", ...T], "go with --listen"],
    [["--socket", "s", "--lane", "l", "--listen", "tcp://127.0.0.1:0", ...T], "--lane and --listen: give one"],
    [["--socket", "s", "--orphan-timeout", "5"], "go with --listen"],
    [["--listen", "tcp://127.0.0.1:0", ...T, "--orphan-timeout", "0"], "--orphan-timeout must be a positive number"],
    [["--listen", "tcp://127.0.0.1:0", ...T, "--orphan-timeout", "soon"], "--orphan-timeout must be a positive number"],
    [["--listen", "tcp://127.0.0.1:0", ...T, "--orphan-timeout", "Infinity"], "--orphan-timeout must be a positive number"],
    [[], "give --socket (started by a host) or --listen tcp://HOST:PORT"],
  ];
  for (const [args, expected] of cases) {
    test(expected, async () => {
      const done = spawnSync(process.execPath, [BIN, "--adapter", CONTRACT, ...args], { encoding: "utf8", timeout: WAIT_MS });
      assert.equal(done.status, 2, done.stderr);
      assert.ok(done.stderr.includes(expected), done.stderr);
      assert.ok(!(done.stderr + done.stdout).includes(TOKEN));
    });
  }
});

/** Whether ::1 can be listened on here. */
function ipv6Loopback() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: "::1", port: 0 }, () => server.close(() => resolve(true)));
  });
}
