/**
 * The monitor role: the live dashboard (`GET /`, uPlot served from our own
 * package, updates over SSE at `/events`, history at `/api/series`: the
 * per-second points and the queue readings of queue-history.ts),
 * Prometheus metrics for the whole queue (`/metrics`), `GET /healthz` (200
 * when Redis answers a PING, 503 otherwise) and `GET /readyz` (Redis answers
 * and the consumer group exists), and the partners table and controls
 * (`/partners`, see partners-api.ts).
 */
import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadConfig } from '../config/index.js';
import { announceListening, installShutdown, signalReady } from '../lifecycle.js';
import { createLogger } from '../observability/logger.js';
import { createRegistry, registerPartnerGauges, registerQueueGauges } from '../observability/metrics.js';
import { allShards, controlKeys } from '../queue/keys.js';
import { loadPoliciesOrExit } from '../partners/policy-file.js';
import { readPartnerTable } from '../partners/partner-table.js';
import { liveMembers } from '../partners/control.js';
import { createPartnersApi, fail } from './partners-api.js';
import { closeRedis, createRedis, whenReady } from '../queue/redis.js';
import { readQueueState } from '../queue/state.js';
import { LiveFeed } from './live.js';
import { QueueHistory } from './queue-history.js';
import { hostAllowed } from '../ingest/exposure.js';

const require = createRequire(import.meta.url);

function asset(path: string | URL): Buffer {
  return readFileSync(path);
}

const ASSETS: Record<string, [string, Buffer]> = {
  '/': ['text/html; charset=utf-8', asset(new URL('./dashboard/index.html', import.meta.url))],
  '/dashboard.js': ['text/javascript; charset=utf-8', asset(new URL('./dashboard/dashboard.js', import.meta.url))],
  '/uplot.min.js': ['text/javascript; charset=utf-8', asset(require.resolve('uplot/dist/uPlot.iife.min.js'))],
  '/uplot.min.css': ['text/css; charset=utf-8', asset(require.resolve('uplot/dist/uPlot.min.css'))],
};

/**
 * On every answer: the dashboard runs only its own scripts (no inline
 * script, nothing from elsewhere, no eval), cannot be framed (clickjacking
 * of a page that shows partners), and nothing is sniffed into HTML. Its
 * one inline <style> needs 'unsafe-inline' for styles only.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

export async function runMonitor(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, 'monitor');
  const redis = createRedis(config, 'monitor', `monitor:${process.pid}`);
  redis.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis connection error'));
  const shards = allShards(config.redis.prefix, config.redis.shards);
  const registry = createRegistry('monitor');
  // Queue readings made for the live feed and for scrapes, kept for a page that opens (bounded: QUEUE_HISTORY_S).
  const queueHistory = new QueueHistory();
  registerQueueGauges(registry, redis, shards, (state, at) => queueHistory.record(state, at));
  const live = new LiveFeed(redis, shards, logger, queueHistory);
  const policies = loadPoliciesOrExit(config, logger);
  const ctl = controlKeys(config.redis.prefix);
  registerPartnerGauges(
    registry,
    () => readPartnerTable(redis, ctl, shards, policies.table, Date.now()),
    async () => (await liveMembers(redis, ctl)).length,
  );
  const partners = createPartnersApi({ redis, keys: ctl, shards, table: () => policies.table, adminTokens: config.monitor.adminTokens, logger });

  const server = createServer((req, res) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    if (!hostAllowed(config.monitor.host, config.monitor.allowedHosts, req.headers.host)) {
      // DNS rebinding (src/ingest/exposure.ts): a page elsewhere reaching a loopback monitor by its own name.
      fail(
        res,
        'PB_ERR_MISDIRECTED',
        'this monitor listens on a loopback address and answers only to a loopback Host (localhost, 127.0.0.1); behind a proxy, list its host name in MONITOR_ALLOWED_HOSTS',
        { connection: 'close' },
      );
      return;
    }
    const url = new URL(req.url ?? '/', 'http://monitor');
    const path = url.pathname;
    if (partners(req, res, path)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      json(res, 405, { error: 'method_not_allowed', message: 'the monitor only takes GET (and POST /partners/<origin>/pause|resume)' });
      return;
    }
    const file = ASSETS[path];
    if (file) {
      res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-cache' });
      res.end(file[1]);
      return;
    }
    switch (path) {
      case '/events':
        live.subscribe(res);
        return;
      case '/api/series': {
        const seconds = Math.max(10, Math.min(600, Number(url.searchParams.get('seconds')) || 300));
        live.series(seconds).then(
          (points) => json(res, 200, { points, queue: queueHistory.since(seconds, Date.now()) }),
          () => json(res, 503, { error: 'unavailable', message: 'Redis is unavailable' }),
        );
        return;
      }
      case '/metrics':
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          () => json(res, 500, { error: 'internal', message: 'metrics unavailable' }),
        );
        return;
      case '/healthz':
        redis.ping().then(
          () => json(res, 200, '{"status":"ok","redis":"up"}'),
          () => json(res, 503, '{"status":"unavailable","redis":"down"}'),
        );
        return;
      case '/readyz':
        readQueueState(redis, shards, Date.now()).then(
          (q) =>
            q.groupPresent
              ? json(res, 200, '{"status":"ready"}')
              : json(res, 503, '{"status":"not ready","reason":"no consumer group yet: is a delivery process running?"}'),
          () => json(res, 503, '{"status":"not ready","redis":"down"}'),
        );
        return;
      default:
        json(res, 404, { error: 'not_found', message: 'try /, /partners, /metrics, /healthz or /readyz' });
    }
  });

  installShutdown(logger, config.shutdownTimeoutMs, [
    {
      name: 'http',
      run: () =>
        new Promise<void>((resolve) => {
          live.close();
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    },
    { name: 'policies', run: () => policies.close() },
    { name: 'redis', run: () => closeRedis(redis) },
  ]);

  server.listen(config.monitor.port, config.monitor.host);
  await once(server, 'listening');
  announceListening('monitor', (server.address() as { port: number }).port);
  // Give Redis a moment so the first scrape is not a false alarm; a Redis
  // that is down does not keep the monitor from starting (it shows it).
  if (redis.status !== 'ready') {
    await Promise.race([whenReady(redis), new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
  }
  logger.info({ host: config.monitor.host, port: (server.address() as { port: number }).port }, 'monitor listening');
  signalReady();
}
