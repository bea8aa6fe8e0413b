/**
 * The attempt log's serializer writes exactly what JSON.stringify would:
 * every field, in order, strings escaped where JSON needs it, numbers that
 * JSON cannot hold as null, and the optional fields only when set.
 */
import t from 'tap';
import { attemptLine, attemptLineJson, expiryLine, type AttemptLine } from '../../src/delivery/attempt-log.js';
import { noResponse, type AttemptResult } from '../../src/delivery/attempt.js';

function delivered(overrides: Partial<AttemptResult> = {}): AttemptResult {
  return {
    url: 'http://partner.example/p?key=Azureus&value=Dendrobates',
    deliveryTime: 1_795_881_016_190,
    responseTime: 1_795_881_016_191,
    latencyMs: 0.834,
    status: 200,
    body: 'ok',
    errorCode: null,
    error: null,
    retryAfter: null,
    ...overrides,
  };
}

t.test('the same text as JSON.stringify, for every shape of line', async (t) => {
  const probe = attemptLine('r:0', 'GET', 2, 1_795_881_016_000, noResponse('http://down.example/', 'PB_ERR_CONNECT', 'connect ECONNREFUSED 127.0.0.1:9', 1_795_881_016_500), 'retry');
  probe.probe = true;
  const cases: [string, AttemptLine][] = [
    ['delivered', attemptLine('TDsR73so0:12', 'GET', 1, 1_795_881_016_188, delivered(), 'delivered')],
    ['a retry with its next time', attemptLine('a:1', 'POST', 3, 1, delivered({ status: 503, body: 'busy' }), 'retry', 1_795_881_020_000)],
    ['no response: nulls and an error', attemptLine('a:2', 'GET', 1, 1, noResponse('http://x.example/', 'PB_ERR_TIMEOUT', 'no response in 10000 ms', 5), 'dead')],
    ['an expiry before any attempt', expiryLine('a:3', null, 0, 7)],
    ['a failed probe', probe],
    ['quotes and backslashes', attemptLine('a:4', 'GET', 1, 1, delivered({ body: 'say "hi" \\ bye', url: 'http://x.example/"q"' }), 'delivered')],
    ['control characters', attemptLine('a:5', 'GET', 1, 1, delivered({ body: 'line1\nline2\ttab\u0000nul\u001f\u007f' }), 'delivered')],
    ['non-ASCII and emoji', attemptLine('a:6', 'GET', 1, 1, delivered({ body: 'Dendrobates azureus, grenouille 🐸 café', url: 'http://x.example/é' }), 'delivered')],
    ['a lone surrogate (JSON.stringify escapes it)', attemptLine('a:7', 'GET', 1, 1, delivered({ body: 'broken \ud800 half' }), 'delivered')],
    ['an empty body and URL', attemptLine('a:8', 'GET', 1, 1, delivered({ body: '', url: '' }), 'delivered')],
    ['numbers JSON cannot hold', attemptLine('a:9', 'GET', 1, Number.NaN, delivered({ latencyMs: Number.POSITIVE_INFINITY, deliveryTime: -0 }), 'delivered')],
    ['big, small and fractional numbers', attemptLine('a:10', 'GET', 1e21, 1.5e-7, delivered({ latencyMs: 123.456789 }), 'delivered')],
    ['a hostile id', attemptLine('x","outcome":"delivered', 'GET', 1, 1, delivered(), 'dead')],
  ];
  for (const [name, line] of cases) {
    const json = attemptLineJson(line);
    t.equal(json, JSON.stringify(line).slice(1, -1), name);
    t.same(JSON.parse(`{${json}}`), JSON.parse(JSON.stringify(line)), `${name}: parses back`);
  }
});
