/**
 * The delay proxy's clock, in a worker thread of the proxy process: a
 * wake-up at a sub-millisecond time. Node's timers count whole
 * milliseconds (setTimeout(0.5) waits 1 ms or more), so a 0.5 ms delay
 * cannot come from them; `Atomics.wait` sleeps for a fractional timeout
 * and costs nothing while it sleeps. The proxy arms the clock through
 * shared memory (a due time, then a bump of the sequence number and a
 * notify); at the due time the clock posts one message, which wakes the
 * proxy's event loop, and waits to be armed again. The proxy arms it again
 * after it handled a wake-up, or at once for an earlier time (its delay
 * was lowered): the clock then reads the new time. A spare wake-up is
 * harmless (the proxy flushes what is due, if anything).
 *
 * Times are milliseconds of process.hrtime (CLOCK_MONOTONIC), the same in
 * every thread of the process.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

/** Milliseconds of the monotonic clock, fractional. */
export function monoMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

function run(): void {
  const port = parentPort;
  if (isMainThread || port === null) return;
  const sab = workerData as SharedArrayBuffer;
  const seq = new Int32Array(sab, 0, 1);
  const due = new Float64Array(sab, 8, 1);
  let seen = 0;
  for (;;) {
    // Until armed (the sequence number moves on).
    Atomics.wait(seq, 0, seen);
    // Armed again meanwhile (an earlier due time): the wait ends early and the new time is read.
    for (;;) {
      seen = Atomics.load(seq, 0);
      const left = (due[0] as number) - monoMs();
      if (left <= 0) break;
      Atomics.wait(seq, 0, seen, left);
    }
    port.postMessage(0);
  }
}

run();
