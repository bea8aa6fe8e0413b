/**
 * Secrets from files through real processes: ingest and delivery started
 * with INGEST_TOKENS_FILE, REDIS_URL_FILE (a Redis with a password) and
 * SIGNING_SECRET_FILE, none of the secrets in their environment. A request
 * with the file's token is accepted and delivered, signed with the file's
 * secret; one without it, or with another, is refused. The secrets appear
 * neither in /proc/<pid>/environ nor in any log.
 */
import t from 'tap';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSink } from '../helpers/sink.js';
import { startRedis } from '../helpers/redis.js';
import { runCli, spawnRole, testEnv } from '../helpers/procs.js';
import { post } from '../helpers/http.js';

t.test('ingest and delivery with every secret from a file', async (t) => {
  const sink = await startSink();
  t.teardown(() => sink.close());
  const password = 'redis-file-pass-3c9d0e7a';
  const redis = await startRedis({ args: ['--requirepass', password] });
  t.teardown(() => redis.destroy());
  const token = 'ingest-file-token-8b2f4a6c1d';
  const signing = 'signing-file-secret-5e7a9c0b';
  const dir = mkdtempSync(join(tmpdir(), 'pb-secret-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const { REDIS_URL: _inEnv, ...env } = testEnv('unused', {
    INGEST_PORT: '0',
    LOG_LEVEL: 'debug',
    REDIS_URL_FILE: file('redis-url', `redis://:${password}@127.0.0.1:${redis.port}\n`),
    INGEST_TOKENS_FILE: file('ingest-tokens', `${token}\n`),
    SIGNING_SECRET_FILE: file('signing-secret', `${signing}\n`),
  });
  t.equal(env.REDIS_URL, undefined, 'no REDIS_URL in the environment');

  const ingest = await spawnRole('ingest', env);
  t.teardown(() => ingest.stop());
  const delivery = await spawnRole('delivery', env);
  t.teardown(() => delivery.stop());
  const url = `http://127.0.0.1:${ingest.port('ingest')}/i`;
  const body = JSON.stringify({ endpoint: { method: 'GET', url: `${sink.origin}/from-file?n={n}` }, data: [{ n: 1 }] });
  const json = { 'content-type': 'application/json' };

  const none = await post(url, body, json);
  t.equal(none.status, 401, 'no token: refused');
  t.equal(none.json.error, 'unauthorized');
  t.equal((await post(url, body, { ...json, authorization: 'Bearer another-token-0000000' })).status, 401, 'another token: refused');
  const ok = await post(url, body, { ...json, authorization: `Bearer ${token}` });
  t.equal(ok.status, 202, 'the token from the file: accepted (and queued in the Redis the URL file names)');

  await sink.waitFor(1);
  t.equal(sink.received.length, 1, 'the one accepted postback, delivered');
  const r = sink.received[0]!;
  t.equal(r.url, '/from-file?n=1');
  const ts = String(r.headers['x-postback-timestamp']);
  const payload = `${String(r.headers['x-postback-id'])}\n${ts}\nGET\n${sink.origin}${r.url}\n`;
  t.equal(r.headers['x-postback-signature'], `v1=${createHmac('sha256', signing).update(payload).digest('hex')}`, 'signed with the secret from the file');

  for (const role of [ingest, delivery]) {
    const environ = readFileSync(`/proc/${role.pid}/environ`, 'utf8');
    t.match(environ, /(^|\0)INGEST_TOKENS_FILE=/, 'the environment holds the path');
    for (const secret of [token, password, signing]) t.notMatch(environ, secret, `${secret.slice(0, 12)}... not in /proc/<pid>/environ`);
  }
  const config = await runCli(['config'], env);
  t.equal(config.code, 0, config.stderr);
  await ingest.stop();
  await delivery.stop();
  const logs = readdirSync(env.LOG_DIR!).map((f) => readFileSync(join(env.LOG_DIR!, f), 'utf8')).join('\n') + ingest.output() + delivery.output() + config.stdout + config.stderr;
  t.ok(logs.length > 200, 'there are logs to search');
  for (const secret of [token, password, signing]) t.notMatch(logs, secret, `${secret.slice(0, 12)}... in no log nor in \`config\``);
});
