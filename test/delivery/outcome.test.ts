import t from 'tap';
import { classify, health, type Health } from '../../src/delivery/outcome.js';
import { parseStatusSet } from '../../src/partners/status-set.js';
import type { ErrorCode } from '../../src/errors.js';

t.test('outcome classification follows the contract', async (t) => {
  const cases: [number | null, ErrorCode | null, string][] = [
    [200, null, 'success'],
    [201, null, 'success'],
    [204, null, 'success'],
    [299, null, 'success'],
    [500, null, 'retryable'],
    [502, null, 'retryable'],
    [503, null, 'retryable'],
    [599, null, 'retryable'],
    [408, null, 'retryable'],
    [429, null, 'retryable'],
    [400, null, 'permanent'],
    [401, null, 'permanent'],
    [404, null, 'permanent'],
    [410, null, 'permanent'],
    [301, 'PB_ERR_REDIRECT', 'permanent'],
    [302, 'PB_ERR_REDIRECT', 'permanent'],
    [304, null, 'permanent'],
    [101, null, 'permanent'],
    [null, 'PB_ERR_CONNECT', 'retryable'],
    [null, 'PB_ERR_DELIVERY_TIMEOUT', 'retryable'],
    [null, 'PB_ERR_SOCKET', 'retryable'],
    [null, 'PB_ERR_PROTOCOL', 'retryable'],
    [null, 'PB_ERR_TLS', 'retryable'],
    [null, 'PB_ERR_INTERNAL', 'retryable'],
    [null, 'PB_ERR_BAD_URL', 'permanent'],
    [null, 'PB_ERR_BLOCKED_ADDRESS', 'permanent'],
    [null, 'PB_ERR_TEMPLATE_MISSING', 'permanent'],
    [null, 'PB_ERR_CODEC', 'permanent'],
  ];
  for (const [status, code, want] of cases) t.equal(classify(status, code), want, `${status} ${code}`);
});

t.test('a partner policy says which statuses are delivered and which retried', async (t) => {
  const rules = (success: string[], retryOn: string[]) => {
    const s = parseStatusSet(success);
    const r = parseStatusSet(retryOn);
    if (!s.ok || !r.ok) throw new Error('bad');
    return { success: s.set, retryOn: r.set };
  };
  const pixel = rules(['2xx', '3xx'], ['5xx', '429', '408']);
  const strict = rules(['200'], ['503']);
  const cases: [number | null, ErrorCode | null, typeof pixel, string][] = [
    [302, 'PB_ERR_REDIRECT', pixel, 'success'],
    [204, null, pixel, 'success'],
    [404, null, pixel, 'permanent'],
    [204, null, strict, 'permanent'],
    [500, null, strict, 'permanent'],
    [503, null, strict, 'retryable'],
    [null, 'PB_ERR_CONNECT', strict, 'retryable'],
    [null, 'PB_ERR_BLOCKED_ADDRESS', pixel, 'permanent'],
  ];
  for (const [status, code, r, want] of cases) t.equal(classify(status, code, r), want, `${status} ${code} ${r.success.source}`);
});

t.test('what an attempt says about the partner\'s health (its circuit breaker)', async (t) => {
  const pixel = { success: parseStatusSetOrThrow(['2xx', '3xx']), retryOn: parseStatusSetOrThrow(['5xx']) };
  const table: [number | null, ErrorCode | null, Health, typeof pixel | undefined][] = [
    [200, null, 'ok', undefined],
    [404, null, 'ok', undefined],
    [302, 'PB_ERR_REDIRECT', 'ok', undefined],
    [500, null, 'fail', undefined],
    [503, null, 'fail', undefined],
    [429, null, 'fail', undefined],
    [408, null, 'fail', undefined],
    [429, null, 'ok', pixel],
    [null, 'PB_ERR_CONNECT', 'down', undefined],
    [null, 'PB_ERR_DELIVERY_TIMEOUT', 'down', undefined],
    [null, 'PB_ERR_SOCKET', 'down', undefined],
    [null, 'PB_ERR_PROTOCOL', 'fail', undefined],
    [null, 'PB_ERR_TLS', 'down', undefined],
    [null, 'PB_ERR_BAD_URL', 'none', undefined],
    [null, 'PB_ERR_BLOCKED_ADDRESS', 'none', undefined],
    [null, 'PB_ERR_TEMPLATE_MISSING', 'none', undefined],
    [null, 'PB_ERR_INTERNAL', 'none', undefined],
  ];
  for (const [status, code, want, rules] of table) t.equal(health(status, code, rules), want, `${status ?? code}${rules ? ' (pixel policy)' : ''}`);
});

function parseStatusSetOrThrow(list: string[]) {
  const r = parseStatusSet(list);
  if (!r.ok) throw new Error(r.message);
  return r.set;
}
