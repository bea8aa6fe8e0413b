/**
 * The dashboard in a real headless Chromium (Debian's, driven by
 * playwright-core) against a running pipeline with traffic: the charts
 * draw, the numbers move, partners in trouble (breaker open, paused,
 * mostly failing) stand out, and the Redis-down banner shows. A screenshot is
 * kept in var/test-artifacts/. Where /usr/bin/chromium is absent the test
 * says so and skips (`.ci/run` installs it, so CI always runs it).
 */
import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { spawnRole } from '../helpers/procs.js';
import { freePort } from '../../bench/lib/ports.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../var/test-artifacts/', import.meta.url));

const ADMIN = 'admin-token-for-the-dashboard-test';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (apt-get install chromium to run it; .ci/run does)`;

t.test('the dashboard renders live charts and moving numbers', { skip }, async (t) => {
  const { chromium } = await import('playwright-core');
  const sink = await startSink((r) => (r.url.startsWith('/bad') ? { status: 503 } : { status: 200 }));
  t.teardown(() => sink.close());
  // Partners in trouble, each its own origin: one answering 503 to
  // everything (mostly failing, its breaker kept closed: the ratio rule is
  // off in tests), one refusing connections (its breaker opens after 3 in
  // a row), one paused by an operator; and one healthy.
  const failing = await startSink(() => ({ status: 503 }));
  t.teardown(() => failing.close());
  const healthy = await startSink(() => ({ status: 200 }));
  t.teardown(() => healthy.close());
  const refused = `http://127.0.0.1:${await freePort()}`;
  const paused = 'https://api.paused.example';
  const stack = await startStack({ MONITOR_PORT: '0', DELIVERY_METRICS_PORT: '0', DELIVERY_BACKOFF_BASE_MS: '100', PARTNER_BREAKER_CONSECUTIVE: '3', ADMIN_TOKENS: ADMIN });
  t.teardown(() => stack.stop());
  const monitor = await spawnRole('monitor', stack.env);
  t.teardown(() => monitor.stop());
  const monitorPort = monitor.port('monitor');
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ n: i }));
  for (const [origin, n] of [[failing.origin, 4], [healthy.origin, 12], [refused, 6]] as const) {
    t.equal((await stack.send({ endpoint: { method: 'GET', url: `${origin}/cb?n={n}` }, data: many(n) })).status, 202);
  }
  const pausedAnswer = await fetch(`http://127.0.0.1:${monitorPort}/partners/${encodeURIComponent(paused)}/pause`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: '{"reason": "maintenance"}',
  });
  t.equal(pausedAnswer.status, 200, 'a partner paused through the API');

  let sending = true;
  const traffic = (async () => {
    for (let i = 0; sending; i++) {
      const path = i % 4 === 0 ? '/bad' : '/ok';
      await stack.send({ endpoint: { method: 'GET', url: `${sink.origin}${path}?n={n}` }, data: Array.from({ length: 25 }, (_, n) => ({ n })) }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  t.teardown(async () => {
    sending = false;
    await traffic;
  });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const external: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(`http://127.0.0.1:${monitorPort}/`)) external.push(r.url());
  });
  await page.goto(`http://127.0.0.1:${monitorPort}/`);

  await page.waitForFunction(() => Number(document.body.dataset.frames ?? 0) >= 3, undefined, { timeout: 20_000 });
  const tile = (name: string) => page.locator(`#tile-${name} .value`).innerText();
  await page.waitForFunction(() => document.querySelector('#tile-delivered .value')?.textContent !== '–' && Number(document.querySelector('#tile-delivered .value')?.textContent) > 0, undefined, { timeout: 20_000 });
  const first = { delivered: await tile('delivered'), frames: Number(await page.evaluate(() => document.body.dataset.frames)) };
  await page.waitForFunction((n) => Number(document.body.dataset.frames) >= n + 3, first.frames, { timeout: 20_000 });
  t.ok(Number(await tile('delivered')) > 0, `delivered/s shows traffic (${await tile('delivered')})`);
  t.ok(Number(await tile('retried')) > 0, `retried/s shows the failing partner (${await tile('retried')})`);
  t.match(await tile('p99'), /ms|s$/, 'latency shown');
  t.match(await page.locator('#failing tbody').innerText(), sink.origin, 'the failing origin is listed');
  await page.waitForFunction(() => Number(document.body.dataset.partners ?? 0) >= 1, undefined, { timeout: 20_000 });
  const partnersText = await page.locator('#partners tbody').innerText();
  t.match(partnersText, sink.origin, 'the partners table lists the partner');
  t.match(partnersText, /closed/, 'with its state');

  // Partners in trouble stand out: a row class (its colour) and words in the state cell, not colour alone.
  const rowOf = (origin: string) => page.locator('#partners tbody tr', { hasText: origin });
  await page.waitForFunction(
    (origins) => origins.every((o) => Array.from(document.querySelectorAll('#partners tbody tr.trouble')).some((tr) => tr.textContent?.includes(o))),
    [failing.origin, refused, paused],
    { timeout: 30_000 },
  );
  t.match(await rowOf(failing.origin).getAttribute('class'), /\btrouble-failing\b/, 'mostly failing: marked');
  t.match(await rowOf(failing.origin).locator('td').nth(1).innerText(), /^⚠ closed · failing$/, 'with the word "failing", its breaker still closed');
  t.match(await rowOf(failing.origin).locator('td').nth(6).getAttribute('class'), /\bbad\b/, 'its success % in red');
  t.match(await rowOf(refused).getAttribute('class'), /\btrouble-(open|half-open)\b/, 'breaker open: marked');
  t.match(await rowOf(refused).locator('td').nth(1).innerText(), /^⚠ (open|half-open)$/);
  t.match(await rowOf(paused).getAttribute('class'), /\btrouble-paused\b/, 'paused: marked');
  t.match(await rowOf(paused).locator('td').nth(1).innerText(), /^‖ paused$/);
  t.match(await rowOf(paused).locator('td').nth(1).getAttribute('title'), /reason: maintenance/, 'the pause reason in its title');
  t.equal(await rowOf(healthy.origin).getAttribute('class'), null, 'a healthy partner: no mark');
  t.equal(await rowOf(healthy.origin).locator('td').nth(1).innerText(), 'closed');
  const background = (origin: string) => rowOf(origin).locator('td').first().evaluate((td) => getComputedStyle(td).backgroundColor);
  const calm = await background(healthy.origin);
  for (const origin of [failing.origin, refused, paused]) t.not(await background(origin), calm, `${origin}: its own colour`);
  t.not(await background(paused), await background(failing.origin), 'paused apart from failing');

  await page.locator('#partners th[data-key="attempts"]').click();
  t.match(await page.locator('#partners th[data-key="attempts"]').getAttribute('class'), /sorted/, 'a column sorts on click');
  const sortState = () =>
    page.evaluate(() => ({
      sorted: Array.from(document.querySelectorAll('#partners th[aria-sort]')).map((th) => `${(th as HTMLElement).dataset.key}:${th.getAttribute('aria-sort')}`),
      origins: Array.from(document.querySelectorAll('#partners tbody tr')).map((tr) => tr.firstElementChild?.textContent ?? ''),
      focused: (document.activeElement?.closest('th') as HTMLElement | null)?.dataset.key ?? null,
    }));
  t.same((await sortState()).sorted, ['attempts:descending'], 'aria-sort on the sorted column only');

  // The same from the keyboard: each header holds a button, Tab reaches it, Enter and Space sort.
  await page.locator('#partners th[data-key="origin"] button').focus();
  await page.keyboard.press('Enter');
  let sorted = await sortState();
  t.same(sorted.sorted, ['origin:ascending'], 'Enter on "origin": ascending, as a first click does');
  t.same(sorted.origins, [...sorted.origins].sort(), 'rows in origin order');
  t.ok(sorted.origins.length >= 4, `${sorted.origins.length} rows`);
  await page.keyboard.press('Space');
  sorted = await sortState();
  t.same(sorted.sorted, ['origin:descending'], 'Space: the other way');
  t.same(sorted.origins, [...sorted.origins].sort().reverse(), 'rows in reverse origin order');
  await page.keyboard.press('Tab');
  t.equal((await sortState()).focused, 'state', 'Tab moves to the next header');
  await page.keyboard.press('Enter');
  t.same((await sortState()).sorted, ['state:descending'], 'and sorts by it');
  t.equal(await page.locator('#partners th[data-key="state"]').getAttribute('class'), 'sorted', 'the same classes as a click gives');

  // Every chart drew its canvas with something on it.
  for (const id of ['chart-throughput', 'chart-latency', 'chart-queue', 'chart-dead']) {
    const painted = await page.evaluate((sel) => {
      const c = document.querySelector(`#${sel} canvas`) as HTMLCanvasElement | null;
      if (!c || c.width === 0) return 0;
      const data = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? [];
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if ((data[i] as number) > 0) n++;
      return n;
    }, id);
    t.ok(painted > 100, `${id} is drawn (${painted} painted pixels)`);
  }
  const points = await page.evaluate(() => {
    const legend = document.querySelectorAll('#chart-throughput .u-series');
    return legend.length;
  });
  t.ok(points >= 5, 'the throughput chart has its series');

  // A page opened now starts its queue charts from the readings the monitor
  // kept while the first page was open, not empty (the first live frame comes after).
  const opened = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  opened.on('pageerror', (e) => errors.push(e.message));
  const shown = Number(await page.evaluate(() => document.body.dataset.frames));
  await opened.goto(`http://127.0.0.1:${monitorPort}/`);
  await opened.waitForFunction(() => document.body.dataset.queueHistory !== undefined, undefined, { timeout: 20_000 });
  const held = Number(await opened.evaluate(() => document.body.dataset.queueHistory));
  t.ok(held >= Math.min(shown, 300) - 2, `the queue chart starts with ${held} readings (the first page saw ${shown} frames)`);
  t.ok(held >= 5, 'the last seconds at once');
  await opened.waitForFunction(() => Number(document.body.dataset.frames ?? 0) >= 1, undefined, { timeout: 20_000 });
  for (const id of ['chart-queue', 'chart-dead']) {
    const painted = await opened.evaluate((sel) => {
      const c = document.querySelector(`#${sel} canvas`) as HTMLCanvasElement | null;
      const data = c && c.width > 0 ? (c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? []) : [];
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if ((data[i] as number) > 0) n++;
      return n;
    }, id);
    t.ok(painted > 100, `${id} drawn on the new page (${painted} painted pixels)`);
  }
  await opened.close();

  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = join(ARTIFACTS, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(existsSync(shot), `screenshot kept: ${shot}`);

  await stack.redis.stop();
  await page.locator('#banner').waitFor({ state: 'visible', timeout: 15_000 });
  t.match(await page.locator('#banner').innerText(), /Redis is unreachable/);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-redis-down.png'), fullPage: true });
  t.same(errors, [], 'no page errors');
  t.same(external, [], 'nothing loaded from outside the monitor (no CDN)');
});
