/**
 * Redis client factory: one place decides connection URL and options per
 * use. Ingest fails fast (no offline queue, bounded command time) so a
 * Redis outage turns into quick 503s, never a hang; delivery queues
 * commands across reconnects; blocking reads get their own connection
 * without auto-pipelining (a blocked connection would stall the pipeline).
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/index.js';
import { privatePassword } from './private-password.js';
import { defineScripts } from './scripts.js';

export type RedisUse = 'ingest' | 'delivery' | 'blocking' | 'monitor' | 'cli';

/**
 * REDIS_URL, or the private Redis on 127.0.0.1:REDIS_PORT with the password
 * from REDIS_PASSWORD_FILE (written by the `redis` role or `npm start`).
 */
export function redisUrl(config: Config): string {
  if (config.redis.url !== undefined) return config.redis.url;
  return `redis://:${privatePassword(config.redis.passwordFile)}@127.0.0.1:${config.redis.port}`;
}

/** A Redis URL fit for a log line: the password replaced by ***. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@]*@/, '$1***@');
}

export function createRedis(config: Config, use: RedisUse, name: string): Redis {
  const options: RedisOptions = {
    connectionName: name,
    enableAutoPipelining: use !== 'blocking',
    // Reconnect forever, backing off to 1 s: outages end, processes stay up.
    retryStrategy: (times) => Math.min(50 * times, 1_000),
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
  return defineScripts(new Redis(redisUrl(config), options));
}

/**
 * Closes a client for shutdown: QUIT when connected (pending replies are
 * read first), otherwise just drop the connection. Never waits on a Redis
 * that is gone.
 */
export async function closeRedis(client: Redis, timeoutMs = 2_000): Promise<void> {
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
