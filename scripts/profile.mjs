#!/usr/bin/env node
// npm run profile -- <ingest|delivery> [--seconds 10] [--items 100]
//
// Runs one role under benchmark load with `node --cpu-prof` and leaves the
// profile in var/profiles/<role>-<date>.cpuprofile. Everything else (a
// private redis-server on a free port, the other role, a quiet sink) is
// started here and stopped at the end.
//   ingest:   autocannon -c 100 on /i with the v1 sample for --seconds
//   delivery: --seconds worth of postbacks queued first (--items a request),
//             then delivery started under the profiler and timed to drain
// Open the profile in Chrome DevTools (Performance > Load profile) or
// https://www.speedscope.app; the README's Performance section says what
// the hot path looked like when last measured.
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'node:http';
import autocannon from 'autocannon';

const root = resolve(new URL('..', import.meta.url).pathname);
const cli = join(root, 'dist/cli.js');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: 'string', default: '10' },
    items: { type: 'string', default: '100' },
    rate: { type: 'string', default: '6000' },
    // --no-profile: the same run without the profiler, for a quick figure.
    'no-profile': { type: 'boolean', default: false },
    // --open: delivery profiled while ingest is fed at --rate postbacks/s
    // (open loop) instead of draining a backlog.
    open: { type: 'boolean', default: false },
  },
});
const role = positionals[0];
if (role !== 'ingest' && role !== 'delivery') {
  console.error('usage: npm run profile -- <ingest|delivery> [--seconds 10] [--items 100]');
  process.exit(2);
}
const seconds = Number(values.seconds);
const items = Number(values.items);

const children = [];
let dir = null;
// The children are killed and the scratch directory (Redis's dir, the
// roles' logs) removed however the script ends; the profile has been
// moved out of it by then.
const cleanup = () => {
  children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
  if (dir !== null) rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const freePort = () =>
  new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });

async function ready(child) {
  await new Promise((res, rej) => {
    child.on('message', (m) => m === 'ready' && res());
    child.once('exit', (code) => rej(new Error(`child exited ${code}`)));
  });
}

dir = mkdtempSync(join(tmpdir(), 'pb-profile-'));
const profiles = join(root, 'var/profiles');
mkdirSync(profiles, { recursive: true });
const redisPort = await freePort();
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
children.push(redis);
await new Promise((r) => setTimeout(r, 300));
const [ingestPort, sinkPort] = [await freePort(), await freePort()];
const env = {
  ...process.env,
  REDIS_URL: `redis://127.0.0.1:${redisPort}`,
  REDIS_PREFIX: 'prof',
  INGEST_PORT: String(ingestPort),
  INGEST_HOST: '127.0.0.1',
  DELIVERY_ALLOW_PRIVATE: 'true',
  DELIVERY_METRICS_PORT: '0',
  LOG_DIR: join(dir, 'log'),
  LOG_LEVEL: 'warn',
};
const sink = fork(cli, ['sink', '--port', String(sinkPort), '--quiet'], { env, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
children.push(sink);
await ready(sink);
const profiled = (r) =>
  fork(cli, [r], { env, execArgv: values['no-profile'] ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const plain = (r) => fork(cli, [r], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });

const body = (n) =>
  JSON.stringify({
    endpoint: { method: 'GET', url: `http://127.0.0.1:${sinkPort}/data?key={key}&value={value}&foo={bar}` },
    data: Array.from({ length: n }, (_, i) => (i % 2 ? { key: 'Phyllobates', value: 'Terribilis' } : { key: 'Azureus', value: 'Dendrobates' })),
  });

function post(payload) {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port: ingestPort, path: '/i', method: 'POST', headers: { 'content-type': 'application/json' } }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode));
    });
    req.on('error', rej);
    req.end(payload);
  });
}

async function stop(child) {
  child.kill('SIGTERM');
  await once(child, 'exit');
}

let target;
if (role === 'ingest') {
  target = profiled('ingest');
  children.push(target);
  await ready(target);
  const result = await autocannon({ url: `http://127.0.0.1:${ingestPort}/i`, method: 'POST', connections: 100, duration: seconds, headers: { 'content-type': 'application/json' }, body: body(1) });
  console.log(`ingest: ${Math.round(result.requests.average)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}`);
} else {
  const ingest = plain('ingest');
  children.push(ingest);
  await ready(ingest);
  const total = Math.round(Number(values.rate) * seconds / items) * items;
  const payload = body(items);
  if (values.open) {
    target = profiled('delivery');
    children.push(target);
    await ready(target);
    const result = await autocannon({
      url: `http://127.0.0.1:${ingestPort}/i`,
      method: 'POST',
      connections: 16,
      overallRate: Math.round(Number(values.rate) / items),
      duration: seconds,
      headers: { 'content-type': 'application/json' },
      body: payload,
    });
    console.log(`open loop: ${Math.round(result.requests.average * items)} postbacks/s offered for ${seconds} s`);
    await new Promise((res) => setTimeout(res, 1000));
    await stop(target);
    await stop(ingest);
    if (values['no-profile']) {
      cleanup();
      process.exit(0);
    }
    const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'));
    const o = join(profiles, `delivery-open-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
    renameSync(join(dir, f), o);
    console.log(`profile: ${o}`);
    cleanup();
    process.exit(0);
  }
  for (let sent = 0; sent < total; sent += items * 16) {
    await Promise.all(Array.from({ length: Math.min(16, (total - sent) / items) }, () => post(payload)));
  }
  console.log(`queued ${total} postbacks (${items} a request)`);
  target = profiled('delivery');
  children.push(target);
  const started = Date.now();
  await ready(target);
  const { Redis } = await import('ioredis');
  const r = new Redis(redisPort, '127.0.0.1');
  while (Number(await r.get('prof:{0}:count')) > 0) await new Promise((res) => setTimeout(res, 100));
  const s = (Date.now() - started) / 1000;
  console.log(`delivery: drained ${total} postbacks in ${s.toFixed(1)} s: ${Math.round(total / s)}/s`);
  r.disconnect();
  await stop(ingest);
}
await stop(target);
if (values['no-profile']) {
  cleanup();
  process.exit(0);
}
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
const out = join(profiles, `${role}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
renameSync(join(dir, file), out);
console.log(`profile: ${out}`);
cleanup();
process.exit(0);
