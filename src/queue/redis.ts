/**
 * Redis client factory: one place decides which Redis (a URL, a Cluster, a
 * Sentinel group, or the private instance) and the options per use.
 * Ingest fails fast (no offline queue, bounded command time) so a Redis
 * outage turns into quick 503s, never a hang; delivery queues commands
 * across reconnects; blocking reads get their own connection without
 * auto-pipelining (a blocked connection would stall the pipeline).
 * Ingest's connection is not auto-pipelined either: ioredis sends an
 * auto-pipeline only once the one before it is answered (one in flight per
 * connection), so requests arriving meanwhile wait a whole round trip
 * before theirs is even sent, and ingest is capped at one group of
 * requests per round trip: with Redis on another host, that cap is what
 * ingest reaches. Its Enqueuer already gathers each event-loop turn's
 * requests into one script call, so each call goes out at once, and
 * several are in flight. On a standalone or Sentinel client, ingest's and
 * delivery's connections also write in the turn that issues a command
 * (write-in-turn.ts) instead of waiting a turn for an auto-pipeline.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config/index.js';
import { privatePassword } from '../start/private-password.js';
import { defineScripts, VARIADIC_SCRIPTS } from './scripts.js';
import { writeInTurn } from './write-in-turn.js';

/** A standalone/Sentinel client or a Cluster client: the commands we use work on both. */
export type RedisClient = Redis | Cluster;

export type RedisUse = 'ingest' | 'delivery' | 'blocking' | 'monitor' | 'cli';

/**
 * REDIS_URL, or the private Redis on 127.0.0.1:REDIS_PORT with the password
 * from REDIS_PASSWORD_FILE (written by the `redis` role or `npm start`).
 */
export function redisUrl(config: Config): string {
  if (config.redis.url !== undefined) return config.redis.url;
  return `redis://:${privatePassword(config.redis.passwordFile)}@127.0.0.1:${config.redis.port}`;
}

function hostPort(node: string): { host: string; port: number } {
  const colon = node.lastIndexOf(':');
  return { host: node.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(node.slice(colon + 1)) };
}

function optionsFor(config: Config, use: RedisUse, name: string): RedisOptions {
  const options: RedisOptions = {
    connectionName: name,
    // Not for ingest (one script call per turn already) nor blocking reads: see above.
    enableAutoPipelining: use !== 'blocking' && use !== 'ingest',
    // Reconnect forever, backing off to 1 s: outages end, processes stay up.
    retryStrategy: (times) => Math.min(50 * times, 1_000),
    // After a failover the old primary answers READONLY: reconnect to the new one.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
  if (use === 'ingest' || use === 'monitor') {
    options.enableOfflineQueue = false;
    options.maxRetriesPerRequest = 0;
    options.autoResendUnfulfilledCommands = false;
    options.commandTimeout = config.ingest.writeTimeoutMs;
  } else if (use === 'blocking') {
    options.maxRetriesPerRequest = null;
  } else if (use === 'cli') {
    options.maxRetriesPerRequest = 1;
    options.retryStrategy = (times) => (times > 3 ? null : 200);
  }
  return options;
}

/** Clients closeRedis closed: they stay closed. */
const closedOnPurpose = new WeakSet<RedisClient>();

/**
 * ioredis's Sentinel connector can end a client for good in a failover.
 * The failover detector of the last connection disconnects the connector
 * on `+switch-master`; if that comes while the client is between attempts,
 * asking a sentinel where the primary is (a hung sentinel holds it there),
 * the attempt fails with "Connection is closed." and the client goes to
 * status `end`: no retryStrategy, no reconnect, every command refused, so
 * ingest answered 503 and delivery waited until they were restarted. A
 * long-lived client that ends without closeRedis is connected again.
 */
function reconnectWhenEnded(client: Redis): void {
  client.on('end', () => {
    if (closedOnPurpose.has(client)) return;
    setTimeout(() => {
      if (client.status === 'end' && !closedOnPurpose.has(client)) client.connect().catch(() => undefined);
    }, 200).unref();
  });
}

export function createRedis(config: Config, use: RedisUse, name: string): RedisClient {
  const options = optionsFor(config, use, name);
  const r = config.redis;
  if (r.mode === 'cluster') {
    const { enableAutoPipelining, enableOfflineQueue, maxRetriesPerRequest, ...redisOptions } = options;
    const clusterOptions: ClusterOptions = {
      enableAutoPipelining,
      autoPipeliningIgnoredCommands: VARIADIC_SCRIPTS,
      enableOfflineQueue: enableOfflineQueue ?? true,
      clusterRetryStrategy: (times) => (use === 'cli' && times > 3 ? null : Math.min(100 * times, 2_000)),
      scaleReads: 'master',
      redisOptions: {
        ...redisOptions,
        maxRetriesPerRequest,
        ...(r.password !== undefined ? { password: r.password } : {}),
        ...(r.tls ? { tls: {} } : {}),
      },
    };
    return defineScripts(new Cluster(r.clusterNodes.map(hostPort), clusterOptions));
  }
  let client: Redis;
  if (r.mode === 'sentinel') {
    client = defineScripts(
      new Redis({
        ...options,
        sentinels: r.sentinels.map(hostPort),
        name: r.sentinelName,
        // Watch the sentinels for a switch instead of waiting for the old primary to drop us.
        failoverDetector: true,
        sentinelRetryStrategy: (times) => Math.min(100 * times, 2_000),
        // A sentinel that accepts but never answers (its machine hung) is
        // skipped instead of holding every reconnect until it wakes.
        sentinelCommandTimeout: 1_000,
        ...(r.password !== undefined ? { password: r.password } : {}),
        ...(r.sentinelPassword !== undefined ? { sentinelPassword: r.sentinelPassword } : {}),
        ...(r.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
      }),
    );
    if (use !== 'cli') reconnectWhenEnded(client);
  } else {
    client = defineScripts(new Redis(redisUrl(config), options));
  }
  if (use === 'ingest' || use === 'delivery') writeInTurn(client);
  return client;
}

/**
 * Resolves once the client is connected and ready, however many connection
 * errors come first (the client keeps reconnecting); `events.once` would
 * reject on the first 'error' event instead.
 */
export function whenReady(client: RedisClient): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => client.once('ready', () => resolve()));
}

/**
 * Closes a client for shutdown: QUIT when connected (pending replies are
 * read first), otherwise just drop the connection. Never waits on a Redis
 * that is gone.
 */
export async function closeRedis(client: RedisClient, timeoutMs = 2_000): Promise<void> {
  closedOnPurpose.add(client);
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  const timer = setTimeout(() => client.disconnect(), timeoutMs);
  try {
    await client.quit();
  } catch {
    client.disconnect();
  } finally {
    clearTimeout(timer);
  }
}
