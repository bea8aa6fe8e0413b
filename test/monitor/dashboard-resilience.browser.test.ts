/**
 * The dashboard in a real headless Chromium when things go wrong around it:
 * the monitor's security headers hold with the page working under them
 * (no CSP violation), a dashboard refused by a full /events (503
 * overloaded) comes back by itself once a slot frees, a monitor that stops
 * answering turns the page "not live" instead of leaving old numbers
 * looking live, Redis at maxmemory is called full rather than looking
 * like a quiet day, and a long pause shows its date. Skips without
 * /usr/bin/chromium, as dashboard.browser.test.ts does.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { startStack } from '../helpers/stack.js';
import { spawnRole } from '../helpers/procs.js';
import { get } from '../helpers/http.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (apt-get install chromium to run it; .ci/run does)`;
const ADMIN = 'admin-token-for-the-resilience-test';

/** Opens an /events stream and keeps it; resolves with the status once the head arrived. */
function listen(url: string): Promise<{ status: number; req: ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, req });
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the dashboard under a full feed, a hung monitor, strict headers', { skip }, async (t) => {
  const { chromium } = await import('playwright-core');
  // AOF on: Redis stopped and started again below keeps the pause made here.
  const stack = await startStack({ MONITOR_PORT: '0', ADMIN_TOKENS: ADMIN }, { aof: true });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.kill());
  const base = `http://127.0.0.1:${monitor.port('monitor')}`;

  // Headers on the page, its script, and the JSON answers.
  for (const path of ['/', '/dashboard.js', '/partners', '/healthz']) {
    const r = await get(`${base}${path}`);
    t.match(r.headers['content-security-policy'], /script-src 'self'/, `${path}: CSP`);
    t.match(r.headers['content-security-policy'], /frame-ancestors 'none'/, `${path}: not framable`);
    t.equal(r.headers['x-content-type-options'], 'nosniff', `${path}: nosniff`);
  }

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  await page.goto(`${base}/`);
  await page.waitForFunction(() => Number(document.body.dataset.frames ?? 0) >= 2, undefined, { timeout: 20_000 });
  t.equal(await page.locator('#stale').isVisible(), false, 'live: no stale banner');

  // A long pause says its date, not only a time of day.
  const origin = 'https://api.paused-long.example';
  const paused = await fetch(`${base}/partners/${encodeURIComponent(origin)}/pause`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ until: '2099-06-15T12:00:00Z', reason: 'maintenance' }),
  });
  t.equal(paused.status, 200, 'paused through the API');
  await page.waitForFunction((o) => document.querySelector('#partners tbody')?.textContent?.includes(o), origin, { timeout: 10_000 });
  t.match(await page.locator('#partners tbody tr', { hasText: origin }).innerText(), /paused until .*2099/, 'the pause shows its date');

  // Fill the monitor's /events slots (100) until it refuses, then open a second dashboard: it is refused (503).
  await page.close();
  const held: ClientRequest[] = [];
  t.teardown(() => held.forEach((r) => r.destroy()));
  let refused = false;
  for (let i = 0; i < 150 && !refused; i++) {
    const l = await listen(`${base}/events`);
    if (l.status === 200) held.push(l.req);
    else refused = l.status === 503;
  }
  t.ok(refused && held.length >= 99, `the feed is full (${held.length} held)`);
  const second = await browser.newPage();
  second.on('pageerror', (e) => problems.push(e.message));
  await second.goto(`${base}/`);
  await second.locator('#stale').waitFor({ state: 'visible', timeout: 15_000 });
  t.equal(await second.evaluate(() => document.body.dataset.frames ?? '0'), '0', 'refused: no frames, and the page says it is not live');
  for (const r of held.splice(0)) r.destroy();
  await second.waitForFunction(() => Number(document.body.dataset.frames ?? 0) >= 2, undefined, { timeout: 30_000 });
  t.pass('once slots free, the refused dashboard connects by itself');
  await second.locator('#stale').waitFor({ state: 'hidden', timeout: 10_000 });

  // A monitor that stops answering (SIGSTOP: the connection stays open, no frame comes).
  monitor.proc.kill('SIGSTOP');
  try {
    await second.locator('#stale').waitFor({ state: 'visible', timeout: 15_000 });
    t.match(await second.locator('#stale').innerText(), /not live/, 'a hung monitor: the page says its numbers are not live');
    t.equal(await second.evaluate(() => document.body.dataset.stale), 'true');
  } finally {
    monitor.proc.kill('SIGCONT');
  }
  await second.locator('#stale').waitFor({ state: 'hidden', timeout: 15_000 });
  t.pass('live again once the monitor answers');

  // Redis full (maxmemory, noeviction): reads work, every write is refused, ingest answers 503 redis_full.
  const admin = stack.redis.client();
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await admin.config('SET', 'maxmemory', '1');
  try {
    const refusedWrite = await stack.send({ endpoint: { method: 'GET', url: 'http://127.0.0.1:9/x' }, data: [{ a: 1 }] });
    t.equal(refusedWrite.status, 503, 'ingest refuses: Redis is full');
    await second.waitForFunction(() => document.body.dataset.redis === 'full', undefined, { timeout: 15_000 });
    t.match(await second.locator('#banner').innerText(), /Redis is full/, 'the dashboard says Redis is full, not a quiet day');
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
  await second.locator('#banner').waitFor({ state: 'hidden', timeout: 15_000 });
  t.pass('the banner goes once Redis takes writes again');

  // A page opened while Redis is down: its partners table says why it is
  // empty, in the monitor's words, instead of "loading…" for ever, and
  // fills in by itself once Redis is back.
  await second.close();
  await stack.redis.stop();
  const third = await browser.newPage();
  third.on('pageerror', (e) => problems.push(e.message));
  third.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  await third.goto(`${base}/`);
  await third.waitForFunction(() => document.body.dataset.partnersStatus === 'unavailable', undefined, { timeout: 15_000 });
  const emptyTable = await third.locator('#partners tbody').innerText();
  t.match(emptyTable, /partners unavailable: Redis is unavailable \(the monitor answered 503 unavailable\); retrying/, 'the table says why, in the monitor\'s words');
  t.notMatch(emptyTable, /loading/, 'not "loading" any more');
  t.equal(await third.locator('#partners-problem').isVisible(), false, 'no note about old rows: there are none');
  await stack.redis.start();
  await third.waitForFunction(() => document.body.dataset.partnersStatus === 'live', undefined, { timeout: 15_000 });
  await third.waitForFunction((o) => document.querySelector('#partners tbody')?.textContent?.includes(o), origin, { timeout: 10_000 });
  t.notMatch(await third.locator('#partners tbody').innerText(), /unavailable/, 'once Redis is back the table fills in, without a reload');

  // Rows already shown stay when Redis goes away again, dimmed, under a note saying they are old and why.
  await stack.redis.stop();
  await third.locator('#partners-problem').waitFor({ state: 'visible', timeout: 15_000 });
  t.match(await third.locator('#partners-problem').innerText(), /partners unavailable: Redis is unavailable .*The rows below are from /);
  t.match(await third.locator('#partners tbody').innerText(), origin, 'the old rows are still there');
  t.match(await third.locator('#partners').getAttribute('class'), /\bold\b/, 'dimmed');

  // 'Failed to load resource' would be the favicon or a refused /events (the browser logs both).
  t.same(
    problems.filter((p) => !/Failed to load resource|ERR_/.test(p)),
    [],
    'no page error and no Content-Security-Policy violation',
  );
  t.notOk(problems.some((p) => /Content Security Policy/i.test(p)), 'nothing refused by the CSP');
});
