/**
 * The monitor role: `GET /healthz` answers 200 when Redis answers a PING
 * within a second, 503 otherwise.
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import { loadConfig } from '../config/index.js';
import { installShutdown, signalReady } from '../lifecycle.js';
import { createLogger } from '../observability/logger.js';
import { createRedis } from '../queue/redis.js';

export async function runMonitor(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'monitor');
  const redis = createRedis(config, 'monitor', `monitor:${process.pid}`);
  redis.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis connection error'));

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"try /healthz"}');
      return;
    }
    redis.ping().then(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","redis":"up"}'),
      () => res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"unavailable","redis":"down"}'),
    );
  });

  installShutdown(logger, config.shutdownTimeoutMs, [
    { name: 'http', run: () => new Promise<void>((resolve) => server.close(() => resolve())) },
    { name: 'redis', run: () => redis.quit().then(() => undefined) },
  ]);

  server.listen(config.monitor.port, config.monitor.host);
  await once(server, 'listening');
  logger.info({ host: config.monitor.host, port: config.monitor.port }, 'monitor listening');
  signalReady();
}
