/**
 * How a role's commands reach Redis: written in the turn that issues
 * them, all of one synchronous run in one socket write.
 *
 * ioredis's auto-pipelining waits one event-loop turn (a setImmediate)
 * and builds a Pipeline (which copies every defined script onto itself)
 * before it writes anything. Where the callers already group their own
 * work that is a loop turn and a few dozen microseconds on every call for
 * nothing: ingest's Enqueuer gathers each turn's requests into one script
 * call per shard and template (group commit, enqueue.ts) and issues them
 * together; delivery's finalizer coalesces outcomes for a few
 * milliseconds, its other writers (stats, promoter, heartbeats) run on
 * timers. Instead the socket is corked at the first command of a
 * synchronous run and uncorked at the next microtask checkpoint: what was
 * issued together still leaves in one write (writev), and a lone command
 * leaves at once. A Cluster keeps ioredis's auto-pipelining (it also
 * groups commands by node). Not for a blocking connection (it has no
 * auto-pipelining to replace).
 */
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './redis.js';

/** Switches a standalone (or Sentinel) client to the writes described above; a Cluster is left as it is. */
export function writeInTurn(client: RedisClient): void {
  if (client instanceof Cluster) return;
  const redis: Redis = client;
  redis.options.enableAutoPipelining = false;
  const send = redis.sendCommand.bind(redis);
  let corked = false;
  redis.sendCommand = (command, stream) => {
    if (!corked && stream === undefined && redis.status === 'ready') {
      const socket = redis.stream;
      corked = true;
      socket.cork();
      queueMicrotask(() => {
        corked = false;
        socket.uncork();
      });
    }
    return send(command, stream);
  };
}
