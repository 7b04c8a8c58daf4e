// Diagnostics go to stderr only: the host reads a worker's stdout and stderr as the
// adapter's own output, so the worker itself stays quiet unless something is really wrong.
// SNAKEPIT_WORKER_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR) is the Python worker's variable.

import { inspect } from "node:util";

const LEVELS = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };
const threshold =
  LEVELS[String(process.env.SNAKEPIT_WORKER_LOG_LEVEL ?? "WARNING").toUpperCase()] ?? LEVELS.WARNING;

function write(level, message, error) {
  if (LEVELS[level] < threshold) return;
  let text = `${level} snakepit_trio.worker: ${message}\n`;
  if (error !== undefined) text += `${stackOf(error)}\n`;
  try {
    process.stderr.write(text);
  } catch {
    // stderr is gone (the host closed its pipe): nothing is left to report to.
  }
}

/** The stack of what was thrown, whatever it is (a getter that throws included). */
export function stackOf(error) {
  try {
    if (error instanceof Error && typeof error.stack === "string") return error.stack;
    return inspect(error);
  } catch {
    return "<an error that cannot be shown>";
  }
}

export const log = {
  debug: (message, error) => write("DEBUG", message, error),
  info: (message, error) => write("INFO", message, error),
  warning: (message, error) => write("WARNING", message, error),
  error: (message, error) => write("ERROR", message, error),
};
