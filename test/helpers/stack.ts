/**
 * A whole pipeline for a test: a real redis-server, an ingest process and
 * delivery processes (dist/cli.js), sharing one random key prefix and log dir.
 */
import { startRedis, type TestRedis } from './redis.js';
import { spawnRole, testEnv, type RoleProcess } from './procs.js';
import { post, type HttpResult } from './http.js';
import { until } from './count.js';

export interface Stack {
  redis: TestRedis;
  env: Record<string, string>;
  ingestUrl: string;
  ingest: RoleProcess | null;
  deliveries: RoleProcess[];
  startDelivery(extra?: Record<string, string>): Promise<RoleProcess>;
  send(body: unknown): Promise<HttpResult>;
  /**
   * Waits until every postback has left the system (the count key of
   * shard 0 reads 0): delivered, dead or expired, outcome recorded. After
   * that no further attempt can happen. False after `timeoutMs`.
   */
  drained(timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startStack(
  extra: Record<string, string> = {},
  opts: { deliveries?: number; ingest?: boolean; aof?: boolean; redisArgs?: string[] } = {},
): Promise<Stack> {
  const redis = await startRedis({ aof: opts.aof ?? false, ...(opts.redisArgs ? { args: opts.redisArgs } : {}) });
  // Port 0: the kernel picks, the role announces it (no race with other test files).
  const env = testEnv(redis.url, { INGEST_PORT: '0', DELIVERY_WORKERS: '0', ...extra });
  let ingest: RoleProcess | null = null;
  try {
    if (opts.ingest !== false) ingest = await spawnRole('ingest', env);
  } catch (err) {
    await redis.destroy();
    throw err;
  }
  const stack: Stack = {
    redis,
    env,
    ingestUrl: ingest ? `http://127.0.0.1:${ingest.port('ingest')}` : '',
    ingest,
    deliveries: [],
    async startDelivery(more = {}) {
      const d = await spawnRole('delivery', { ...env, ...more });
      stack.deliveries.push(d);
      return d;
    },
    send(body: unknown) {
      return post(`${stack.ingestUrl}/i`, JSON.stringify(body));
    },
    drained(timeoutMs = 10_000) {
      const c = redis.client();
      return until(async () => ((await c.get(`${env.REDIS_PREFIX}:{0}:count`)) ?? '0') === '0', timeoutMs);
    },
    async stop() {
      // SIGTERM first, so the roles shut down as in production and (under
      // c8) write their coverage; SIGKILL whatever is still up after 3 s.
      const roles = [stack.ingest, ...stack.deliveries].filter((r): r is RoleProcess => r !== null);
      await Promise.all(
        roles.map(async (r) => {
          const timer = setTimeout(() => void r.kill(), 3_000);
          await r.stop('SIGTERM');
          clearTimeout(timer);
        }),
      );
      await redis.destroy();
    },
  };
  try {
    for (let i = 0; i < (opts.deliveries ?? 1); i++) await stack.startDelivery();
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}
