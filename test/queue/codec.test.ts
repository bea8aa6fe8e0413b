import t from 'tap';
import { decodeDeadLetter, decodeEntry, decodeTemplate, encodeDeadLetter, encodeEntry, encodeTemplate, type Entry } from '../../src/queue/codec.js';

t.test('entries round-trip', async (t) => {
  const e: Entry = {
    requestId: 'abcDEF12a',
    templateId: 'T'.repeat(16),
    requestTime: 1_795_000_000_123,
    dueTime: 1_795_000_000_200,
    firstIndex: 64,
    attempts: 0,
    items: [{ key: 'Azureus', value: 'Dendrobates', n: 1.5, b: true, z: null }, {}],
    last: null,
  };
  t.same(decodeEntry(encodeEntry(e)), e);
  const retry: Entry = { ...e, attempts: 3, items: [{ a: 'x' }], last: { status: 503, errorCode: null, error: null } };
  t.same(decodeEntry(encodeEntry(retry)), retry);
});

t.test('an entry is far smaller than its JSON', async (t) => {
  const e: Entry = {
    requestId: 'abcDEF12a',
    templateId: 'T'.repeat(16),
    requestTime: Date.now(),
    dueTime: Date.now(),
    firstIndex: 0,
    attempts: 0,
    items: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: 'Dendrobates' })),
    last: null,
  };
  const naive = e.items.map((d) => JSON.stringify({ method: 'GET', url: 'http://sample_domain_endpoint.com/data?key={key}&value={value}&foo={bar}', data: d })).join('');
  t.ok(encodeEntry(e).length < naive.length / 3, `${encodeEntry(e).length} vs ${naive.length}`);
});

t.test('templates and dead letters round-trip', async (t) => {
  t.same(decodeTemplate(encodeTemplate({ method: 'POST', url: 'http://h/{x}' })), { method: 'POST', url: 'http://h/{x}' });
  const d = {
    id: 'r:1',
    method: 'GET' as const,
    template: 'http://h/{x}',
    url: 'http://h/1',
    data: { x: 1 },
    requestTime: 1,
    attempts: 5,
    outcome: 'dead' as const,
    status: 500,
    errorCode: null,
    error: null,
    body: 'oops',
    deadTime: 2,
  };
  t.same(decodeDeadLetter(encodeDeadLetter(d)), d);
});

t.test('foreign blobs are refused with a code', async (t) => {
  t.throws(() => decodeEntry(Buffer.from([0x93, 1, 2, 3])), { code: 'PB_ERR_CODEC' });
  t.throws(() => decodeEntry(encodeTemplate({ method: 'GET', url: 'x' })), { code: 'PB_ERR_CODEC' });
  t.throws(() => decodeTemplate(Buffer.from([0xc0])), { code: 'PB_ERR_CODEC' });
});
