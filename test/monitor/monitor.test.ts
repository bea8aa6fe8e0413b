/**
 * The monitor through real processes: /metrics, /healthz, /readyz, the
 * dashboard's history (per-second points, and the queue readings kept for
 * a page that opens) and live frames, every role's health endpoints, and
 * the Redis-down state.
 */
import t from 'tap';
import { request } from 'node:http';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { spawnRole } from '../helpers/procs.js';
import { freePort } from '../../bench/lib/ports.js';
import { get } from '../helpers/http.js';
import { until } from '../helpers/count.js';
import { shardKeys } from '../../src/queue/keys.js';
import { SCRAPE_READ_SHARED_MS } from '../../src/observability/metrics.js';

/** Reads Server-Sent Events frames from /events until `n` arrived. */
function frames(url: string, n: number, timeoutMs = 15_000): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const got: any[] = [];
    const req = request(url, (res) => {
      let buf = '';
      res.on('data', (d: Buffer) => {
        buf += d.toString();
        let i: number;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = chunk.split('\n').find((l) => l.startsWith('data: '));
          if (data) got.push(JSON.parse(data.slice(6)));
          if (got.length >= n) {
            req.destroy();
            resolve(got);
          }
        }
      });
    });
    req.on('error', (err) => (got.length >= n ? undefined : reject(err)));
    setTimeout(() => {
      req.destroy();
      reject(new Error(`only ${got.length} frames`));
    }, timeoutMs);
    req.end();
  });
}

t.test('metrics, health and the live feed', async (t) => {
  const sink = await startSink((r) => (r.url.startsWith('/bad') ? { status: 500 } : { status: 200 }));
  t.teardown(() => sink.close());
  const deliveryPort = await freePort();
  const stack = await startStack({
    MONITOR_PORT: '0',
    DELIVERY_METRICS_PORT: String(deliveryPort),
    DELIVERY_BACKOFF_BASE_MS: '50',
    DELIVERY_MAX_ATTEMPTS: '2',
  });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.stop());
  const mon = `http://127.0.0.1:${monitor.port('monitor')}`;
  const del = `http://127.0.0.1:${deliveryPort}`;

  const live = frames(`${mon}/events`, 5);
  for (let i = 0; i < 10; i++) {
    const path = i % 5 === 0 ? '/bad' : '/ok';
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}${path}?n={n}` }, data: Array.from({ length: 20 }, (_, n) => ({ n })) })).status, 202);
  }
  const got = await live;
  t.ok(got.every((f) => f.redisUp === true), 'frames say Redis is up');
  const withQueue = got.filter((f) => f.queue);
  t.ok(withQueue.length > 0 && withQueue.every((f) => typeof f.queue.postbacks === 'number' && f.queue.groupPresent), 'frames carry the queue state');
  // Frames carry every second once: from the second frame on, each begins where the one before ended.
  const seconds = got.slice(1).flatMap((f) => (f.points as { t: number }[]).map((p) => p.t));
  t.ok(seconds.length >= 3, `${seconds.length} seconds in ${got.length - 1} frames`);
  t.ok(seconds.every((s, i) => i === 0 || s === (seconds[i - 1] as number) + 1), `no second skipped or repeated (${seconds.join(', ')})`);

  // The queue readings those frames carried are kept, for a dashboard that opens now.
  const kept = (await get(`${mon}/api/series?seconds=60`)).json.queue as { t: number; postbacks: number; lagSeconds: number; deadLetters: number }[];
  for (const f of withQueue) {
    const at = Math.floor(f.at / 1000);
    t.match(
      kept.find((q) => q.t === at),
      { postbacks: f.queue.postbacks, lagSeconds: f.queue.lagSeconds, deadLetters: f.queue.deadLetters },
      `the queue read at ${at} is in /api/series`,
    );
  }
  t.ok(kept.every((q, i) => i === 0 || q.t > (kept[i - 1] as { t: number }).t), 'oldest first, one a second at most');

  // The numbers in Redis are the whole cluster's: ingest's and delivery's
  // (flushed every second, read once a second has settled).
  let points: any[] = [];
  const sum = (k: string) => points.reduce((a, p) => a + p[k], 0);
  const settled = await until(async () => {
    const series = await get(`${mon}/api/series?seconds=30`);
    points = series.status === 200 ? (series.json.points as any[]) : [];
    return sum('delivered') === 160 && sum('dead') === 40;
  }, 15_000);
  t.ok(settled, 'every outcome reached the statistics');
  t.equal(sum('accepted'), 200, 'accepted per second, summed: every postback ingested');
  t.equal(sum('requests'), 10);
  t.equal(sum('delivered'), 160);
  t.equal(sum('retried'), 40, 'each failing postback retried once');
  t.equal(sum('dead'), 40, 'then dead (2 attempts in all)');
  t.ok(points.some((p) => p.p50 !== null && p.p99 >= p.p50), 'latency quantiles');
  t.ok(points.some((p) => Object.keys(p.failures).includes(sink.origin)), 'the failing origin is named');

  const metrics = (await get(`${mon}/metrics`)).body;
  t.match(metrics, /^pb_redis_up\{role="monitor"\} 1$/m);
  t.match(metrics, /^pb_dead_letters\{role="monitor"\} 40$/m);
  t.match(metrics, /^pb_queue_postbacks\{role="monitor"\} 0$/m);
  t.match(metrics, /^nodejs_eventloop_lag_seconds\{role="monitor"\}/m, 'process metrics');
  const dm = (await get(`${del}/metrics`)).body;
  t.match(dm, /^pb_delivery_attempts_total\{outcome="delivered",status_class="2xx",role="delivery"\} 160$/m);
  t.match(dm, /^pb_delivery_attempts_total\{outcome="dead",status_class="5xx",role="delivery"\} 40$/m);
  t.match(dm, /^pb_delivery_latency_seconds_count\{role="delivery"\} 240$/m);
  t.match(dm, new RegExp(`^pb_delivery_origin_attempts_total\\{origin="${sink.origin.replace(/[.:/]/g, '\\$&')}",outcome="retry",role="delivery"\\} 40$`, 'm'));
  t.match(dm, /^pb_delivery_in_flight\{role="delivery"\} 0$/m);
  t.match(dm, /^nodejs_heap_size_used_bytes\{role="delivery"\}/m);
  const im = (await get(`${stack.ingestUrl}/metrics`)).body;
  t.match(im, /^pb_ingest_requests_total\{route="ingest",status="202",role="ingest"\} 10$/m);
  t.match(im, /^pb_ingest_postbacks_accepted_total\{role="ingest"\} 200$/m);
  t.match(im, /^pb_ingest_request_duration_seconds_count\{role="ingest",route="ingest"\} 10$/m);

  for (const [name, base] of [['ingest', stack.ingestUrl], ['delivery', del], ['monitor', mon]] as const) {
    t.equal((await get(`${base}/healthz`)).status, 200, `${name} /healthz`);
    t.equal((await get(`${base}/readyz`)).status, 200, `${name} /readyz`);
  }
  const page = await get(`${mon}/`);
  t.match(page.body, /<script src="\/uplot\.min\.js"><\/script>/, 'uPlot from our own server, no CDN');
  t.notMatch(page.body, /https?:\/\//);
  t.equal((await get(`${mon}/uplot.min.js`)).status, 200);

  // At most 100 live dashboards: the 101st is told so, the others keep their feed.
  const open: ReturnType<typeof request>[] = [];
  t.teardown(() => {
    for (const r of open) r.destroy();
  });
  const listen = () =>
    new Promise<number>((resolve, reject) => {
      const r = request(`${mon}/events`, (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      r.on('error', reject);
      open.push(r);
      r.end();
    });
  const statuses = [];
  for (let i = 0; i < 100; i++) statuses.push(await listen());
  t.ok(statuses.every((s) => s === 200), '100 live dashboards');
  const extra = await get(`${mon}/events`);
  t.match(extra, { status: 503, json: { error: 'overloaded' }, headers: { 'retry-after': '5' } }, 'the 101st: 503 overloaded');
  for (const r of open) r.destroy();
  t.ok(await until(async () => (await get(`${mon}/api/series?seconds=10`)).status === 200, 5_000), 'the monitor still answers');

  await stack.redis.stop();
  const down = await frames(`${mon}/events`, 3);
  t.equal(down.at(-1).redisUp, false, 'the live feed says Redis is down');
  t.equal((await get(`${mon}/healthz`)).status, 503, 'monitor /healthz: 503 without Redis');
  t.equal((await get(`${mon}/readyz`)).status, 503);
  t.equal((await get(`${stack.ingestUrl}/readyz`)).status, 503, 'ingest /readyz: 503 without Redis');
  t.match((await get(`${mon}/metrics`)).body, /^pb_redis_up\{role="monitor"\} 0$/m);
});

t.test('with no dashboard open, the queue readings of scrapes are kept for the next page', async (t) => {
  const stack = await startStack({ MONITOR_PORT: '0' }, { ingest: false, deliveries: 0 });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.stop());
  const mon = `http://127.0.0.1:${monitor.port('monitor')}`;
  const queue = async () => (await get(`${mon}/api/series?seconds=300`)).json.queue as { t: number; deadLetters: number }[];
  t.same(await queue(), [], 'nothing read yet, nothing kept (an idle monitor reads nothing)');
  // Two scrapes in different seconds, with a dead letter added between them.
  const before = Math.floor(Date.now() / 1000);
  t.match((await get(`${mon}/metrics`)).body, /^pb_dead_letters\{role="monitor"\} 0$/m);
  const scraped = Date.now();
  await stack.redis.client().xadd(shardKeys(stack.env.REDIS_PREFIX as string, 0).dead, '*', 'x', '1');
  // The next second, and past the window in which scrapes share one read
  // (else the second scrape answers the first one's reading).
  const later = Math.floor(Date.now() / 1000) + 1;
  const fresh = Math.max(later * 1000, scraped + SCRAPE_READ_SHARED_MS + 1);
  t.ok(await until(() => Date.now() >= fresh, 2_000), 'the next second, and a read of its own');
  t.match((await get(`${mon}/metrics`)).body, /^pb_dead_letters\{role="monitor"\} 1$/m);
  const kept = await queue();
  t.equal(kept.length, 2, 'one reading per scrape');
  t.ok((kept[0]?.t ?? 0) >= before && (kept[1]?.t ?? 0) >= later, 'at the seconds they were read');
  t.same(kept.map((q) => q.deadLetters), [0, 1], 'with what they read');
});

t.test('a loopback monitor answers only a loopback Host, or one in MONITOR_ALLOWED_HOSTS (DNS rebinding)', async (t) => {
  const stack = await startStack({ MONITOR_PORT: '0', MONITOR_ALLOWED_HOSTS: 'dash.internal' }, { ingest: false, deliveries: 0 });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.stop());
  const port = monitor.port('monitor');
  const withHost = (host: string, path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  for (const path of ['/partners', '/metrics', '/', '/events']) {
    const refused = await withHost(`rebind.example:${port}`, path);
    t.equal(refused.status, 421, `${path} under another name: 421`);
    t.match(JSON.parse(refused.body), { error: 'misdirected_request', code: 'PB_ERR_MISDIRECTED', message: /MONITOR_ALLOWED_HOSTS/ });
  }
  t.equal((await withHost(`localhost:${port}`, '/metrics')).status, 200, 'localhost');
  t.equal((await withHost(`127.0.0.1:${port}`, '/metrics')).status, 200, '127.0.0.1');
  t.equal((await withHost('dash.internal', '/metrics')).status, 200, 'a listed name (a reverse proxy)');
});
