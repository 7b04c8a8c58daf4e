// The worker process's ties to its host: it never outlives it, and it opens no door.
//
// - --watch-stdin: the host holds the write end of our stdin; when it dies the pipe closes,
//   and the worker takes its process group down and exits at once.
// - --host-pid: a host that is already gone at start means exit now; the pid is also polled
//   (Node.js has no prctl(PR_SET_PDEATHSIG)), and its death, or our re-parenting away from
//   it, ends the worker the same way.
// - SIGUSR1: Node.js starts its inspector (a debugger port) on SIGUSR1 unless a handler is
//   set. bin/snakepit-worker.mjs sets one before anything else loads; here it checks whether
//   the host is gone, as the Python worker's parent-death signal does.
// - SIGINT is ignored: the host owns cancellation, so Ctrl-C in a terminal reaches it only.

import { readFileSync, readdirSync } from "node:fs";

export const EXIT_HOST_GONE = 70;
const POLL_MS = 500;
const POOL_TOKEN = "SNAKEPIT_TRIO_POOL";
const WORKER_ID = "SNAKEPIT_TRIO_WORKER";

/** The fields of /proc/<pid>/stat after the command name, or null (not Linux, or gone). */
function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Whether process `pid` is gone (a zombie counts as gone: it will never answer). */
export function processGone(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code === "ESRCH") return true;
    if (error.code !== "EPERM") throw error;
  }
  return stat(pid)?.[0] === "Z";
}

/** The pids of this process's descendants (Linux; elsewhere none). */
function descendants() {
  const children = new Map(); // ppid -> [pid]
  let entries;
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const fields = stat(name);
    if (fields === null) continue;
    const ppid = Number(fields[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const todo = [process.pid];
  while (todo.length) {
    for (const child of children.get(todo.pop()) ?? []) {
      out.push(child);
      todo.push(child);
    }
  }
  return out;
}

/** Processes that carry this worker's tags (a daemon that double-forked away from us). */
function tagged(token, workerId) {
  const found = [];
  let entries;
  try {
    entries = readdirSync("/proc");
  } catch {
    return found;
  }
  const wanted = [`${POOL_TOKEN}=${token}`, `${WORKER_ID}=${workerId}`];
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${name}/environ`, "latin1").split("\0");
      if (wanted.every((entry) => env.includes(entry))) found.push(Number(name));
    } catch {
      // Another user's process, or gone: not ours.
    }
  }
  return found;
}

function kill(pid, signal = "SIGKILL") {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

/**
 * The host is gone: take everything this worker started down with it, now, and exit.
 * Its descendants (also those that left its process group), any process still carrying
 * its tags, then its group when it leads one (the host starts it in a session of its own).
 */
export function killOwnGroup() {
  try {
    for (const pid of descendants()) kill(pid);
    const token = process.env[POOL_TOKEN];
    const workerId = process.env[WORKER_ID];
    if (token && workerId) for (const pid of tagged(token, workerId)) kill(pid);
    if (Number(stat(process.pid)?.[2]) === process.pid) kill(-process.pid);
  } finally {
    process.exit(EXIT_HOST_GONE);
  }
}

/** Exit with the host: on stdin's end (the pipe closes when the host dies). */
export function watchStdin() {
  const stdin = process.stdin;
  stdin.on("data", () => {}); // the host writes nothing; reading is how its end is seen
  stdin.on("end", killOwnGroup);
  stdin.on("error", killOwnGroup);
  stdin.on("close", killOwnGroup);
}

/**
 * Exit with the host: now if it is already gone, else as soon as a poll finds it gone or
 * this process re-parented away from it (it was our parent, and the kernel gave us to init).
 */
export function watchHost(hostPid) {
  if (!hostPid) return;
  // process.ppid is read once at startup: the live parent is in /proc (Linux).
  const parent = () => Number(stat(process.pid)?.[1] ?? process.ppid);
  const wasParent = parent() === hostPid;
  const gone = () => (wasParent && parent() !== hostPid) || processGone(hostPid);
  if (gone()) killOwnGroup();
  setInterval(() => {
    if (gone()) killOwnGroup();
  }, POLL_MS).unref();
  // SIGUSR1 was made harmless by the entry script; here it also checks on the host.
  process.on("SIGUSR1", () => {
    if (gone()) killOwnGroup();
  });
}

/** Ctrl-C in a terminal is the host's to handle. */
export function ignoreInterrupts() {
  process.on("SIGINT", () => {});
}
