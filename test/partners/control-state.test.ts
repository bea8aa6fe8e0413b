/**
 * The control plane's pure parts as tables: records read tolerantly, pause
 * and breaker state, origins as operators type them, the `partners`
 * command line, and the pace arithmetic (shares, leases, parking slots,
 * release budgets).
 */
import t from 'tap';
import { activePause, expiredPause, normalizeOrigin, parseBreaker, parseControl, partnerState } from '../../src/partners/control-state.js';
import { parsePartnersArgs } from '../../src/partners/args.js';
import { concurrencyShare, gcraParams, leaseSize, parkForRate, rateSlot, releaseBudget, RAMP_MAX, RAMP_START } from '../../src/partners/pace.js';

t.test('records are read tolerantly: what is malformed is left out', async (t) => {
  const table: [string, object][] = [
    ['not json', {}],
    ['null', {}],
    ['{"pause":{"until":null,"by":"operator","reason":"r","at":5}}', { pause: { until: null, by: 'operator', reason: 'r', at: 5 } }],
    ['{"pause":{"until":10,"by":"retry-after"}}', { pause: { until: 10, by: 'retry-after', reason: null, at: 0 } }],
    ['{"pause":{"until":"soon","by":"operator"}}', {}],
    ['{"pause":{"until":10,"by":"someone"}}', {}],
    ['{"limit":{"rate":200,"concurrency":5,"at":1}}', { limit: { rate: 200, concurrency: 5, at: 1 } }],
    ['{"limit":{"rate":-1,"concurrency":0}}', {}],
    ['{"limit":{"rate":null}}', { limit: { rate: null, at: 0 } }],
  ];
  for (const [json, want] of table) t.same(parseControl(json), want, json);
  t.same(parseBreaker('{"state":"open","since":1,"probeAt":2,"reason":"x"}'), { state: 'open', since: 1, probeAt: 2, reason: 'x' });
  t.equal(parseBreaker('{"state":"closed","since":1,"probeAt":2}'), null);
  t.equal(parseBreaker('nope'), null);
});

t.test('a pause is in force until its end; an operator sees paused over the breaker', async (t) => {
  const c = (until: number | null) => ({ pause: { until, by: 'operator' as const, reason: null, at: 0 } });
  t.equal(activePause(undefined, 5), null);
  t.ok(activePause(c(null), 5));
  t.ok(activePause(c(10), 5));
  t.equal(activePause(c(5), 5), null, 'ends at its time');
  t.equal(expiredPause(c(5), 5), true);
  t.equal(expiredPause(c(null), 5), false);
  t.equal(expiredPause(c(6), 5), false);
  const open = { state: 'open' as const, since: 0, probeAt: 0, reason: '' };
  t.equal(partnerState(null, null), 'closed');
  t.equal(partnerState(null, open), 'open');
  t.equal(partnerState(null, { ...open, state: 'half-open' }), 'half-open');
  t.equal(partnerState(c(null).pause, open), 'paused');
});

t.test('origins as operators type them', async (t) => {
  const table: [string, string | RegExp][] = [
    ['https://API.Partner.com', 'https://api.partner.com'],
    ['https://api.partner.com:443/', 'https://api.partner.com'],
    ['http://10.0.0.5:8080', 'http://10.0.0.5:8080'],
    ['http://[::1]:81', 'http://[::1]:81'],
    ['api.partner.com', /is not an origin/],
    ['ftp://x.example', /only http and https/],
    ['https://x.example/cb', /more than scheme, host and port/],
    ['https://x.example?a=1', /more than scheme/],
    ['https://user:pw@x.example', /more than scheme/],
    ['https://*.x.example', /not a pattern/],
  ];
  for (const [raw, want] of table) {
    const r = normalizeOrigin(raw);
    if (typeof want === 'string') t.same(r, { ok: true, origin: want }, raw);
    else t.match(r, { ok: false, message: want }, raw);
  }
});

t.test('the partners command line', async (t) => {
  const now = Date.parse('2026-11-28T10:00:00Z');
  const table: [string[], object | RegExp][] = [
    [['check', 'f.yaml'], { command: 'check', file: 'f.yaml' }],
    [['list'], { command: 'list', json: false }],
    [['list', '--json'], { command: 'list', json: true }],
    [['show', 'https://a.example'], { command: 'show', origin: 'https://a.example', json: false }],
    [['pause', 'https://a.example'], { command: 'pause', origin: 'https://a.example', until: null, reason: null }],
    [['pause', 'https://a.example', '--until', '2026-11-28T14:00:00Z', '--reason', 'maintenance'], { command: 'pause', until: Date.parse('2026-11-28T14:00:00Z'), reason: 'maintenance' }],
    [['resume', 'https://a.example'], { command: 'resume', origin: 'https://a.example' }],
    [['limit', 'https://a.example', '--rate', '200'], { command: 'limit', rate: 200, concurrency: undefined, clear: false }],
    [['limit', 'https://a.example', '--rate', '0.5', '--concurrency', '4'], { command: 'limit', rate: 0.5, concurrency: 4 }],
    [['limit', 'https://a.example', '--concurrency', '4'], { command: 'limit', rate: undefined, concurrency: 4 }],
    [['limit', 'https://a.example', '--clear'], { command: 'limit', clear: true }],
    [[], /a command is required/],
    [['nope'], /unknown command "nope"/],
    [['check'], /check takes one file/],
    [['list', 'https://a.example'], /list takes no origin/],
    [['pause'], /pause takes one origin/],
    [['pause', 'https://a.example', '--until', 'tomorrow'], /--until must be an ISO 8601 time/],
    [['pause', 'https://a.example', '--until', '2026-11-28T09:00:00Z'], /already past/],
    [['resume', 'https://a.example', '--json'], /resume takes no --json/],
    [['limit', 'https://a.example'], /needs --rate N, --concurrency N, or --clear/],
    [['limit', 'https://a.example', '--clear', '--rate', '5'], /--clear takes neither/],
    [['limit', 'https://a.example', '--rate', 'fast'], /--rate must be requests per second/],
    [['limit', 'https://a.example', '--rate', '0'], /--rate must be/],
    [['limit', 'https://a.example', '--concurrency', '1.5'], /--concurrency must be a whole number/],
    [['show', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [argv, want] of table) {
    const r = parsePartnersArgs(argv, now);
    if (want instanceof RegExp) t.match(r, { ok: false, error: want }, argv.join(' '));
    else t.match(r, { ok: true, plan: want }, argv.join(' '));
  }
});

t.test('pace: shares, leases, parking slots, release budgets', async (t) => {
  t.equal(concurrencyShare(50, 4), 12);
  t.equal(concurrencyShare(2, 4), 1, 'at least one each');
  t.equal(concurrencyShare(10, 0), 10, 'no live count yet: all of it');
  t.equal(leaseSize(200, 4, 100), 5, '100 ms of 50/s');
  t.equal(leaseSize(200, 4, 2), 2, 'no more than is wanted');
  t.equal(leaseSize(1, 4, 10), 1, 'at least one');
  t.equal(parkForRate(200, 4, 99), false, 'under 2 s of its 50/s share');
  t.equal(parkForRate(200, 4, 100), true);
  t.equal(parkForRate(0.1, 4, 1), true, 'a very slow partner keeps one in memory');
  // 50/s share: 100 waiting is 2 s; then each entry of 10 takes 200 ms of the rate.
  const a = rateSlot(0, 1_000, 100, 10, 200, 4);
  t.same(a, { due: 3_000, cursor: 3_200 });
  const b = rateSlot(a.cursor, 1_050, 100, 10, 200, 4);
  t.same(b, { due: 3_200, cursor: 3_400 }, 'the next entry after the previous one, not at the same time');
  t.same(rateSlot(3_400, 9_000, 0, 1, 200, 4), { due: 9_000, cursor: 9_020 }, 'a stale cursor does not hold it back');
  t.equal(releaseBudget(200, 4, 500, 0), 25, 'rate-limited: its share of the pass');
  t.equal(releaseBudget(0.5, 4, 500, 0), 1);
  t.equal(releaseBudget(null, 1, 500, 0), RAMP_START, 'no rate: the ramp starts small');
  t.equal(releaseBudget(null, 1, 500, 1_000), RAMP_START * 2, 'doubles every second');
  t.equal(releaseBudget(null, 1, 500, 3_000), RAMP_START * 8);
  t.equal(releaseBudget(null, 2, 500, 3_000), RAMP_START * 4, 'divided among the processes');
  t.equal(releaseBudget(null, 1, 500, 60_000), RAMP_MAX, 'up to a cap');
  t.same(gcraParams(200, 20), { intervalMs: 5, toleranceMs: 35 }, 'the jitter allowance comes out of the burst');
  t.same(gcraParams(200, 1), { intervalMs: 5 / 0.95, toleranceMs: 0 }, 'or, without one, at most 5% of the rate');
  t.same(gcraParams(200, 11), { intervalMs: 5 / 0.99, toleranceMs: 0 }, 'or part of each');
  t.same(gcraParams(1, 3), { intervalMs: 1000, toleranceMs: 1940 }, 'a slow partner loses nothing');
});
