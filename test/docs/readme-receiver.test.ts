/**
 * The README's receiver example, run as printed: a partner's server that
 * uses it verifies real signed deliveries (POST and GET, either secret of a
 * rotation) and refuses a tampered body, a wrong secret and a stale
 * timestamp. If the example stops working, this fails.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { startStack } from '../helpers/stack.js';

type Verify = (req: IncomingMessage, rawBody: string, secret: string) => boolean;

/** The ```js block of the README that defines `name`, as a function. */
export function readmeFunction<F>(name: string): F {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => (m[1] as string).replace(/^ {2}/gm, ''));
  const code = blocks.find((b) => b.includes(`function ${name}(`));
  if (code === undefined) throw new Error(`no js block defining ${name}() in the README`);
  return new Function('require', `${code}\nreturn ${name};`)(createRequire(import.meta.url)) as F;
}

t.test('the README receiver verifies real signed deliveries', async (t) => {
  const verify = readmeFunction<Verify>('verify');
  const secretNew = 'new-secret-0123456789abcdef';
  const secretOld = 'old-secret-0123456789abcdef';
  const seen: { method: string; checks: Record<string, boolean> }[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const staleReq = Object.assign(Object.create(req), { headers: { ...req.headers, 'x-postback-timestamp': String(Math.floor(Date.now() / 1000) - 3_600) } });
      seen.push({
        method: req.method ?? '',
        checks: {
          newSecret: verify(req, raw, secretNew),
          oldSecret: verify(req, raw, secretOld),
          wrongSecret: verify(req, raw, 'wrong-secret-0123456789'),
          tamperedBody: verify(req, `${raw} `, secretNew),
          staleTimestamp: verify(staleReq as IncomingMessage, raw, secretNew),
        },
      });
      res.end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((r) => server.close(r)));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const stack = await startStack({ SIGNING_SECRET: `${secretNew},${secretOld}` });
  t.teardown(() => stack.stop());
  await stack.send({ endpoint: { method: 'POST', url: `${origin}/hook?k={k}` }, data: [{ k: 'a b', n: 1 }] });
  await stack.send({ endpoint: { method: 'GET', url: `${origin}/hook?k={k}` }, data: [{ k: 'é' }] });
  t.ok(await stack.drained(), 'delivered');
  t.same(seen.map((s) => s.method).sort(), ['GET', 'POST']);
  for (const s of seen) {
    t.same(s.checks, { newSecret: true, oldSecret: true, wrongSecret: false, tamperedBody: false, staleTimestamp: false }, s.method);
  }
});

t.test('the README Standard Webhooks receiver verifies real deliveries (SIGNING_SCHEME=standard)', async (t) => {
  const verify = readmeFunction<Verify>('verifyStandard');
  const secretNew = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
  const secretOld = `whsec_${Buffer.alloc(32, 4).toString('base64')}`;
  const seen: { method: string; checks: Record<string, boolean> }[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const staleReq = Object.assign(Object.create(req), { method: req.method, headers: { ...req.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3_600) } });
      seen.push({
        method: req.method ?? '',
        checks: {
          newSecret: verify(req, raw, secretNew),
          oldSecret: verify(req, raw, secretOld),
          wrongSecret: verify(req, raw, `whsec_${Buffer.alloc(32, 5).toString('base64')}`),
          tamperedBody: req.method === 'GET' ? false : verify(req, `${raw} `, secretNew),
          staleTimestamp: verify(staleReq as IncomingMessage, raw, secretNew),
        },
      });
      res.end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((r) => server.close(r)));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const stack = await startStack({ SIGNING_SCHEME: 'standard', SIGNING_SECRET: `${secretNew},${secretOld}` });
  t.teardown(() => stack.stop());
  await stack.send({ endpoint: { method: 'POST', url: `${origin}/hook?k={k}` }, data: [{ k: 'a b', n: 1 }] });
  await stack.send({ endpoint: { method: 'GET', url: `${origin}/hook?k={k}` }, data: [{ k: 'é' }] });
  t.ok(await stack.drained(), 'delivered');
  t.same(seen.map((s) => s.method).sort(), ['GET', 'POST']);
  for (const s of seen) {
    t.same(s.checks, { newSecret: true, oldSecret: true, wrongSecret: false, tamperedBody: false, staleTimestamp: false }, s.method);
  }
});
