/**
 * How ingest's commands reach Redis: written in the turn that issues them,
 * all of one synchronous run in one socket write.
 *
 * The Enqueuer already gathers the requests of one event-loop turn into
 * one script call per shard and template (group commit, enqueue.ts), and
 * issues those calls together when its turn ends. ioredis's own
 * auto-pipelining would then wait one more turn (a setImmediate) and build
 * a Pipeline before writing them: a loop turn and its allocations on the
 * path of every request, for nothing the Enqueuer has not already done.
 * Instead the socket is corked at the first command of a synchronous run
 * and uncorked at the next microtask checkpoint: what was issued together
 * still leaves in one write (writev), and a lone request's command leaves
 * at once. (A Cluster keeps ioredis's auto-pipelining, which also groups
 * commands by node.)
 */
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from '../queue/redis.js';

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
