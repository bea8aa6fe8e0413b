import t from 'tap';
import { parseConfig } from '../../src/config/parse.js';
import { redactConfig, redactUrl } from '../../src/config/redact.js';

t.test('no secret survives redaction, whatever the Redis mode', async (t) => {
  const secrets = {
    REDIS_PASSWORD: 'node-password-123',
    REDIS_SENTINEL_PASSWORD: 'sentinel-password-456',
    INGEST_TOKENS: 'ingest-token-0123456789,ingest-token-abcdefghij',
    SIGNING_SECRET: 'signing-secret-0123456789',
  };
  for (const mode of [{ REDIS_SENTINELS: 's1:26379' }, { REDIS_CLUSTER_NODES: 'n1:6380' }, { REDIS_URL: 'rediss://user:url-password-789@h:6380' }]) {
    const r = parseConfig({ ...secrets, ...mode });
    t.ok(r.ok, r.ok ? '' : r.problems.join('; '));
    if (!r.ok) continue;
    const text = JSON.stringify(redactConfig(r.config));
    for (const secret of [...Object.values(secrets).flatMap((s) => s.split(',')), 'url-password-789']) {
      t.notMatch(text, secret, `${Object.keys(mode)[0]}: ${secret} hidden`);
    }
    t.match(text, /\*\*\*/);
  }
});

t.test('redactUrl hides the password wherever a Redis URL holds it', async (t) => {
  const cases: [string, string, string][] = [
    ['redis://:pw@h:1', 'redis://:***@h:1', 'password only'],
    ['rediss://user:pw@h:6380/2', 'rediss://user:***@h:6380/2', 'user and password'],
    ['redis://h:1', 'redis://h:1', 'nothing to hide'],
    ['redis://user@h:1', 'redis://user@h:1', 'a user name alone is not a secret'],
    ['redis://:p@ss@w0rd@h:1', 'redis://:***@h:1', 'an unescaped @ in the password'],
    ['redis://:pa/ss@h:1', 'redis://:***@h:1', 'an unescaped / in the password'],
    ['redis://127.0.0.1:1?password=querysecret', 'redis://127.0.0.1:1?password=***', 'password in the query'],
    ['redis://h:1/0?db=0&Password=qs&name=x', 'redis://h:1/0?db=0&Password=***&name=x', 'query, any case, among others'],
    ['REDIS://:pw@h:1', 'REDIS://:***@h:1', 'scheme in capitals'],
    ['rediss//:pw@h:1', '***@h:1', 'a mistyped scheme: everything before the @'],
  ];
  for (const [url, want, name] of cases) t.equal(redactUrl(url), want, name);
});

t.test('a mistyped REDIS_URL is refused without echoing it', async (t) => {
  for (const url of ['rediss//:mySecretPw@10.0.0.5:6380', 'REDIS://:mySecretPw@h:1', 'http://:mySecretPw@h:1']) {
    const r = parseConfig({ REDIS_URL: url });
    t.notOk(r.ok, url);
    if (r.ok) continue;
    const text = r.problems.join('\n');
    t.match(text, /REDIS_URL must start with redis:\/\/ or rediss:\/\//);
    t.notMatch(text, 'mySecretPw', 'the password is not in the message');
  }
});
