/**
 * Idempotency keys' pure parts as tables: which keys are accepted, scopes
 * per token, the stored name and fingerprint, the shard a key goes to,
 * and the record enqueue-n.lua keeps.
 */
import t from 'tap';
import { idempotencyOf, parseIdempotencyKey, parseRecord, recordOf, scopeOf, shardFor } from '../../src/ingest/idempotency.js';

t.test('which keys are accepted', async (t) => {
  const table: [string | string[] | undefined, string | null | RegExp][] = [
    [undefined, null],
    ['a', 'a'],
    ['order-123/click:9', 'order-123/click:9'],
    ['with inner space', 'with inner space'],
    ['x'.repeat(200), 'x'.repeat(200)],
    ['x'.repeat(201), /1 to 200 printable ASCII/],
    ['', /1 to 200/],
    [' lead', /spaces at either end/],
    ['trail ', /spaces at either end/],
    ['tab\there', /printable ASCII/],
    ['é', /printable ASCII/],
    [['a', 'b'], /sent once/],
  ];
  for (const [raw, want] of table) {
    const r = parseIdempotencyKey(raw);
    if (want instanceof RegExp) t.match(r, { ok: false, message: want }, String(raw));
    else t.same(r, { ok: true, key: want }, String(raw));
  }
});

t.test('scope, name, fingerprint, shard, record', async (t) => {
  t.equal(scopeOf('Bearer token-aaaaaaaaaaaaaaaa', false), '-', 'no tokens: one scope');
  t.equal(scopeOf(undefined, true), '-');
  const a = scopeOf('Bearer token-aaaaaaaaaaaaaaaa', true);
  const b = scopeOf('Bearer token-bbbbbbbbbbbbbbbb', true);
  t.not(a, b, 'one scope per token');
  t.notMatch(a, /token/, 'the token itself is never stored');
  const body = Buffer.from('{"endpoint":{}}');
  const x = idempotencyOf('k1', a, 'application/json', body);
  t.match(x, { id: /^[0-9a-f]{64}$/, fingerprint: /^[0-9a-f]{32}$/ });
  t.same(idempotencyOf('k1', a, 'application/json', body), x, 'deterministic');
  t.not(idempotencyOf('k1', b, 'application/json', body).id, x.id, 'the same key under another token is another key');
  t.not(idempotencyOf('k2', a, 'application/json', body).id, x.id);
  t.equal(idempotencyOf('k1', a, 'application/json', Buffer.from('{"endpoint":{} }')).id, x.id, 'another body: the same key...');
  t.not(idempotencyOf('k1', a, 'application/json', Buffer.from('{"endpoint":{} }')).fingerprint, x.fingerprint, '...another fingerprint');
  t.not(idempotencyOf('k1', a, 'application/x-www-form-urlencoded', body).fingerprint, x.fingerprint, 'the content type counts');
  for (const shards of [1, 2, 7]) {
    const s = shardFor(x.id, shards);
    t.ok(s >= 0 && s < shards && s === shardFor(x.id, shards), `a fixed shard among ${shards}`);
  }
  const rec = recordOf(x.fingerprint, 'req-1', 64);
  t.same(parseRecord(rec), { fingerprint: x.fingerprint, requestId: 'req-1', accepted: 64 });
  t.equal(parseRecord('garbage'), null);
  t.equal(parseRecord('a|b|c'), null);
});
