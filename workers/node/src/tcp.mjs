// TCP for "Carrier 1 over TCP" (--listen tcp://HOST:PORT): the address, the listening
// socket, the options of each connection, and the TLS 1.3 context. As the Python worker's
// snakepit_trio/_shared/_tcp.py and worker/_lane.py do it, with the same messages.

import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { X509Certificate } from "node:crypto";

const KEEPALIVE_IDLE_MS = 30_000; // then probes find a dead peer (Node sets their pace)
const BACKLOG = 128;

/**
 * `tcp://HOST:PORT` (an IPv6 host in brackets) as `{host, port}`, as Python's urlsplit
 * reads it (the host in lower case).
 * @throws {Error} not of that form, naming what is wrong
 */
export function parseTcpUrl(url) {
  const wrong = (why) => new Error(`'${url}' is not tcp://HOST:PORT: ${why}`);
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/s.exec(url);
  if (match === null) throw wrong("the scheme must be tcp");
  const [, scheme, netloc, rest] = match;
  const hostinfo = netloc.slice(netloc.lastIndexOf("@") + 1);
  let host;
  let portText;
  if (hostinfo.includes("[")) {
    const close = hostinfo.indexOf("]");
    if (close < 0) throw wrong("Invalid IPv6 URL");
    host = hostinfo.slice(hostinfo.indexOf("[") + 1, close);
    const after = hostinfo.slice(close + 1);
    portText = after.includes(":") ? after.slice(after.indexOf(":") + 1) : "";
  } else {
    const colon = hostinfo.indexOf(":");
    host = colon < 0 ? hostinfo : hostinfo.slice(0, colon);
    portText = colon < 0 ? "" : hostinfo.slice(colon + 1);
  }
  let port = null;
  if (portText !== "") {
    if (!/^[0-9]+$/.test(portText)) throw wrong(`Port could not be cast to integer value as '${portText}'`);
    port = Number(portText);
    if (port > 65535) throw wrong("Port out of range 0-65535");
  }
  if (scheme.toLowerCase() !== "tcp") throw wrong("the scheme must be tcp");
  if (!host || port === null) throw wrong("give both a host and a port");
  if (!["", "/"].includes(rest) || netloc.includes("@")) throw wrong("drop what follows the port");
  return { host: host.toLowerCase(), port };
}

/**
 * Listen on `server` at `host`:`port` (0: any free port); resolves to the port it took.
 * A name is looked up as IPv4, as the Python worker does; an IPv6 host listens on IPv6 only.
 */
export async function listenTcp(server, host, port) {
  const family = host.includes(":") ? 6 : 4;
  const { address } = await lookup(host, { family });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: address, port, backlog: BACKLOG, ipv6Only: family === 6 }, () => {
      server.off("error", reject);
      resolve(server.address().port);
    });
  });
}

/** No Nagle delay (frames are small and latency-bound); keepalive finds dead peers. */
export function tuneSocket(socket) {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEPALIVE_IDLE_MS);
}

/**
 * The TLS of a worker serving with this certificate chain and key: TLS 1.3 only. With
 * `clientCaPath`, mutual TLS: hosts must present a certificate that CA signed.
 * @returns {{secureContext: import("node:tls").SecureContext, requestCert: boolean}}
 * @throws {Error} a file cannot be read, or they are not a matching PEM chain and key
 */
export function serverTls(certPath, keyPath, clientCaPath = "") {
  const options = { cert: readFileSync(certPath), key: readFileSync(keyPath), minVersion: "TLSv1.3" };
  if (clientCaPath) {
    options.ca = readFileSync(clientCaPath);
    // Node drops what is not a certificate without a word: a file of anything else would
    // leave no CA, and every host refused. Parsing it says what is wrong instead.
    new X509Certificate(options.ca);
  }
  return { secureContext: tls.createSecureContext(options), requestCert: Boolean(clientCaPath) };
}
