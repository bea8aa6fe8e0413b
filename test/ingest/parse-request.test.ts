import t from 'tap';
import { validateIngest, type IngestLimits } from '../../src/ingest/parse-request.js';
import { decodeJson, bodyKind } from '../../src/ingest/body.js';

const limits: IngestLimits = { maxItems: 5, maxUrlBytes: 200, maxRenderedUrlBytes: 300, encodedDefault: '', maxDelayMs: 10_000, defaultDelayMs: 0 };
const URL_ = 'http://sample_domain_endpoint.com/data?key={key}&value={value}&foo={bar}';
const ok = { endpoint: { method: 'GET', url: URL_ }, data: [{ key: 'a' }] };

t.test('the sample is valid, underscore host included', async (t) => {
  const r = validateIngest(ok, limits);
  t.equal(r.template.method, 'GET');
  t.equal(r.template.source, URL_);
  t.equal(r.items.length, 1);
  t.equal(r.delayMs, 0);
});

t.test('method is case-insensitive', async (t) => {
  t.equal(validateIngest({ ...ok, endpoint: { method: 'post', url: URL_ } }, limits).template.method, 'POST');
  t.equal(validateIngest({ ...ok, endpoint: { method: 'Get', url: URL_ } }, limits).template.method, 'GET');
  // "ſ" (long s) upper-cases to "S": only ASCII letters count.
  for (const method of ['poſt', 'PO\u017fT', 'gEt\u0000']) {
    t.throws(() => validateIngest({ ...ok, endpoint: { method, url: URL_ } }, limits), { code: 'PB_ERR_VALIDATION', message: /endpoint\.method/ }, JSON.stringify(method));
  }
});

t.test('lone UTF-16 surrogates become U+FFFD in values, keys and the URL', async (t) => {
  const cases: [string, unknown, unknown][] = [
    ['a high surrogate alone', { key: 'A\ud800B' }, { key: 'A\uFFFDB' }],
    ['a low surrogate alone', { key: '\udc00' }, { key: '\uFFFD' }],
    ['a pair is text, kept', { key: 'A\ud83d\ude00B' }, { key: 'A\ud83d\ude00B' }],
    ['in a key', { ['k\ud800']: 'v' }, { 'k\uFFFD': 'v' }],
    ['other values untouched', { n: 1, b: true, z: null, s: 'ok' }, { n: 1, b: true, z: null, s: 'ok' }],
  ];
  for (const [name, item, want] of cases) {
    t.same(validateIngest({ ...ok, data: [item] }, limits).items[0], want, name);
  }
  t.throws(() => validateIngest({ ...ok, data: [{ 'k\uFFFD': 1, ['k\ud800']: 2 }] }, limits), { code: 'PB_ERR_VALIDATION', message: /given twice/ }, 'a key that becomes another key');
  const r = validateIngest({ ...ok, endpoint: { method: 'GET', url: 'http://h.com/p\ud800?k={key}' } }, limits);
  t.equal(r.template.source, 'http://h.com/p\uFFFD?k={key}', 'the URL template too');
});

t.test('every schema error is a 400 naming the field', async (t) => {
  const big = 2 ** 53 + 2;
  const cases: [unknown, RegExp][] = [
    [null, /body must be a JSON object/],
    [[], /body must be a JSON object/],
    ['str', /body must be a JSON object/],
    [{ data: [{}] }, /^endpoint is required/],
    [{ endpoint: 'x', data: [{}] }, /^endpoint must be an object/],
    [{ endpoint: { url: URL_ }, data: [{}] }, /^endpoint\.method/],
    [{ endpoint: { method: 'PUT', url: URL_ }, data: [{}] }, /^endpoint\.method must be "GET" or "POST"/],
    [{ endpoint: { method: 5, url: URL_ }, data: [{}] }, /^endpoint\.method/],
    [{ endpoint: { method: 'GET' }, data: [{}] }, /^endpoint\.url is required/],
    [{ endpoint: { method: 'GET', url: 7 }, data: [{}] }, /^endpoint\.url must be a string/],
    [{ endpoint: { method: 'GET', url: 'ftp://x/' }, data: [{}] }, /^endpoint\.url must use http/],
    [{ endpoint: { method: 'GET', url: `http://h.com/${'a'.repeat(300)}` }, data: [{}] }, /^endpoint\.url is longer than 200 bytes/],
    [{ endpoint: { method: 'GET', url: URL_, delay_ms: -1 }, data: [{}] }, /^endpoint\.delay_ms/],
    [{ endpoint: { method: 'GET', url: URL_, delay_ms: 10_001 }, data: [{}] }, /^endpoint\.delay_ms/],
    [{ endpoint: { method: 'GET', url: URL_, delay_ms: '5' }, data: [{}] }, /^endpoint\.delay_ms/],
    [{ endpoint: { method: 'GET', url: URL_ } }, /^data is required/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: {} }, /^data must be an array/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [] }, /^data must hold at least one/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [{}, {}, {}, {}, {}, {}] }, /^data holds 6 items; the limit is 5/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [{}, 5] }, /^data\[1\] must be an object, not a number/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [[]] }, /^data\[0\] must be an object, not an array/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [null] }, /^data\[0\] must be an object, not null/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [{ a: { b: 1 } }] }, /^data\[0\]\.a must be a string, number, boolean or null, not an object/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [{ a: [1] }] }, /^data\[0\]\.a must be .* not an array/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [{ 'odd key': {} }] }, /^data\[0\]\["odd key"\] must be/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [{ n: big }] }, /^data\[0\]\.n is an integer beyond 2\^53/],
    [{ endpoint: { method: 'GET', url: URL_ }, data: [{ n: Infinity }] }, /^data\[0\]\.n must be a finite number/],
    [JSON.parse('{"endpoint":{"method":"GET","url":"http://h.com/"},"data":[{"__proto__":"x"}]}'), /__proto__/],
  ];
  for (const [body, re] of cases) {
    t.throws(() => validateIngest(body, limits), { code: 'PB_ERR_VALIDATION', status: 400, message: re }, JSON.stringify(body)?.slice(0, 80));
  }
});

t.test('values may be strings, numbers, booleans and null; unknown fields are ignored', async (t) => {
  const r = validateIngest(
    { endpoint: { method: 'GET', url: URL_, extra: 1 }, data: [{ s: 'x', n: -1.25, i: 2 ** 53 - 1, b: false, z: null }], extra: true },
    limits,
  );
  t.same(r.items[0], { s: 'x', n: -1.25, i: 2 ** 53 - 1, b: false, z: null });
});

t.test('body decoding', async (t) => {
  t.equal(bodyKind(undefined), 'json');
  t.equal(bodyKind('application/json'), 'json');
  t.equal(bodyKind('Application/JSON; charset=ISO-8859-1'), 'json');
  t.equal(bodyKind('application/vnd.api+json'), 'json');
  t.equal(bodyKind('text/plain'), null);
  t.same(decodeJson(Buffer.from('\ufeff{"a":1}')), { a: 1 }, 'a UTF-8 BOM is skipped');
  t.throws(() => decodeJson(Buffer.from('{"a":')), { code: 'PB_ERR_BAD_JSON', status: 400, message: /not valid JSON/ });
  t.throws(() => decodeJson(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d])), { code: 'PB_ERR_BAD_ENCODING', status: 400 });
  t.throws(() => decodeJson(Buffer.from('')), { code: 'PB_ERR_BAD_JSON' });
});

t.test('a data object whose URL would pass INGEST_MAX_RENDERED_URL_BYTES is refused, naming it', async (t) => {
  const ep = { method: 'GET', url: 'http://h.com/?a={a}&b={b}' };
  t.equal(validateIngest({ endpoint: ep, data: [{ a: 'x'.repeat(250) }] }, limits).items.length, 1, 'under the limit');
  t.equal(validateIngest({ endpoint: ep, data: [{ a: 'é'.repeat(30) }] }, limits).items.length, 1, 'the bound is not the verdict');
  t.throws(() => validateIngest({ endpoint: ep, data: [{ a: 'x' }, { a: 'x'.repeat(290) }] }, limits), {
    code: 'PB_ERR_VALIDATION',
    message: /^data\[1\] makes a URL of 3\d\d bytes; the limit is 300$/,
  });
  t.throws(() => validateIngest({ endpoint: ep, data: [{ a: '/'.repeat(100) }] }, limits), { message: /data\[0\] makes a URL/ }, 'encoding counts');
  t.throws(() => validateIngest({ endpoint: ep, data: [{}] }, { ...limits, encodedDefault: 'd'.repeat(200) }), { message: /data\[0\] makes a URL/ }, 'the default counts');
});
