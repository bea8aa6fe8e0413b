import t from 'tap';
import { Packr } from 'msgpackr';
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

t.test('items that share their keys are written as values in key order; others as maps', async (t) => {
  const base = { requestId: 'r1', templateId: 'T'.repeat(16), requestTime: 1_795_000_000_000, dueTime: 1_795_000_000_000, firstIndex: 0, attempts: 0, last: null };
  const cases: [string, Entry['items']][] = [
    ['the v1 sample', [{ key: 'Azureus', value: 'Dendrobates' }, { key: 'Phyllobates', value: 'Terribilis' }]],
    ['one item', [{ a: 1, b: 'x' }]],
    ['no items', []],
    ['empty items', [{}, {}]],
    ['keys in another order', [{ a: 1, b: 2 }, { b: 3, a: 4 }]],
    ['another key set', [{ a: 1 }, { a: 2, c: 3 }]],
    ['every value type', [{ s: 's', n: -1.25, big: 2 ** 40, t: true, f: false, z: null }, { s: '', n: 0, big: 0, t: false, f: true, z: null }]],
    ['a key named __proto__', [JSON.parse('{"__proto__": "p", "x": 1}'), JSON.parse('{"__proto__": "q", "x": 2}')]],
  ];
  for (const [name, items] of cases) {
    const back = decodeEntry(encodeEntry({ ...base, items }));
    t.same(back.items, items, name);
    t.same(back.items.map((i) => Object.keys(i)), items.map((i) => Object.keys(i)), `${name}: key order kept`);
  }
  const proto = decodeEntry(encodeEntry({ ...base, items: [JSON.parse('{"__proto__": {"polluted": 1}}')] })).items[0] as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(proto), Object.prototype, 'a __proto__ key does not become the prototype');
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  const sample = encodeEntry({ ...base, items: cases[0]![1] });
  const asMaps = new Packr({ useRecords: false }).pack([1, base.requestId, base.templateId, base.requestTime, base.dueTime, 0, 0, cases[0]![1]]);
  t.ok(sample.length <= asMaps.length - 16, `v1 sample entry: ${sample.length} bytes, ${asMaps.length} as maps`);
});

t.test('entries written by the previous version (v1) are still read', async (t) => {
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const items = [{ key: 'Azureus', value: 'Dendrobates' }];
  t.same(decodeEntry(packr.pack([1, 'r1', 'T'.repeat(16), 1000, 1500, 3, 0, items])), {
    requestId: 'r1', templateId: 'T'.repeat(16), requestTime: 1000, dueTime: 1500, firstIndex: 3, attempts: 0, items, last: null,
  });
  t.same(decodeEntry(packr.pack([1, 'r1', 'T'.repeat(16), 1000, 1000, 0, 2, items, 503, null, 'x'])).last, { status: 503, errorCode: null, error: 'x' });
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
  t.throws(() => decodeEntry(new Packr({ useRecords: false }).pack([2, 'r', 't', 1, 0, 0, 0, ['a', 'b'], [['only one']]])), { code: 'PB_ERR_CODEC' });
  t.throws(() => decodeEntry(new Packr({ useRecords: false }).pack([3, 'r', 't', 1, 0, 0, 0, null, []])), { code: 'PB_ERR_CODEC' });
  t.throws(() => decodeEntry(encodeTemplate({ method: 'GET', url: 'x' })), { code: 'PB_ERR_CODEC' });
  t.throws(() => decodeTemplate(Buffer.from([0xc0])), { code: 'PB_ERR_CODEC' });
});
