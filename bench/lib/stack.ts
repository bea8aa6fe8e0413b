/**
 * The service under test for one run: a private redis-server and the roles
 * asked for (`node dist/cli.js ingest|delivery|monitor`), sharing one random
 * key prefix, one scratch log dir and the --env knobs; ingest, monitor and
 * delivery's metrics listener on free ports. `stop()` kills them all (SIGKILL: the run is over, its
 * Redis is thrown away).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { knobsOf, roleEnv, spawnRole, type Child } from './procs.js';
import { startRedis, type BenchRedis } from './redis.js';
import type { RunContext } from './scenario.js';

export interface Stack {
  redis: BenchRedis;
  env: Record<string, string>;
  ingest: Child | null;
  delivery: Child | null;
  monitor: Child | null;
  /** `http://127.0.0.1:<INGEST_PORT>` */
  ingestOrigin: string;
  /** pids by name, for CPU accounting (redis included). */
  pids(): Record<string, number>;
  knobs(): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startStack(
  ctx: RunContext,
  roles: { ingest?: boolean; delivery?: boolean; monitor?: boolean },
  extraEnv: Record<string, string> = {},
): Promise<Stack> {
  const redisDir = join(ctx.scratch, 'redis');
  const logDir = join(ctx.scratch, 'log');
  mkdirSync(redisDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const redis = await startRedis({ dir: redisDir, aof: ctx.opts.aof });
  const ingestPort = await freePort();
  const monitorPort = await freePort();
  const deliveryMetricsPort = await freePort();
  const env = roleEnv(redis.url, logDir, {
    INGEST_PORT: String(ingestPort),
    MONITOR_PORT: String(monitorPort),
    DELIVERY_METRICS_PORT: String(deliveryMetricsPort),
    ...extraEnv,
    ...ctx.opts.env,
  });
  const stack: Stack = {
    redis,
    env,
    ingest: null,
    delivery: null,
    monitor: null,
    ingestOrigin: `http://127.0.0.1:${ingestPort}`,
    pids() {
      const out: Record<string, number> = {};
      if (stack.ingest) out.ingest = stack.ingest.pid;
      if (stack.delivery) out.delivery = stack.delivery.pid;
      if (stack.monitor) out.monitor = stack.monitor.pid;
      out.redis = redis.pid;
      return out;
    },
    knobs() {
      return { env: knobsOf(env), redisArgs: redis.args };
    },
    async stop() {
      await Promise.all([stack.ingest?.kill(), stack.delivery?.kill(), stack.monitor?.kill()]);
      await redis.stop();
    },
  };
  try {
    // Delivery first: its consumer group exists before anything is written.
    if (roles.delivery) stack.delivery = await spawnRole('delivery', env);
    if (roles.ingest) stack.ingest = await spawnRole('ingest', env);
    if (roles.monitor) stack.monitor = await spawnRole('monitor', env);
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}
