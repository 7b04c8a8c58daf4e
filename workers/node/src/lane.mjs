// The local lane: the Connect stream's msgpack batches over a plain unix socket, each
// prefixed with its length (messages.mjs). No HTTP/2, no protobuf per message: a round trip
// costs a fraction of gRPC's.
//
// Handshake: the host's first message is [[HELLO, protocol, capabilities]]; the worker
// answers with a message whose first frame is [WELCOME, describe]. A message that starts
// with HELLO is answered so whenever it comes. After that both sides send freely.
// A message over the limit (max payload + 2 MiB) ends reading: the calls already running
// finish and their frames are sent, then the connection closes. An undecodable message is
// ignored. An error on the socket closes it and cancels its calls.
//
// Over TCP (--listen, `startTcp`) the same messages run, inside TLS 1.3 when the worker has
// a certificate, once the peer has proved the token (tcp-gate.mjs).

import net from "node:net";
import { Connection } from "./connection.mjs";
import * as w from "./frames.mjs";
import { log } from "./log.mjs";
import { MessageReader, frameMessage } from "./messages.mjs";
import { unpack } from "./msgpack.mjs";
import { Outflow } from "./outflow.mjs";
import { listenUnix } from "./sockets.mjs";
import { TcpGate } from "./tcp-gate.mjs";

const COPY_BELOW = 1 << 16; // a message this small is copied once rather than written in parts

export class LaneServer {
  #server;
  #gate = null; // the TCP listener, with --listen
  #connections = new Set(); // {conn, socket, outflow, tcp, heard}
  // When a host last sent anything (a batch): --orphan-timeout measures the hosts' absence
  // from it. It starts now, so a worker no host ever reaches is an orphan in time too.
  lastHeard = performance.now();

  /**
   * @param {import("./runtime.mjs").Runtime} runtime
   * @param {object} describe the WELCOME map
   * @param {number} maxMessage the longest message read (max payload + 2 MiB)
   */
  constructor(runtime, describe, maxMessage) {
    this.runtime = runtime;
    this.describe = describe;
    this.maxMessage = maxMessage;
    // allowHalfOpen: a host that has sent its last frame still gets its results.
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#serve(socket));
    this.#server.on("error", (error) => log.error("the lane's listening socket failed", error));
  }

  start(path) {
    return listenUnix(this.#server, path);
  }

  /**
   * Serve on TCP too, for peers that prove `token` (over TLS when `tls` is a context).
   * @returns {Promise<number>} the port it listens on (`port` 0: any free one)
   */
  startTcp(host, port, token, tls) {
    this.#gate = new TcpGate({ token, tls, admit: (socket, leftover) => this.#serve(socket, leftover, true) });
    return this.#gate.listen(host, port);
  }

  /**
   * End each TCP connection whose host has sent nothing for `timeoutMs`: its calls are
   * cancelled, as when a host closes its connection (a host lost without a FIN would hold
   * their slots until TCP keepalive noticed, or forever behind a middlebox).
   */
  dropSilent(timeoutMs) {
    const now = performance.now();
    for (const entry of this.#connections) {
      if (entry.tcp && now - entry.heard >= timeoutMs && !entry.socket.destroyed) {
        log.warning(
          `dropping a connection from ${entry.socket.remoteAddress}:${entry.socket.remotePort}: ` +
            `its host sent nothing for ${timeoutMs / 1000} s (--orphan-timeout)`,
        );
        entry.socket.destroy();
      }
    }
  }

  /** Serve the connection on `socket`; `leftover`: bytes of it already read (TCP). */
  #serve(socket, leftover = null, tcp = false) {
    const reader = new MessageReader(this.maxMessage);
    const outflow = new Outflow({
      write: (batches, resume) => {
        const parts = batches.flatMap(frameMessage);
        let flowing;
        if (batches.length === 1 && batches[0].byteLength < COPY_BELOW) {
          flowing = socket.write(Buffer.concat(parts)); // one small write beats a writev
        } else {
          // Corked: the messages leave in one writev, without copying their payloads again.
          socket.cork();
          for (const part of parts) flowing = socket.write(part);
          socket.uncork();
        }
        if (!flowing) socket.once("drain", resume);
        return flowing;
      },
      finish: () => socket.end(() => socket.destroy()),
      abort: () => socket.destroy(),
    });
    const conn = new Connection(this.runtime, outflow.wake);
    outflow.attach(conn);
    const entry = { conn, socket, outflow, tcp, heard: performance.now() };
    this.#connections.add(entry);

    const stopReading = () => {
      if (conn.readingDone) return;
      conn.readingDone = true;
      socket.pause();
      outflow.wake(); // it may have finished already
    };
    const onData = (chunk) => {
      if (conn.readingDone) return;
      this.lastHeard = entry.heard = performance.now();
      try {
        for (const message of reader.push(chunk)) this.#receive(conn, message);
      } catch (error) {
        // A bug of this worker: closing beats dropping the host's frames without a word.
        log.error("handling a lane message failed; closing the connection", error);
        socket.destroy();
        return;
      }
      if (reader.refused !== null) {
        log.warning(`a lane message of ${reader.refused} bytes is over the limit of ${this.maxMessage}; closing the lane connection`);
        stopReading();
      }
    };
    socket.on("data", onData);
    socket.on("end", stopReading);
    socket.on("error", (error) => {
      if (error.code !== "EPIPE" && error.code !== "ECONNRESET") log.warning(`the lane connection failed: ${error.message}`);
    });
    socket.on("close", () => {
      outflow.stop();
      conn.close(); // its calls are cancelled: nobody is left to answer
      this.#connections.delete(entry);
    });
    if (leftover !== null && leftover.length > 0) onData(leftover); // HELLO sent with the proof
  }

  #receive(conn, message) {
    let frames;
    try {
      frames = unpack(message);
    } catch {
      log.warning(`ignoring an undecodable lane batch of ${message.length} bytes`);
      return;
    }
    if (Array.isArray(frames) && frames.length > 0 && isHello(frames[0])) conn.emit(w.welcome(this.describe));
    conn.handle(frames); // HELLO included: it says what the host serves
  }

  /**
   * Stop accepting; each connection sends what it owes, then closes (within `timeoutMs`).
   * Called once the runtime has drained, so no call is left to wait for.
   */
  async close(timeoutMs = 2000) {
    this.#server.close();
    this.#gate?.close();
    const closed = [...this.#connections].map(
      ({ conn, socket, outflow }) =>
        new Promise((resolve) => {
          if (socket.destroyed) return resolve();
          socket.once("close", resolve);
          conn.readingDone = true; // take nothing more; leave once the outbox is sent
          outflow.wake();
        }),
    );
    const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.all(closed), timer]);
    for (const { socket } of this.#connections) socket.destroy();
  }
}

function isHello(frame) {
  try {
    return w.parseFromHost(frame).frameKind === w.HELLO;
  } catch {
    return false;
  }
}
