/**
 * A real redis-server per test (the harness's, bench/lib/redis-server.ts):
 * a free port (never 6379), nothing on disk unless `aof` (then fsync on
 * every write, so a kill -9 loses nothing the test wrote), and ioredis
 * clients for the test's own checks, closed with it.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../../bench/lib/redis-server.js';

export interface TestRedis extends RedisServer {
  /** A fresh client (closed by destroy()). */
  client(): Redis;
}

export async function startRedis(opts: { aof?: boolean; args?: string[] } = {}): Promise<TestRedis> {
  const server = await startRedisServer({ aof: opts.aof ?? false, appendfsync: 'always', ...(opts.args ? { args: opts.args } : {}) });
  const clients: Redis[] = [];
  const destroyServer = server.destroy;
  return Object.assign(server, {
    client() {
      const c = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    async destroy() {
      for (const c of clients) c.disconnect();
      await destroyServer();
    },
  });
}
