/**
 * Delivery threads say when they can take batches, and the main thread
 * waits for all of them before it reads a postback or says it is ready.
 *
 * Piscina counts the threads it starts with as ready at once, and hands
 * them batches while they still load their modules. A batch given to a
 * thread still booting waits there: it is counted in flight yet not
 * started, out of reach of a pause, a Retry-After and the hand-back at
 * shutdown, and its rate tokens were spent when it was handed over, so it
 * leaves in a burst once the thread is up. The process also answered
 * ready before it could send anything.
 *
 * The word goes over a BroadcastChannel: Piscina's own ready message is
 * not public for the threads it starts with.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';

const CHANNEL = 'pb-delivery-thread-ready';

/** In a delivery thread, once its runner is built. */
export function announceThreadReady(): void {
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage(threadId);
  channel.close();
}

/**
 * Starts listening for `threads` announcements; call it before the pool
 * exists, so no word is missed. Resolves with how many threads were ready:
 * all of them, or fewer once `timeoutMs` has passed.
 */
export function waitForThreads(threads: number, timeoutMs: number): Promise<number> {
  if (threads === 0) return Promise.resolve(0);
  const channel = new BroadcastChannel(CHANNEL);
  const seen = new Set<unknown>();
  return new Promise<number>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      channel.close();
      resolve(seen.size);
    };
    const timer = setTimeout(done, timeoutMs);
    channel.onmessage = (event: unknown) => {
      seen.add((event as { data: unknown }).data);
      if (seen.size >= threads) done();
    };
  });
}
