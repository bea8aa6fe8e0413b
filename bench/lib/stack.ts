/**
 * The service under test for one run: a private redis-server and the roles
 * asked for (`node dist/cli.js ingest|delivery|monitor`), sharing one random
 * key prefix, one scratch log dir and the --env knobs; ingest, monitor and
 * delivery's metrics listener on free ports. `stop()` kills them all (SIGKILL: the run is over, its
 * Redis is thrown away). With `redisDelayMs`, the roles reach Redis through
 * a delay proxy (delay-proxy.ts) holding each chunk that long each way; the
 * harness's own connection (`redis.client`) still goes straight to Redis.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startDelayProxy, type DelayProxy } from './delay-proxy.js';
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
  /** The delay proxy between the roles and Redis, when asked for. */
  proxy: DelayProxy | null;
  /** `http://127.0.0.1:<INGEST_PORT>` */
  ingestOrigin: string;
  /** pids by name, for CPU accounting (redis and the proxy included). */
  pids(): Record<string, number>;
  knobs(): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startStack(
  ctx: RunContext,
  roles: { ingest?: boolean; delivery?: boolean; monitor?: boolean },
  extraEnv: Record<string, string> = {},
  opts: { redisDelayMs?: number } = {},
): Promise<Stack> {
  const redisDir = join(ctx.scratch, 'redis');
  const logDir = join(ctx.scratch, 'log');
  mkdirSync(redisDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const redis = await startRedis({ dir: redisDir, aof: ctx.opts.aof });
  let proxy: DelayProxy | null = null;
  if (opts.redisDelayMs !== undefined) {
    try {
      proxy = await startDelayProxy({ targetPort: redis.port, delayMs: opts.redisDelayMs });
    } catch (err) {
      await redis.stop();
      throw err;
    }
  }
  const ingestPort = await freePort();
  const monitorPort = await freePort();
  const deliveryMetricsPort = await freePort();
  const env = roleEnv(proxy?.url ?? redis.url, logDir, {
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
    proxy,
    ingestOrigin: `http://127.0.0.1:${ingestPort}`,
    pids() {
      const out: Record<string, number> = {};
      if (stack.ingest) out.ingest = stack.ingest.pid;
      if (stack.delivery) out.delivery = stack.delivery.pid;
      if (stack.monitor) out.monitor = stack.monitor.pid;
      out.redis = redis.pid;
      if (proxy) out.proxy = proxy.pid;
      return out;
    },
    knobs() {
      return { env: knobsOf(env), redisArgs: redis.args, ...(proxy ? { redisDelayMs: proxy.delayMs } : {}) };
    },
    async stop() {
      await Promise.all([stack.ingest?.kill(), stack.delivery?.kill(), stack.monitor?.kill()]);
      await proxy?.close();
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

/** A counter of the delivery process's own /metrics (null when it cannot be read). */
export async function deliveryCounter(stack: Stack, name: string): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${stack.env.DELIVERY_METRICS_PORT}/metrics`)).text();
    // `name value` or `name{labels} value` (the registry's default label `role`).
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  } catch {
    return null;
  }
}
