// The door of "Carrier 1 over TCP": each peer that connects gets TLS (when the worker has a
// certificate), then the worker's nonce, and must answer with the token proof
// (token-proof.mjs) within HANDSHAKE_MS. Only then is it admitted, as a lane connection
// like any other. A peer that fails TLS, sends a wrong proof or anything else, closes
// early, or stays silent is logged once ("refused a connection from ...") and closed; the
// other connections are not disturbed.
//
// Each admitted connection is served on its own, as the Python worker does: several hosts
// may share a worker, each with its own calls.

import net from "node:net";
import tls from "node:tls";
import { LANE_HEADER_BYTES } from "./frames.mjs";
import { log } from "./log.mjs";
import { frameMessage } from "./messages.mjs";
import { pack, unpack } from "./msgpack.mjs";
import { listenTcp, tuneSocket } from "./tcp.mjs";
import { newNonce, proofIsValid } from "./token-proof.mjs";

/** A peer's time to finish TLS and prove the token. */
export const HANDSHAKE_MS = 10_000;
// A proof is a msgpack bin of 32 bytes (34 bytes); a first message longer than this is not one.
const MAX_PROOF_MESSAGE = 64;

export class TcpGate {
  #server;
  #pending = new Set(); // raw sockets still in TLS or the token proof

  /**
   * @param {object} options
   * @param {Uint8Array} options.token the token peers must prove
   * @param {{secureContext: import("node:tls").SecureContext, requestCert: boolean}|null} options.tls
   *   TLS 1.3 (`requestCert`: mutual, the host's certificate checked), or null (plain TCP)
   * @param {(socket: import("node:net").Socket, leftover: Buffer) => void} options.admit
   *   serves a peer that proved the token; `leftover` is what it sent after the proof
   * @param {number} [options.handshakeMs] the time a peer has (HANDSHAKE_MS)
   */
  constructor({ token, tls, admit, handshakeMs = HANDSHAKE_MS }) {
    this.token = token;
    this.tls = tls;
    this.admit = admit;
    this.handshakeMs = handshakeMs;
    // allowHalfOpen: a host that has sent its last frame still gets its results.
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#greet(socket));
    this.#server.on("error", (error) => log.error("the TCP listening socket failed", error));
  }

  /** Listen on `host`:`port` (0: any free port); resolves to the port it listens on. */
  listen(host, port) {
    return listenTcp(this.#server, host, port);
  }

  /** Accept no more peers; drop those not admitted yet. */
  close() {
    this.#server.close();
    for (const raw of this.#pending) raw.destroy();
    this.#pending.clear();
  }

  #greet(raw) {
    const peer = peerName(raw);
    const nonce = newNonce(); // fresh for each connection: a proof cannot be replayed
    this.#pending.add(raw);
    raw.on("error", () => {}); // reported through the socket that wraps it, or by `refuse`
    let socket = raw;
    let secured = this.tls === null;
    let chunks = [];
    let buffered = 0;
    let settled = false;

    const settle = () => {
      settled = true;
      clearTimeout(timer);
      this.#pending.delete(raw);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
      socket.off("error", onError);
    };
    const refuse = (reason) => {
      if (settled) return;
      settle();
      log.warning(`refused a connection from ${peer}: ${reason}`);
      socket.on("error", () => {}); // what TLS still reports is said already
      socket.destroy();
      raw.destroy();
    };
    const onError = (error) =>
      refuse(secured ? `the connection failed: ${error.message}` : `TLS handshake failed (${tlsReason(error)})`);
    const onEnd = () =>
      refuse(secured ? "it closed the connection before proving the token" : "TLS handshake failed (the peer closed the connection)");
    const onData = (chunk) => {
      chunks.push(chunk);
      buffered += chunk.length;
      if (buffered < LANE_HEADER_BYTES) return;
      const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
      chunks = [bytes];
      const size = bytes.readUInt32LE(0);
      if (size > MAX_PROOF_MESSAGE) return refuse("its first message is not a token proof");
      if (buffered < LANE_HEADER_BYTES + size) return;
      let given;
      try {
        given = unpack(bytes.subarray(LANE_HEADER_BYTES, LANE_HEADER_BYTES + size));
      } catch {
        return refuse("its first message is not a token proof");
      }
      if (!proofIsValid(this.token, nonce, given)) {
        return refuse("wrong token proof (the host's token differs from this worker's)");
      }
      settle();
      this.admit(socket, bytes.subarray(LANE_HEADER_BYTES + size));
    };
    const timer = setTimeout(
      () => refuse(secured ? "no token proof in time" : "TLS handshake failed (no handshake in time)"),
      this.handshakeMs,
    );

    const challenge = () => {
      secured = true;
      socket.on("data", onData);
      for (const part of frameMessage(pack(nonce))) socket.write(part);
    };
    try {
      tuneSocket(raw);
    } catch (error) {
      return refuse(`the connection failed: ${error.message}`);
    }
    if (this.tls !== null) {
      const { secureContext, requestCert } = this.tls;
      // requestCert: only hosts whose certificate the client CA signed finish the handshake.
      socket = new tls.TLSSocket(raw, { isServer: true, secureContext, requestCert, rejectUnauthorized: requestCert });
      socket.once("secure", () => {
        if (settled) return;
        // A TLSSocket made by hand gets no verdict on the host's certificate (tls.Server
        // computes `authorized` only for sockets it makes): ask OpenSSL's, as tls.Server does.
        if (requestCert) {
          const error = socket._handle?.verifyError?.();
          if (error !== null) return refuse(`TLS handshake failed (${error?.code ?? "no verdict on the host's certificate"})`);
        }
        challenge();
      });
    }
    socket.on("end", onEnd);
    socket.on("close", onEnd);
    socket.on("error", onError);
    if (this.tls === null) challenge();
  }
}

/** "127.0.0.1:5000", "[::1]:5000", or "an unknown peer" (it left already). */
function peerName(socket) {
  const { remoteAddress: address, remotePort: port } = socket;
  if (address === undefined) return "an unknown peer";
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** What OpenSSL said, in a few words ("wrong version number"), or the error's message. */
function tlsReason(error) {
  return error.reason ?? error.code ?? error.message;
}
