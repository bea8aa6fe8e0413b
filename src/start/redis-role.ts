/**
 * `node dist/cli.js redis`: the private Redis as a role of its own, for PM2
 * and systemd (which supervise it like the others). Starts redis-server
 * with the generated configuration, says 'ready' once it answers, and on
 * SIGTERM/SIGINT stops it cleanly (Redis fsyncs its AOF on the way out).
 */
import { loadConfig, REDIS_MODE_SOURCE } from '../config/index.js';
import { createLogger, flushLogs } from '../observability/logger.js';
import { startPrivateRedis } from './private-redis.js';

export async function runRedisRole(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'redis');
  if (config.redis.mode !== 'private') {
    logger.fatal(`${REDIS_MODE_SOURCE[config.redis.mode]} is set: this machine uses that Redis, the private one is not started`);
    flushLogs();
    process.exit(1);
  }
  const redis = await startPrivateRedis(config, logger, false);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping redis-server');
    void redis.stop().then(() => {
      flushLogs();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  redis.child?.once('exit', (code, signal) => {
    if (stopping) return;
    logger.error({ code, signal }, 'redis-server exited');
    flushLogs();
    process.exit(1);
  });
  process.send?.('ready');
}
