/**
 * The monitor's partners API against a running pipeline: GET /partners is
 * the cluster's table (state, limits, traffic of the last minute); the
 * mutating endpoints answer 403 without ADMIN_TOKENS, 401 without the
 * admin token (an ingest token is not one), and with it pause and resume
 * the partner for every delivery process. /metrics carries the partner
 * gauges.
 */
import t from 'tap';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { spawnRole } from '../helpers/procs.js';
import { get, post } from '../helpers/http.js';
import { until } from '../helpers/count.js';

const ADMIN = 'admin-token-0123456789abcdef';
const INGEST = 'ingest-token-0123456789abcdef';

t.test('partners through the monitor', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const stack = await startStack({ MONITOR_PORT: '0', INGEST_TOKENS: INGEST, ADMIN_TOKENS: ADMIN });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.stop());
  const base = `http://127.0.0.1:${monitor.port('monitor')}`;
  const send = (n: number) =>
    post(`${stack.ingestUrl}/i`, JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/cb?n={n}` }, data: Array.from({ length: n }, (_, i) => ({ n: i })) }), {
      'content-type': 'application/json',
      authorization: `Bearer ${INGEST}`,
    });
  const enc = encodeURIComponent(sink.origin);

  t.equal((await send(10)).status, 202);
  await sink.waitFor(10);
  let row: { origin: string; state: string; attempts: number; successPct: number; p99Ms: number } | undefined;
  t.ok(
    await until(async () => {
      const r = await get(`${base}/partners`);
      row = (r.json.partners as (typeof row)[]).find((p) => p?.origin === sink.origin);
      return (row?.attempts ?? 0) >= 10;
    }, 10_000),
    'GET /partners shows the partner\'s traffic of the last minute',
  );
  t.match(row, { state: 'closed', attempts: 10, successPct: 100 });
  t.ok((row?.p99Ms ?? 0) > 0, 'with its p99 latency');

  const pause = (headers: Record<string, string>, body = '{}', action = 'pause') => post(`${base}/partners/${enc}/${action}`, body, { 'content-type': 'application/json', ...headers });
  t.match(await pause({}), { status: 401, json: { code: 'PB_ERR_UNAUTHORIZED' } }, 'no token: 401');
  t.match(await pause({ authorization: `Bearer ${INGEST}` }), { status: 401 }, 'an ingest token is not an admin token');
  t.match(await pause({ authorization: 'Bearer wrong' }), { status: 401 });
  t.match(await pause({ authorization: `Bearer ${ADMIN}` }, '{"until": "yesterday"}'), { status: 400, json: { code: 'PB_ERR_VALIDATION' } });
  t.match(await pause({ authorization: `Bearer ${ADMIN}` }, 'not json'), { status: 400, json: { code: 'PB_ERR_BAD_JSON' } });
  t.match(await pause({ authorization: `Bearer ${ADMIN}` }, JSON.stringify({ reason: 'r'.repeat(8_000) })), { status: 413, json: { code: 'PB_ERR_TOO_LARGE' } }, 'a body over 4 KiB: 413, not a reset');
  t.match(await pause({ authorization: `Bearer ${ADMIN}` }, '{"until": "9999999999999999"}'), { status: 400, json: { code: 'PB_ERR_VALIDATION' } }, 'a time no Date can hold: 400, nothing stored');
  t.match(await pause({ authorization: `Bearer ${ADMIN}` }, '{"until": "2099-02-30T00:00:00Z"}'), { status: 400, json: { code: 'PB_ERR_VALIDATION' } }, 'a day the month does not have');
  t.match(await post(`${base}/partners/${encodeURIComponent('https://*.x.example')}/pause`, '', { authorization: `Bearer ${ADMIN}` }), { status: 400 }, 'a pattern is not an origin');
  t.match(await get(`${base}/partners/${enc}/pause`), { status: 405 });

  const paused = await pause({ authorization: `Bearer ${ADMIN}` }, '{"reason": "maintenance"}');
  t.match(paused, { status: 200, json: { origin: sink.origin, paused: true, until: null } });
  const one = await get(`${base}/partners/${enc}`);
  t.match(one.json, { origin: sink.origin, state: 'paused', pause: { by: 'operator', reason: 'maintenance' } });
  // Once the delivery process knows (its next poll), new postbacks wait in Redis.
  const redis = stack.redis.client();
  const held = async () => Number((await redis.hget(`${stack.env.REDIS_PREFIX}:{0}:held`, sink.origin)) ?? 0);
  t.ok(await until(async () => {
    await send(1);
    return (await held()) > 0;
  }, 5_000), 'the partner\'s postbacks wait in Redis');
  t.ok(await until(async () => ((await get(`${base}/partners`)).json.partners as { origin: string; state: string; waiting: number }[]).some((p) => p.origin === sink.origin && p.state === 'paused' && p.waiting > 0), 5_000), 'the table shows it paused, with postbacks waiting');
  const metrics = (await get(`${base}/metrics`)).body;
  t.match(metrics, new RegExp(`pb_partner_state\\{origin="${sink.origin.replace(/[.]/g, '\\.')}",state="paused",role="monitor"\\} 1`), 'the state gauge');
  t.match(metrics, /pb_partner_waiting\{origin="[^"]+",role="monitor"\} [1-9]/, 'the waiting gauge');
  t.match(metrics, /pb_partners\{state="paused",role="monitor"\} 1/);

  t.match(await pause({ authorization: `Bearer ${ADMIN}` }, '', 'resume'), { status: 200, json: { resumed: true } });
  t.ok(await stack.drained(20_000), 'resumed: the waiting postbacks are delivered');
});

t.test('without ADMIN_TOKENS the monitor cannot pause anything', async (t) => {
  const stack = await startStack({ MONITOR_PORT: '0' }, { deliveries: 0, ingest: false });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.stop());
  const base = `http://127.0.0.1:${monitor.port('monitor')}`;
  const r = await post(`${base}/partners/${encodeURIComponent('https://api.partner.example')}/pause`, '', { authorization: 'Bearer anything-at-all-0123' });
  t.match(r, { status: 403, json: { code: 'PB_ERR_ADMIN_DISABLED', error: 'admin_disabled' } });
  t.equal(await stack.redis.client().exists(`${stack.env.REDIS_PREFIX}:{ctl}:partners`), 0, 'nothing written');
  t.match(await get(`${base}/partners`), { status: 200, json: { partners: [] } }, 'reading stays open');
});
