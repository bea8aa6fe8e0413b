/**
 * TemplateStore against a real Redis: templates come back from one load
 * even when the cache fills and is cleared halfway through it.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { CACHE_MAX, TemplateStore } from '../../src/delivery/templates.js';
import { encodeTemplate } from '../../src/queue/codec.js';
import { shardKeys, templateKey } from '../../src/queue/keys.js';
import { createRedis } from '../../src/queue/redis.js';
import { testConfig } from '../helpers/config.js';
import { startRedis } from '../helpers/redis.js';

t.test('a load finds every template it was asked for, even across a cache clear', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.destroy());
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const redis = createRedis(testConfig({ REDIS_URL: server.url, REDIS_PREFIX: prefix }), 'delivery', 'test-templates');
  t.teardown(() => redis.disconnect());
  const keys = shardKeys(prefix, 0);
  const ids = Array.from({ length: CACHE_MAX + 5 }, (_, i) => `tpl${i}`);
  const pipe = server.client().pipeline();
  for (const id of ids) pipe.set(templateKey(keys, id), encodeTemplate({ method: 'GET', url: `http://h${id}.example/cb?k={k}` }));
  await pipe.exec();
  const store = new TemplateStore(redis);
  const first = await store.load(keys, ids.slice(0, CACHE_MAX - 1));
  t.equal(first.size, CACHE_MAX - 1, 'the cache one short of full');
  // Six more in one load: the cache fills and is cleared in the middle of it.
  const next = ids.slice(CACHE_MAX - 1);
  const got = await store.load(keys, [...next, 'absent']);
  t.same([...got.keys()].sort(), [...next].sort(), 'every one found; the absent one not');
  t.match(got.get(next[0] as string), { stored: { method: 'GET' }, origin: `http://h${next[0]}.example` });
});
