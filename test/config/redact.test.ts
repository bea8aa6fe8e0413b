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
  t.equal(redactUrl('redis://:pw@h:1'), 'redis://:***@h:1');
  t.equal(redactUrl('redis://h:1'), 'redis://h:1', 'nothing to hide');
});
