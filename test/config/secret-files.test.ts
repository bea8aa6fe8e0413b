/**
 * Secrets from files (`X_FILE`): table tests of the pure parsing, with the
 * file system given as a map (paths to text and modes), and one through the
 * real I/O layer (`node dist/cli.js config`) with real files.
 */
import t from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/parse.js';
import { redactConfig } from '../../src/config/redact.js';
import { FILE_VARIABLES, resolveSecretFiles, SECRET_VARIABLES, worldReadable } from '../../src/config/secret-files.js';
import type { Config } from '../../src/config/defaults.js';
import { runCli } from '../helpers/procs.js';

/** A file system of `path -> text` (mode 0600 unless `modes` says otherwise); anything else is ENOENT. */
function fakeFs(files: Record<string, string>, modes: Record<string, number> = {}) {
  const enoent = (path: string) => Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
  return {
    read: (path: string): string => {
      if (path === '/denied') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      if (path === '/a-dir') throw Object.assign(new Error('EISDIR: illegal operation on a directory'), { code: 'EISDIR' });
      const text = files[path];
      if (text === undefined) throw enoent(path);
      return text;
    },
    mode: (path: string): number => {
      if (files[path] === undefined) throw enoent(path);
      return 0o100000 | (modes[path] ?? 0o600);
    },
  };
}

const TOKEN = 'ingest-token-from-a-file-0123';
const ADMIN = 'admin-token-from-a-file-4567';
const SIGNING = 'signing-secret-from-a-file-89';

t.test('each secret variable is read from its X_FILE, trailing newlines trimmed, nothing else', async (t) => {
  const cases: { env: Record<string, string>; files: Record<string, string>; want: (c: Config) => unknown; is: unknown }[] = [
    { env: { INGEST_TOKENS_FILE: '/s/t' }, files: { '/s/t': `${TOKEN}\n` }, want: (c) => c.ingest.tokens, is: [TOKEN] },
    { env: { INGEST_TOKENS_FILE: '/s/t' }, files: { '/s/t': `${TOKEN},${TOKEN}-2\n\n\n` }, want: (c) => c.ingest.tokens, is: [TOKEN, `${TOKEN}-2`] },
    { env: { INGEST_TOKENS_FILE: '/s/t' }, files: { '/s/t': `${TOKEN}\r\n` }, want: (c) => c.ingest.tokens, is: [TOKEN] },
    { env: { INGEST_TOKENS_FILE: '/s/t' }, files: { '/s/t': TOKEN }, want: (c) => c.ingest.tokens, is: [TOKEN] },
    { env: { ADMIN_TOKENS_FILE: '/s/a' }, files: { '/s/a': `${ADMIN}\n` }, want: (c) => c.monitor.adminTokens, is: [ADMIN] },
    { env: { SIGNING_SECRET_FILE: '/s/k' }, files: { '/s/k': `${SIGNING}\n` }, want: (c) => c.delivery.signingSecrets, is: [SIGNING] },
    { env: { REDIS_URL_FILE: '/s/u' }, files: { '/s/u': 'rediss://:p@ss w0rd#@h:6380\n' }, want: (c) => [c.redis.mode, c.redis.url], is: ['url', 'rediss://:p@ss w0rd#@h:6380'] },
    // Everything but the trailing newlines is the value: a password may start or end with what looks like noise.
    { env: { REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_PASSWORD_FILE: '/s/p' }, files: { '/s/p': 'pa ss\tword\n' }, want: (c) => c.redis.sentinelPassword, is: 'pa ss\tword' },
    // REDIS_PASSWORD_FILE is the private Redis's file only: with your own Redis it is not read, as before
    // (an install moved to Sentinel keeps the line install-service.sh wrote, its file gone or beside REDIS_PASSWORD).
    { env: { REDIS_SENTINELS: 's1:26379', REDIS_PASSWORD_FILE: '/s/p' }, files: { '/s/p': 'private-pw\n' }, want: (c) => c.redis.password, is: undefined },
    { env: { REDIS_CLUSTER_NODES: 'n1:7000', REDIS_PASSWORD_FILE: '/nowhere/redis.password' }, files: {}, want: (c) => c.redis.password, is: undefined },
    { env: { REDIS_SENTINELS: 's1:26379', REDIS_PASSWORD: 'own-pw', REDIS_PASSWORD_FILE: '/nowhere/redis.password' }, files: {}, want: (c) => c.redis.password, is: 'own-pw' },
    { env: { REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_PASSWORD_FILE: '/s/sp' }, files: { '/s/sp': 'sentinel-pw\n' }, want: (c) => c.redis.sentinelPassword, is: 'sentinel-pw' },
    // The private Redis: REDIS_PASSWORD_FILE keeps its meaning (its generated password file), nothing read here.
    { env: { REDIS_PASSWORD_FILE: '/nowhere/redis.password' }, files: {}, want: (c) => [c.redis.mode, c.redis.passwordFile, c.redis.password], is: ['private', '/nowhere/redis.password', undefined] },
    // An empty X_FILE is unset, as an empty X is.
    { env: { INGEST_TOKENS_FILE: '' }, files: {}, want: (c) => c.ingest.tokens, is: [] },
    // An empty X beside X_FILE is unset too: no conflict.
    { env: { INGEST_TOKENS: '', INGEST_TOKENS_FILE: '/s/t' }, files: { '/s/t': TOKEN }, want: (c) => c.ingest.tokens, is: [TOKEN] },
  ];
  for (const c of cases) {
    const fs = fakeFs(c.files);
    const r = parseConfig(c.env, fs.read, fs.mode);
    t.ok(r.ok, `${JSON.stringify(c.env)}: ${r.ok ? 'ok' : r.problems.join('; ')}`);
    if (!r.ok) continue;
    t.same(c.want(r.config), c.is, JSON.stringify(c.env));
    t.same(r.warnings, [], 'a 0600 file: no warning');
  }
});

t.test('a value from a file is checked as the variable is, without echoing it', async (t) => {
  const fs = fakeFs({ '/s/short': 'short-secret\n', '/s/url': 'http://user:hunter2-pw@h\n' });
  const r = parseConfig({ INGEST_TOKENS_FILE: '/s/short', SIGNING_SECRET_FILE: '/s/short', REDIS_URL_FILE: '/s/url' }, fs.read, fs.mode);
  t.notOk(r.ok);
  if (r.ok) return;
  const text = r.problems.join('; ');
  t.match(text, /INGEST_TOKENS entries must be at least 16 characters/);
  t.match(text, /SIGNING_SECRET must be one or two/);
  t.match(text, /REDIS_URL must start with redis:\/\//);
  t.notMatch(text, /short-secret|hunter2/, 'nothing of the files is shown');
});

t.test('refused: both set, a file missing, unreadable, a directory, empty or blank; each coded, naming variable and path', async (t) => {
  const secret = 'do-not-print-this-secret-0123';
  const fs = fakeFs({ '/s/t': `${secret}\n`, '/s/empty': '', '/s/newlines': '\n\n', '/s/blank': '  \t \n' });
  const cases: [Record<string, string>, RegExp][] = [
    [{ INGEST_TOKENS: secret, INGEST_TOKENS_FILE: '/s/t' }, /^PB_ERR_SECRET_CONFLICT: INGEST_TOKENS and INGEST_TOKENS_FILE are both set: set only one/],
    [{ ADMIN_TOKENS: secret, ADMIN_TOKENS_FILE: '/s/t' }, /^PB_ERR_SECRET_CONFLICT: ADMIN_TOKENS and ADMIN_TOKENS_FILE are both set/],
    [{ SIGNING_SECRET: secret, SIGNING_SECRET_FILE: '/s/t' }, /^PB_ERR_SECRET_CONFLICT: SIGNING_SECRET and SIGNING_SECRET_FILE/],
    [{ REDIS_URL: `redis://:${secret}@h:1`, REDIS_URL_FILE: '/s/t' }, /^PB_ERR_SECRET_CONFLICT: REDIS_URL and REDIS_URL_FILE/],
    [{ REDIS_SENTINELS: 's:1', REDIS_SENTINEL_PASSWORD: secret, REDIS_SENTINEL_PASSWORD_FILE: '/s/t' }, /^PB_ERR_SECRET_CONFLICT: REDIS_SENTINEL_PASSWORD and REDIS_SENTINEL_PASSWORD_FILE/],
    [{ REDIS_SENTINELS: 's:1', REDIS_SENTINEL_PASSWORD: secret, REDIS_SENTINEL_PASSWORD_FILE: '/s/t' }, /^PB_ERR_SECRET_CONFLICT: REDIS_SENTINEL_PASSWORD and REDIS_SENTINEL_PASSWORD_FILE/],
    [{ INGEST_TOKENS_FILE: '/s/missing' }, /^PB_ERR_SECRET_FILE: INGEST_TOKENS_FILE \(\/s\/missing\) cannot be read: ENOENT$/],
    [{ INGEST_TOKENS_FILE: '/denied' }, /^PB_ERR_SECRET_FILE: INGEST_TOKENS_FILE \(\/denied\) cannot be read: EACCES$/],
    [{ SIGNING_SECRET_FILE: '/a-dir' }, /^PB_ERR_SECRET_FILE: SIGNING_SECRET_FILE \(\/a-dir\) cannot be read: EISDIR$/],
    [{ ADMIN_TOKENS_FILE: '/s/empty' }, /^PB_ERR_SECRET_FILE: ADMIN_TOKENS_FILE \(\/s\/empty\) is empty$/],
    [{ ADMIN_TOKENS_FILE: '/s/newlines' }, /^PB_ERR_SECRET_FILE: ADMIN_TOKENS_FILE \(\/s\/newlines\) is empty$/],
    // Blank would read as unset: ingest without its tokens, silently.
    [{ INGEST_TOKENS_FILE: '/s/blank' }, /^PB_ERR_SECRET_FILE: INGEST_TOKENS_FILE \(\/s\/blank\) is empty$/],
    [{ REDIS_SENTINELS: 's:1', REDIS_SENTINEL_PASSWORD_FILE: '/s/missing' }, /^PB_ERR_SECRET_FILE: REDIS_SENTINEL_PASSWORD_FILE \(\/s\/missing\) cannot be read: ENOENT$/],
  ];
  for (const [env, re] of cases) {
    const r = parseConfig(env, fs.read, fs.mode);
    t.notOk(r.ok, JSON.stringify(Object.keys(env)));
    if (r.ok) continue;
    t.equal(r.problems.length, 1, `${Object.keys(env).join(', ')}: one problem (${r.problems.join('; ')})`);
    t.match(r.problems[0], re);
    t.notMatch(r.problems.join('; '), secret, 'the value is never shown');
  }
  // Every problem at once, as for any variable.
  const all = parseConfig({ INGEST_TOKENS_FILE: '/s/missing', ADMIN_TOKENS_FILE: '/s/empty', INGEST_PORT: 'x' }, fs.read, fs.mode);
  t.equal(all.ok ? 0 : all.problems.length, 3, 'problems with files are reported with the others');
});

t.test('a file other users may read: one warning naming it (group-readable is fine)', async (t) => {
  t.ok(worldReadable(0o644) && worldReadable(0o604) && worldReadable(0o444));
  t.notOk(worldReadable(0o600) || worldReadable(0o640) || worldReadable(0o440) || worldReadable(0o400));
  const fs = fakeFs({ '/s/t': TOKEN, '/s/a': ADMIN }, { '/s/t': 0o644, '/s/a': 0o640 });
  const r = parseConfig({ INGEST_TOKENS_FILE: '/s/t', ADMIN_TOKENS_FILE: '/s/a' }, fs.read, fs.mode);
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.warnings, ['INGEST_TOKENS_FILE (/s/t) is readable by other users (mode 0644): chmod o-r it, or keep it where only this service can read it']);
  t.same(r.config.ingest.tokens, [TOKEN], 'and it is used');
  const noStat = parseConfig({ INGEST_TOKENS_FILE: '/s/t' }, fs.read);
  t.same(noStat.ok && noStat.warnings, [], 'without a way to read modes, nothing is warned about');
});

t.test('every secret the redaction hides but REDIS_PASSWORD has an X_FILE, and the environment keeps no value', async (t) => {
  t.same([...SECRET_VARIABLES].sort(), ['ADMIN_TOKENS', 'INGEST_TOKENS', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'REDIS_URL', 'SIGNING_SECRET']);
  t.same([...FILE_VARIABLES].sort(), ['ADMIN_TOKENS', 'INGEST_TOKENS', 'REDIS_SENTINEL_PASSWORD', 'REDIS_URL', 'SIGNING_SECRET']);
  const files: Record<string, string> = {};
  const env: Record<string, string> = { REDIS_SENTINELS: 's1:26379' };
  for (const name of FILE_VARIABLES) {
    if (name === 'REDIS_URL') continue; // a mode of its own: below
    files[`/s/${name}`] = `${name.toLowerCase()}-secret-0123456789\n`;
    env[`${name}_FILE`] = `/s/${name}`;
  }
  const fs = fakeFs({ ...files, '/s/url': 'rediss://u:url-secret-0123456789@h:6380\n' });
  const resolved = resolveSecretFiles(env, fs.read, fs.mode);
  t.same(resolved.problems, []);
  t.same(Object.keys(resolved.files).sort(), ['ADMIN_TOKENS', 'INGEST_TOKENS', 'REDIS_SENTINEL_PASSWORD', 'SIGNING_SECRET']);
  for (const [e, secrets] of [
    [env, Object.values(files)],
    [{ REDIS_URL_FILE: '/s/url' }, ['url-secret-0123456789']],
  ] as const) {
    const r = parseConfig(e, fs.read, fs.mode);
    t.ok(r.ok, r.ok ? '' : r.problems.join('; '));
    if (!r.ok) continue;
    const printed = JSON.stringify(redactConfig(r.config));
    for (const s of secrets) t.notMatch(printed, s.trim(), `${s.trim().slice(0, 12)}... hidden by redactConfig`);
  }
});

t.test('the real I/O layer: `config` reads the files, prints no secret, warns once, refuses a bad one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-secrets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string, mode: number) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };
  const base = { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent' };
  const token = file('token', `${TOKEN}\n`, 0o600);
  const signing = file('signing', `${SIGNING}\n`, 0o644);
  const good = await runCli(['config'], { ...base, INGEST_TOKENS_FILE: token, SIGNING_SECRET_FILE: signing });
  t.equal(good.code, 0, good.stderr);
  const printed = JSON.parse(good.stdout) as Config;
  t.same(printed.ingest.tokens, ['***'], 'the token counted, hidden');
  t.same(printed.delivery.signingSecrets, ['***']);
  t.notMatch(good.stdout + good.stderr, new RegExp(`${TOKEN}|${SIGNING}`), 'neither secret printed');
  t.equal(
    good.stderr,
    `postback-delivery: warning: SIGNING_SECRET_FILE (${signing}) is readable by other users (mode 0644): chmod o-r it, or keep it where only this service can read it\n`,
    'one warning line, for the file others may read',
  );

  const both = await runCli(['config'], { ...base, INGEST_TOKENS: TOKEN, INGEST_TOKENS_FILE: token });
  t.equal(both.code, 1);
  t.match(both.stderr, /^postback-delivery: bad configuration: PB_ERR_SECRET_CONFLICT: INGEST_TOKENS and INGEST_TOKENS_FILE are both set: set only one/);
  const missing = await runCli(['config'], { ...base, ADMIN_TOKENS_FILE: join(dir, 'nope') });
  t.equal(missing.code, 1);
  t.equal(missing.stderr, `postback-delivery: bad configuration: PB_ERR_SECRET_FILE: ADMIN_TOKENS_FILE (${join(dir, 'nope')}) cannot be read: ENOENT\n`);
  await t.test('a file the process may not read', { skip: process.getuid?.() === 0 ? 'running as root, which reads any file' : false }, async (t) => {
    const locked = file('locked', `${TOKEN}\n`, 0o000);
    const denied = await runCli(['config'], { ...base, INGEST_TOKENS_FILE: locked });
    t.equal(denied.code, 1);
    t.equal(denied.stderr, `postback-delivery: bad configuration: PB_ERR_SECRET_FILE: INGEST_TOKENS_FILE (${locked}) cannot be read: EACCES\n`);
  });
  // A path given by mistake to something endless: refused at once, not read until the heap is full.
  const endless = await runCli(['config'], { ...base, SIGNING_SECRET_FILE: '/dev/zero' }, 20_000);
  t.equal(endless.code, 1, 'an endless file is refused');
  t.equal(endless.stderr, 'postback-delivery: bad configuration: PB_ERR_SECRET_FILE: SIGNING_SECRET_FILE (/dev/zero) cannot be read: larger than 4 MiB\n');
  const empty = await runCli(['config'], { ...base, SIGNING_SECRET_FILE: file('empty', '\n', 0o600) });
  t.equal(empty.code, 1);
  t.match(empty.stderr, /PB_ERR_SECRET_FILE: SIGNING_SECRET_FILE \(.*empty\) is empty\n$/);
});
