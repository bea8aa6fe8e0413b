/**
 * Partner policies through real processes: PARTNERS_FILE shapes each
 * partner's deliveries (statuses that count, headers, signing, timeout,
 * attempts and backoff), also for a template whose host is a placeholder;
 * /preview shows it; SIGHUP and file changes reload it, a bad reload keeps
 * the old; a bad file stops a role at start; `partners check` validates.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSink } from '../helpers/sink.js';
import { startStack } from '../helpers/stack.js';
import { runCli, spawnRole, testEnv } from '../helpers/procs.js';
import { startRedis } from '../helpers/redis.js';
import { post } from '../helpers/http.js';
import { waitForLines } from '../helpers/log.js';
import { until } from '../helpers/count.js';

const dir = mkdtempSync(join(tmpdir(), 'pb-partners-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('a policy file shapes each partner\'s deliveries, and reloads', async (t) => {
  const pixel = await startSink(() => ({ status: 302, headers: { location: '/elsewhere' } }));
  const keyed = await startSink(() => ({ status: 200, delayMs: 1_000 }));
  const plain = await startSink(() => ({ status: 302, headers: { location: '/elsewhere' } }));
  t.teardown(async () => {
    await pixel.close();
    await keyed.close();
    await plain.close();
  });
  const file = join(dir, 'partners.yaml');
  writeFileSync(
    file,
    [
      'partners:',
      `  "${pixel.origin}":`,
      '    success: ["2xx", "3xx"]',
      `  "${keyed.origin}":`,
      '    headers: {X-Api-Key: "k-0123456789"}',
      '    signing: false',
      '    timeoutMs: 300',
      '    maxAttempts: 2',
      '    backoff: [100]',
      '',
    ].join('\n'),
  );
  const stack = await startStack({ PARTNERS_FILE: file, SIGNING_SECRET: 'signing-secret-0123456789', DELIVERY_BACKOFF_BASE_MS: '50', DELIVERY_MAX_ATTEMPTS: '1' });
  t.teardown(() => stack.stop());
  const log = stack.env.LOG_DIR!;
  const send = (url: string, data: object[]) => stack.send({ endpoint: { method: 'GET', url }, data });
  const idOf = async (url: string, data: object[]) => `${(await send(url, data)).json.id}:0`;

  const pixelId = await idOf(`${pixel.origin}/px?n={n}`, [{ n: 1 }]);
  const plainId = await idOf(`${plain.origin}/px?n={n}`, [{ n: 1 }]);
  const keyedId = await idOf(`${keyed.origin}/k?n={n}`, [{ n: 1 }]);
  // A placeholder in the host: the policy of the origin it renders to.
  const dynamicId = await idOf(`http://{h}:${new URL(pixel.origin).port}/dyn?n={n}`, [{ h: '127.0.0.1', n: 2 }]);
  const lines = await waitForLines(log, (ls) => [pixelId, plainId, dynamicId].every((id) => ls.some((l) => l.id === id)) && ls.filter((l) => l.id === keyedId).length >= 2, 20_000);
  const of = (id: string) => lines.filter((l) => l.id === id);
  t.match(of(pixelId), [{ outcome: 'delivered', status: 302, errorCode: null }], 'the pixel partner: a 3xx is delivered');
  t.match(of(dynamicId), [{ outcome: 'delivered', status: 302 }], 'so is it through a template whose host is a placeholder');
  t.match(of(plainId), [{ outcome: 'dead', status: 302, errorCode: 'PB_ERR_REDIRECT' }], 'another partner: the contract (a 3xx fails)');
  const keyedLines = of(keyedId);
  t.match(keyedLines, [
    { outcome: 'retry', errorCode: 'PB_ERR_DELIVERY_TIMEOUT', attempt: 1 },
    { outcome: 'dead', errorCode: 'PB_ERR_DELIVERY_TIMEOUT', attempt: 2 },
  ], 'the keyed partner: its own timeout (300 ms) and attempts (2), not the defaults (1)');
  t.ok(keyedLines.every((l) => (l.latencyMs ?? 0) < 900), `timed out at its 300 ms (${keyedLines.map((l) => l.latencyMs).join(', ')} ms)`);
  t.ok((keyedLines[1]!.deliveryTime ?? 0) - (keyedLines[0]!.deliveryTime ?? 0) >= 400, 'after its explicit 100 ms backoff (plus the attempt)');
  await keyed.waitFor(2);
  t.equal(keyed.received[0]?.headers['x-api-key'], 'k-0123456789', 'its static header');
  t.equal(keyed.received[0]?.headers['x-postback-signature'], undefined, 'unsigned, by its policy');
  t.match(pixel.received[0]?.headers['x-postback-signature'], /^v1=/, 'others signed as configured');

  const preview = await post(`${stack.ingestUrl}/preview`, JSON.stringify({ endpoint: { method: 'GET', url: `${keyed.origin}/k` }, data: [{}] }));
  t.match(preview.json.requests[0].headers, { 'x-api-key': 'k-0123456789' });
  t.notOk('x-postback-signature' in preview.json.requests[0].headers, '/preview shows the policy too');

  // Reload: a bad file is logged and the old policies stay; a good one takes over.
  writeFileSync(file, `partners:\n  "${pixel.origin}":\n    success: [nope]\n`);
  for (const role of [stack.ingest!, ...stack.deliveries]) role.proc.kill('SIGHUP');
  t.ok(await until(() => stack.deliveries[0]!.output().includes('partner policy file not reloaded'), 10_000), 'the bad reload is logged');
  const stillPixel = await idOf(`${pixel.origin}/px2?n={n}`, [{ n: 3 }]);
  t.match((await waitForLines(log, (ls) => ls.some((l) => l.id === stillPixel))).filter((l) => l.id === stillPixel), [{ outcome: 'delivered', status: 302 }], 'the old policies stay');
  writeFileSync(file, `partners:\n  "${plain.origin}":\n    success: ["3xx"]\n`);
  for (const role of stack.deliveries) role.proc.kill('SIGHUP');
  t.ok(await until(async () => {
    const id = await idOf(`${plain.origin}/px3?n={n}`, [{ n: 4 }]);
    const mine = (await waitForLines(log, (ls) => ls.some((l) => l.id === id))).filter((l) => l.id === id);
    return mine[0]?.outcome === 'delivered';
  }, 15_000), 'the new file is in force');
  t.equal(stack.deliveries[0]!.proc.exitCode, null, 'no role stopped over it');
});

t.test('a bad file stops a role at start, naming the origin and the field; partners check says the same', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.destroy());
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ partners: { 'https://api.capped.example': { rate: -5 }, 'https://*.pixel.example': { success: ['2xx', 'ok'] } } }));
  const env = testEnv(redis.url, { PARTNERS_FILE: file, INGEST_PORT: '0', MONITOR_PORT: '0' });
  for (const role of ['delivery', 'ingest', 'monitor']) {
    const r = await runCli([role], env, 20_000);
    t.equal(r.code, 1, `${role} does not start`);
    t.match(r.stderr, /bad partner policy file .*bad\.json: https:\/\/api\.capped\.example: rate must be a number from 0\.001 .*; https:\/\/\*\.pixel\.example: success "ok" is not an HTTP status/);
  }
  const check = await runCli(['partners', 'check', file], env);
  t.equal(check.code, 1);
  t.match(check.stderr, /https:\/\/api\.capped\.example: rate must be/);
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'partners:\n  "https://api.keyed.example":\n    headers: {X-Api-Key: "secret-value-123"}\n    rate: 200\n');
  const ok = await runCli(['partners', 'check', good], env);
  t.equal(ok.code, 0);
  t.match(ok.stdout, /1 partner policy, valid\n  https:\/\/api\.keyed\.example: rate 200\/s burst 20; .*headers x-api-key/);
  t.notMatch(ok.stdout, 'secret-value-123', 'header values (API keys) are never printed');
  t.equal((await runCli(['partners', 'frobnicate'], env)).code, 2, 'bad usage exits 2');
  const started = await spawnRole('delivery', { ...env, PARTNERS_FILE: good });
  t.teardown(() => started.stop('SIGKILL'));
  t.pass('a good file lets it start');
});
