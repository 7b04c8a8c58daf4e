// Unix sockets the worker serves on: created fresh, readable and writable by its user only.

import { chmodSync, lstatSync, unlinkSync } from "node:fs";

/** Remove a stale socket left at `path` by a worker that died (never a regular file). */
export function removeStaleSocket(path) {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (error) {
    if (error.code !== "ENOENT") throw error;
  }
}

/** Listen on `server` at unix socket `path`, readable and writable by this user only. */
export function listenUnix(server, path) {
  removeStaleSocket(path);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      chmodSync(path, 0o600);
      resolve();
    });
  });
}
