/** Partner policies as tables: parsing, matching, every bad field named, reloads that keep the old policies. */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parsePolicies, statusVerdict, withOverride, type PolicyDefaults } from '../../src/partners/policy.js';
import { loadPolicies, readPolicyFile } from '../../src/partners/policy-file.js';
import { testConfig } from '../helpers/config.js';

const defaults: PolicyDefaults = {
  timeoutMs: 10_000,
  maxTimeoutMs: 27_500,
  maxAttempts: 5,
  backoffBaseMs: 1_000,
  backoffMaxMs: 600_000,
  signing: true,
  breaker: { failureRatio: 0.5, windowMs: 30_000, minAttempts: 20, consecutiveFailures: 10, probeIntervalMs: 5_000 },
};

const EXAMPLE = {
  partners: {
    'https://api.capped.example': { rate: 200, burst: 20, concurrency: 50 },
    'https://*.pixel.example': { success: ['2xx', '3xx'] },
    'https://api.keyed.example': { headers: { 'X-Api-Key': 'k-123' }, timeoutMs: 3000, maxAttempts: 8, retryOn: ['5xx', '429', '408'], signing: false },
    'https://*.example': { backoff: [1000, 5000, 60000], breaker: { consecutiveFailures: 3 } },
  },
};

t.test('the example of the issue parses, and each origin gets the most specific policy', async (t) => {
  const r = parsePolicies(EXAMPLE, defaults);
  t.ok(r.ok, r.ok ? '' : r.problems.join('; '));
  if (!r.ok) return;
  const cases: [string, string | null, Record<string, unknown>][] = [
    ['https://api.capped.example', 'https://api.capped.example', { rate: 200, burst: 20, concurrency: 50, timeoutMs: 10_000, maxAttempts: 5 }],
    ['https://a.pixel.example', 'https://*.pixel.example', { rate: null, concurrency: null }],
    ['https://api.keyed.example', 'https://api.keyed.example', { timeoutMs: 3000, maxAttempts: 8, headers: { 'x-api-key': 'k-123' }, signing: false }],
    ['https://other.example', 'https://*.example', { backoff: { baseMs: 1000, maxMs: 600_000, delaysMs: [1000, 5000, 60000] } }],
    ['https://x.pixel.example', 'https://*.pixel.example', {}],
    ['https://unrelated.org', null, { rate: null, timeoutMs: 10_000, signing: true, headers: {} }],
    ['http://api.capped.example', null, {}],
  ];
  for (const [origin, pattern, fields] of cases) {
    const p = r.table.resolve(origin);
    t.equal(p.pattern, pattern, `${origin}: ${pattern ?? 'the defaults'}`);
    t.match(p, fields, `${origin}: fields`);
  }
  const pixel = r.table.resolve('https://a.pixel.example');
  t.same([statusVerdict(pixel, 302), statusVerdict(pixel, 204), statusVerdict(pixel, 404), statusVerdict(pixel, 503)], ['success', 'success', 'permanent', 'retryable']);
  const keyed = r.table.resolve('https://api.keyed.example');
  t.same([statusVerdict(keyed, 302), statusVerdict(keyed, 429), statusVerdict(keyed, 408)], ['permanent', 'retryable', 'retryable']);
  t.equal(r.table.resolve('https://other.example').breaker.consecutiveFailures, 3, 'a breaker setting over the defaults');
  t.equal(r.table.resolve('https://other.example').breaker.minAttempts, 20, 'the rest from the defaults');
  const noBurst = parsePolicies({ partners: { 'https://r.example': { rate: 50 } } }, defaults);
  t.equal(noBurst.ok && noBurst.table.resolve('https://r.example').burst, 5, 'burst defaults to a tenth of a second of the rate');
});

t.test('every bad field is named, with its origin', async (t) => {
  const cases: [unknown, RegExp][] = [
    [[], /must hold an object with "partners"/],
    [{ partners: [] }, /"partners" must be an object/],
    [{ partner: {} }, /"partner" is not a top-level key/],
    [{ partners: { 'api.example': {} } }, /^api\.example: "api\.example" must start with http/],
    [{ partners: { 'https://a.example': 5 } }, /^https:\/\/a\.example: must be an object of settings/],
    [{ partners: { 'https://a.example': { rates: 5 } } }, /^https:\/\/a\.example: rates is not a setting/],
    [{ partners: { 'https://a.example': { rate: -1 } } }, /rate must be a number from 0\.001/],
    [{ partners: { 'https://a.example': { rate: '200' } } }, /rate must be a number/],
    [{ partners: { 'https://a.example': { burst: 5 } } }, /burst needs a rate/],
    [{ partners: { 'https://a.example': { rate: 5, burst: 0.5 } } }, /burst must be an integer/],
    [{ partners: { 'https://a.example': { concurrency: 0 } } }, /concurrency must be an integer from 1/],
    [{ partners: { 'https://a.example': { timeoutMs: 60_000 } } }, /timeoutMs must be an integer from 10 to 27500/],
    [{ partners: { 'https://a.example': { maxAttempts: 101 } } }, /maxAttempts must be an integer from 1 to 100/],
    [{ partners: { 'https://a.example': { backoff: { baseMs: 5000, maxMs: 10 } } } }, /backoff baseMs \(5000\) must not exceed maxMs \(10\)/],
    [{ partners: { 'https://a.example': { backoff: { base: 5 } } } }, /backoff\.base is not a setting/],
    [{ partners: { 'https://a.example': { backoff: [] } } }, /backoff must list at least one delay/],
    [{ partners: { 'https://a.example': { backoff: [100, -1] } } }, /backoff\[1\] must be an integer/],
    [{ partners: { 'https://a.example': { backoff: 'fast' } } }, /backoff must be/],
    [{ partners: { 'https://a.example': { success: ['2xx', 'ok'] } } }, /success "ok" is not an HTTP status/],
    [{ partners: { 'https://a.example': { retryOn: '5xx' } } }, /retryOn must be a list/],
    [{ partners: { 'https://a.example': { retryOn: [] } } }, /retryOn an empty list/],
    [{ partners: { 'https://a.example': { headers: { Host: 'x' } } } }, /headers\.Host is set by the service itself/],
    [{ partners: { 'https://a.example': { headers: { 'X-Postback-Id': 'x' } } } }, /headers\.X-Postback-Id is set by the service/],
    [{ partners: { 'https://a.example': { headers: { 'bad name': 'x' } } } }, /headers\.bad name is not a valid header name/],
    [{ partners: { 'https://a.example': { headers: { 'X-Key': 'a\r\nInjected: 1' } } } }, /headers\.X-Key must be a string .*no line breaks/],
    [{ partners: { 'https://a.example': { headers: { 'X-Euro': '\u20ac' } } } }, /headers\.X-Euro must be a string .*nothing past U\+00FF/],
    [{ partners: { 'https://a.example': { headers: { 'X-Ctl': 'a\u0001b' } } } }, /headers\.X-Ctl must be a string/],
    [{ partners: { 'https://a.example': { headers: { 'X-Del': 'a\u007fb' } } } }, /headers\.X-Del must be a string/],
    [{ partners: { 'https://a.example': { headers: JSON.parse('{"__proto__": "x"}') as Record<string, string> } } }, /headers\.__proto__ is not a valid header name/],
    [{ partners: { 'https://a.example': { headers: { 'X-Key': 5 } } } }, /headers\.X-Key must be a string/],
    [{ partners: { 'https://a.example': { signing: 'yes' } } }, /signing must be true or false/],
    [{ partners: { 'https://a.example': { breaker: { failureRatio: 2 } } } }, /breaker\.failureRatio must be a number from 0\.01 to 1/],
    [{ partners: { 'https://a.example': { breaker: { ratio: 0.5 } } } }, /breaker\.ratio is not a setting/],
    [{ partners: { 'https://a.example': {}, 'https://a.example:443': {} } }, /the same origin as another entry/],
  ];
  for (const [doc, re] of cases) {
    const r = parsePolicies(doc, defaults);
    t.equal(r.ok, false, JSON.stringify(doc).slice(0, 80));
    if (!r.ok) t.match(r.problems.join('\n'), re, JSON.stringify(doc).slice(0, 80));
  }
  const many = parsePolicies({ partners: { 'https://a.example': { rate: -1, timeoutMs: 1 }, 'https://b.example': { success: 'x' } } }, defaults);
  t.equal(many.ok ? 0 : many.problems.length, 3, 'every problem at once');
});

t.test('runtime overrides over a policy', async (t) => {
  const r = parsePolicies(EXAMPLE, defaults);
  if (!r.ok) throw new Error('bad');
  const p = r.table.resolve('https://api.capped.example');
  t.match(withOverride(p, { rate: 50 }), { rate: 50, burst: 5, concurrency: 50 });
  t.match(withOverride(p, { concurrency: 5 }), { rate: 200, burst: 20, concurrency: 5 });
  t.match(withOverride(p, { rate: null }), { rate: null });
  t.equal(withOverride(p, undefined), p);
});

t.test('files: JSON or YAML, read at start, reloaded on change, a bad reload keeps the old', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-policies-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const yaml = join(dir, 'partners.yaml');
  writeFileSync(yaml, 'partners:\n  "https://api.capped.example":\n    rate: 200\n    burst: 20\n  "https://*.pixel.example":\n    success: ["2xx", "3xx"]\n');
  const fromYaml = readPolicyFile(yaml, defaults);
  t.ok(fromYaml.ok && fromYaml.table.resolve('https://api.capped.example').rate === 200, 'YAML');
  const json = join(dir, 'partners.json');
  writeFileSync(json, JSON.stringify(EXAMPLE));
  t.ok(readPolicyFile(json, defaults).ok, 'JSON');
  const twice = join(dir, 'twice.json');
  writeFileSync(twice, '{\n\t"partners": {\n\t\t"https://a.example": {"rate": 1},\n\t\t"https://a.example": {"headers": {"X-Key": "1", "X-Key": "2"}}\n\t}\n}\n');
  const dup = readPolicyFile(twice, defaults);
  t.same(dup.ok ? [] : dup.problems.map((p) => p.replace(dir, 'DIR')), [
    'DIR/twice.json: a key appears twice in one object at line 4, column 51; JSON would keep only the last',
    'DIR/twice.json: a key appears twice in one object at line 4, column 3; JSON would keep only the last',
  ], 'a key twice in a JSON object is refused, where JSON.parse would keep the last');
  writeFileSync(twice, '{"partners": {"https://a.example": {"rate": 1}, "https://b.example": {"rate": 1}}}');
  t.ok(readPolicyFile(twice, defaults).ok, 'equal values under different keys are fine');
  writeFileSync(join(dir, 'bad.yaml'), 'partners: [\n');
  const broken = readPolicyFile(join(dir, 'bad.yaml'), defaults);
  t.match(broken.ok ? '' : broken.problems[0], /is not valid YAML/);
  const missing = readPolicyFile(join(dir, 'nope.json'), defaults);
  t.match(missing.ok ? '' : missing.problems[0], /cannot read .*ENOENT/);

  const logged: { msg: string; problems?: string[] }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  const config = testConfig({ PARTNERS_FILE: yaml });
  const changes: number[] = [];
  const source = loadPolicies(config, logger, (table) => changes.push(table.entries.length));
  t.teardown(() => source.close());
  t.equal(source.table.entries.length, 2);
  writeFileSync(yaml, 'partners:\n  "https://api.capped.example":\n    rate: nope\n');
  source.reload('test');
  t.equal(source.table.resolve('https://api.capped.example').rate, 200, 'a bad reload keeps the old policies');
  t.match(logged.at(-1), { msg: 'partner policy file not reloaded: the old policies stay', problems: [/rate must be a number/] });
  writeFileSync(yaml, 'partners:\n  "https://api.capped.example":\n    rate: 50\n');
  source.reload('test');
  t.equal(source.table.resolve('https://api.capped.example').rate, 50, 'a good one replaces them');
  t.same(changes, [1]);
  t.throws(() => loadPolicies(testConfig({ PARTNERS_FILE: join(dir, 'bad.yaml') }), logger), /bad partner policy file .*bad\.yaml: .*not valid YAML/, 'a bad file at start stops the process');
});
