/**
 * scripts/install-service.sh writes valid systemd units, idempotently,
 * into directories of the test's choosing (--no-start: no user, no
 * systemctl). Units are checked with `systemd-analyze verify` where it
 * exists, and structurally everywhere.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/parse.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/install-service.sh', import.meta.url));
const APP = fileURLToPath(new URL('../..', import.meta.url));

function run(dir: string): string {
  return execFileSync('bash', [SCRIPT, '--no-start', '--user', userInfo().username, '--unit-dir', join(dir, 'units'), '--env-dir', join(dir, 'etc'), '--data-dir', join(dir, 'data'), '--log-dir', join(dir, 'log')], {
    encoding: 'utf8',
  });
}

function sections(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      current = new Map();
      out.set(header[1] as string, current);
    } else if (line.trim() && !line.startsWith('#')) {
      const eq = line.indexOf('=');
      if (eq > 0 && current) current.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  return out;
}

t.test('units for Redis and every role, and a target grouping them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-units-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = run(dir);
  const units = readdirSync(join(dir, 'units')).sort();
  t.same(units, ['postback-delivery.service', 'postback-delivery.target', 'postback-ingest.service', 'postback-monitor.service', 'postback-redis.service']);

  for (const role of ['redis', 'ingest', 'delivery', 'monitor']) {
    const unit = sections(readFileSync(join(dir, 'units', `postback-${role}.service`), 'utf8'));
    const svc = unit.get('Service');
    t.ok(svc, `${role}: [Service]`);
    t.match(svc?.get('ExecStart'), new RegExp(`node .*${APP.replace(/\/$/, '')}/dist/cli\\.js ${role}$`), `${role}: runs the role`);
    t.equal(svc?.get('EnvironmentFile'), join(dir, 'etc', 'env'));
    t.equal(svc?.get('Restart'), 'always');
    t.equal(svc?.get('KillSignal'), 'SIGTERM');
    t.equal(unit.get('Install')?.get('WantedBy'), 'postback-delivery.target');
    if (role === 'redis') {
      const condition = svc?.get('ExecCondition') ?? '';
      t.equal(condition, `/bin/sh -c 'test -z "$$REDIS_URL$$REDIS_URL_FILE$$REDIS_CLUSTER_NODES$$REDIS_SENTINELS"'`, 'redis: skipped when the env file names another Redis');
      // Run as systemd does ($$: a literal $): the private Redis runs only when no other Redis is named.
      const script = /^\/bin\/sh -c '(.*)'$/.exec(condition)?.[1]?.replaceAll('$$', '$') ?? 'false';
      const skipped = (env: Record<string, string>) => spawnSync('/bin/sh', ['-c', script], { env: { PATH: process.env.PATH ?? '', ...env } }).status !== 0;
      t.notOk(skipped({}), 'redis: runs when no other Redis is named');
      for (const name of ['REDIS_URL', 'REDIS_URL_FILE', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS']) t.ok(skipped({ [name]: 'x' }), `redis: skipped with ${name}`);
    } else {
      t.equal(svc?.get('TimeoutStopSec'), '20', `${role}: stop timeout 5 s above the 15 s graceful bound`);
      t.equal(svc?.get('ExecReload'), '/bin/kill -HUP $MAINPID', `${role}: systemctl reload sends SIGHUP (policies, log files)`);
      t.match(unit.get('Unit')?.get('After'), /postback-redis\.service/, `${role}: starts after Redis, stops before it`);
    }
  }
  const env = readFileSync(join(dir, 'etc', 'env'), 'utf8');
  t.match(env, /^REDIS_PORT=6380$/m, 'Redis on a non-default port');
  t.notMatch(env, /6379/);
  t.match(env, new RegExp(`^REDIS_PASSWORD_FILE=${join(dir, 'etc', 'redis.password')}$`, 'm'));
  // Ingest on every interface, so a generated bearer token: in a file of its own, not in the environment.
  const tokenFile = join(dir, 'etc', 'ingest.tokens');
  t.match(env, new RegExp(`^INGEST_TOKENS_FILE=${tokenFile}$`, 'm'));
  t.notMatch(env, /^INGEST_TOKENS=/m, 'no token in the env file');
  const token = readFileSync(tokenFile, 'utf8').trim();
  t.match(token, /^[0-9a-f]{48}$/, 'a generated bearer token');
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'readable by its owner only');
  t.notMatch(first, token, 'the token is not printed');
  // The env file and the token file, read as a role reads them: ingest's token is the file's.
  const vars = Object.fromEntries(env.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const parsed = parseConfig(vars, (p) => readFileSync(p, 'utf8'));
  t.ok(parsed.ok, parsed.ok ? '' : parsed.problems.join('; '));
  if (parsed.ok) t.same(parsed.config.ingest.tokens, [token], 'ingest reads the generated token');
  t.equal(statSync(join(dir, 'etc', 'env')).mode & 0o777, 0o640);
  const password = join(dir, 'etc', 'redis.password');
  t.match(readFileSync(password, 'utf8'), /^[0-9a-f]{48}\n$/, 'a generated password');
  t.equal(statSync(password).mode & 0o777, 0o600, 'readable by its owner only');
  t.match(first, /wrote .*postback-ingest\.service/);

  const verify = spawnSync('systemd-analyze', ['verify', ...units.map((u) => join(dir, 'units', u))], { encoding: 'utf8' });
  if (verify.error) t.comment('systemd-analyze not available: structural checks only');
  else t.equal(verify.status, 0, `systemd-analyze verify: ${verify.stderr}`);

  // Idempotent: a second run changes nothing and keeps settings and password.
  writeFileSync(join(dir, 'etc', 'env'), `${env}INGEST_PORT=8181\n`);
  const pw = readFileSync(password, 'utf8');
  const second = run(dir);
  t.match(second, /keeping .*etc\/env/);
  t.equal((second.match(/unchanged /g) ?? []).length, 5, 'every unit unchanged');
  t.match(readFileSync(join(dir, 'etc', 'env'), 'utf8'), /INGEST_PORT=8181/, 'edits to the env file survive');
  t.equal(readFileSync(password, 'utf8'), pw, 'the password survives');
  t.equal(readFileSync(tokenFile, 'utf8').trim(), token, 'the token survives');

  // A longer graceful bound in the env file: run again, the stop timeouts follow.
  writeFileSync(join(dir, 'etc', 'env'), `${readFileSync(join(dir, 'etc', 'env'), 'utf8')}SHUTDOWN_TIMEOUT_MS=40000\n`);
  run(dir);
  for (const role of ['ingest', 'delivery', 'monitor']) {
    const svc = sections(readFileSync(join(dir, 'units', `postback-${role}.service`), 'utf8')).get('Service');
    t.equal(svc?.get('TimeoutStopSec'), '45', `${role}: 5 s above SHUTDOWN_TIMEOUT_MS 40000`);
  }
});
