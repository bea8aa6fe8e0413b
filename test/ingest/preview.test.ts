import t from 'tap';
import { buildPreview, PREVIEW_MAX_REQUESTS } from '../../src/ingest/preview.js';
import { validateIngest, type IngestLimits } from '../../src/ingest/parse-request.js';

const limits: IngestLimits = { maxItems: 10_000, maxUrlBytes: 8192, maxRenderedUrlBytes: 16_384, encodedDefault: '', maxDelayMs: 0, defaultDelayMs: 0 };

function request(items: number, pathBytes: number, method = 'GET') {
  const url = `http://h.com/${'a'.repeat(pathBytes)}?k={k}`;
  return validateIngest({ endpoint: { method, url }, data: Array.from({ length: items }, (_, i) => ({ k: String(i) })) }, limits);
}

t.test('what one /preview answer shows, and what it leaves out', async (t) => {
  // [name, items, path bytes, max bytes, requests shown, truncated]
  const cases: [string, number, number, number, number, boolean][] = [
    ['a few, all shown', 3, 10, 1_048_576, 3, false],
    ['exactly the most shown', PREVIEW_MAX_REQUESTS, 10, 1_048_576, PREVIEW_MAX_REQUESTS, false],
    ['one more than the most', PREVIEW_MAX_REQUESTS + 1, 10, 1_048_576, PREVIEW_MAX_REQUESTS, true],
    ['10,000 items', 10_000, 10, 1_048_576, PREVIEW_MAX_REQUESTS, true],
    ['long URLs stop at the byte bound', 50, 8000, 20_000, 2, true],
    ['the first is shown even past the byte bound', 5, 8000, 100, 1, true],
  ];
  for (const [name, items, path, maxBytes, shown, truncated] of cases) {
    const p = buildPreview(request(items, path), 'req', '', 'ua', 0, null, null, maxBytes);
    t.equal(p.requests.length, shown, `${name}: shown`);
    t.equal(p.total, items, `${name}: total`);
    t.equal(p.truncated, truncated, `${name}: truncated`);
    t.same(p.requests.map((r) => r.id), Array.from({ length: shown }, (_, i) => `req:${i}`), `${name}: the first ones, in order`);
  }
});

t.test('the answer stays near its byte bound however the request is shaped', async (t) => {
  for (const method of ['GET', 'POST']) {
    const p = buildPreview(request(10_000, 8100, method), 'req', '', 'ua', 0, null, null, 1_048_576);
    const size = JSON.stringify(p).length;
    t.ok(size < 1_048_576 + 20_000, `${method}: ${size} bytes for 10,000 items of an 8 KB URL`);
    t.equal(p.total, 10_000);
  }
});
