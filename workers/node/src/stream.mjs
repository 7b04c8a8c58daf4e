// A streaming call: its tool's (async) iterator is pumped only while the call has credit.
//
// Each value it yields leaves as a CHUNK at once; with no credit left the iterator is not
// asked for more until CREDIT comes. The stream ends with END only when it finished and every
// chunk was sent; a chunk that cannot be encoded, or an error the tool throws, ends it with
// an ERROR (thrown from here). On cancel, or any early end, the iterator is closed (its
// `finally` blocks run) before the call ends, so it keeps its slot until its code stopped; a
// cancelled stream ends with ERROR "cancelled" even when its generator returned on its own
// (it saw its signal abort), as a cancelled unary call does.

import * as w from "./frames.mjs";

/** Thrown inside the runtime when the host cancelled a stream; reported as "cancelled". */
export const CANCELLED = Symbol("cancelled");

/** The iterator of what a streaming tool returned (an async generator, any iterable). */
function iteratorOf(source, name) {
  const asyncIter = source?.[Symbol.asyncIterator];
  if (typeof asyncIter === "function") return asyncIter.call(source);
  const iter = typeof source !== "string" ? source?.[Symbol.iterator] : undefined;
  if (typeof iter === "function") return iter.call(source);
  throw new TypeError(
    `streaming tool '${name}' must be an async generator method (async *${name}(args, ctx)), or ` +
      `return an iterable; it returned ${source === null ? "null" : typeof source}`,
  );
}

/**
 * Run a streaming call to its end: its chunks and its END go to `call.sink`.
 * @param {import("./call.mjs").RunningCall} call
 * @param {(value: any, what: string) => Uint8Array} encode a chunk's payload (throws its error)
 */
export async function runStream(call, encode) {
  const what = call.info.what.chunk;
  let source = call.run();
  if (typeof source?.then === "function") source = await source; // a method returning a promise of an iterable
  const iterator = iteratorOf(source, call.info.name);
  let finished = false;
  try {
    for (;;) {
      while (call.credit <= 0 && !call.cancelRequested) await call.waitForCredit();
      if (call.cancelRequested) throw CANCELLED;
      const step = await iterator.next();
      // A generator that returns because its signal aborted was cancelled all the same.
      if (call.cancelRequested) throw CANCELLED;
      if (step.done) {
        finished = true;
        break;
      }
      call.credit -= 1;
      call.sink(w.chunk(call.id, encode(step.value, what)));
    }
  } finally {
    // Closing runs the generator's `finally`; what that throws ends the call instead.
    if (!finished && typeof iterator.return === "function") await iterator.return();
  }
  call.sink(w.end(call.id));
}
