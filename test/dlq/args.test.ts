import t from 'tap';
import { letterOrigin, matches, parseDlqArgs, parseTime, type DlqPlan } from '../../src/dlq/args.js';
import type { DeadLetter } from '../../src/queue/codec.js';

t.test('bad usage is an error message, never an exception', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /a command is required/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['list', '--foo'], /Unknown option '--foo'/],
    [['list', '--limit', '-1'], /--limit must be a whole number|argument/],
    [['list', '--limit', ''], /--limit must be a whole number, not ""/],
    [['list', '--limit', 'abc'], /--limit must be a whole number/],
    [['list', '--limit', '1.5'], /--limit must be a whole number/],
    [['list', 'some:1'], /list takes no ids/],
    [['list', '--dry-run'], /neither --all nor --dry-run/],
    [['replay'], /needs ids, --all, or filters/],
    [['purge'], /needs ids, --all, or filters/],
    [['replay', 'a:1', '--all'], /not both/],
    [['replay', 'a:1', '--status', '404'], /not both/],
    [['purge', '--all', '--origin', 'http://a.example'], /--all or filters, not both/],
    [['replay', '--all', '--status', '404'], /--all or filters, not both/],
    [['purge', '--all', '--since', '2026-11-28T10:00:00Z', '--dry-run'], /--all or filters, not both/],
    [['replay', '--all', '--json'], /neither --json nor --limit/],
    [['replay', '--outcome', 'gone'], /--outcome must be dead or expired/],
    [['replay', '--status', '99'], /"99" is not an HTTP status/],
    [['replay', '--status', '6xx'], /is not an HTTP status/],
    [['replay', '--error', 'PB_ERR_NOPE'], /"PB_ERR_NOPE" is not an error code/],
    [['replay', '--origin', 'partner.com'], /--origin: .*must start with http/],
    [['replay', '--since', 'yesterday'], /--since must be an ISO 8601 time/],
    [['replay', '--since', '2026-11-28T10:00:00Z', '--until', '2026-11-28T09:00:00Z'], /--since is after --until/],
  ];
  for (const [argv, re] of cases) {
    const r = parseDlqArgs(argv);
    t.equal(r.ok, false, argv.join(' ') || '(nothing)');
    if (!r.ok) t.match(r.error, re, argv.join(' '));
  }
});

t.test('good usage becomes a plan', async (t) => {
  const plan = (argv: string[]): DlqPlan => {
    const r = parseDlqArgs(argv);
    if (!r.ok) throw new Error(r.error);
    return r.plan;
  };
  t.match(plan(['list']), { command: 'list', json: false, limit: Number.MAX_SAFE_INTEGER });
  t.match(plan(['list', '--json', '--limit', '0']), { command: 'list', json: true, limit: 0 });
  t.match(plan(['replay', 'a:1', 'b:2']), { command: 'replay', ids: ['a:1', 'b:2'], all: false, dryRun: false });
  t.match(plan(['purge', '--all', '--dry-run']), { command: 'purge', ids: [], all: true, dryRun: true });
  // Request ids are base64url and an old one may begin with "-" (it once read as an unknown option).
  t.match(plan(['replay', '-pXy7Qk1a:0', 'b:2', '--dry-run']), { command: 'replay', ids: ['b:2', '-pXy7Qk1a:0'], dryRun: true });
  t.match(plan(['purge', '--', '-_a:3']), { command: 'purge', ids: ['-_a:3'] });
  const p = plan(['replay', '--origin', 'https://*.partner.com', '--status', '5xx,404,none', '--error', 'PB_ERR_CONNECT', '--outcome', 'dead', '--since', '2026-11-28T02:00:00Z', '--until', '1795850000000']);
  t.equal(p.command, 'replay');
  if (p.command === 'replay') {
    t.equal(p.filter.origin?.source, 'https://*.partner.com');
    t.same([...(p.filter.statuses?.exact ?? [])], [404]);
    t.same([...(p.filter.statuses?.classes ?? [])], [5]);
    t.equal(p.filter.statuses?.none, true);
    t.same([...(p.filter.errors ?? [])], ['PB_ERR_CONNECT']);
    t.equal(p.filter.since, Date.UTC(2026, 10, 28, 2));
    t.equal(p.filter.until, 1795850000000);
  }
});

t.test('times: ISO 8601 or ms since the epoch', async (t) => {
  const cases: [string, number | null][] = [
    ['2026-11-28T02:00:00Z', Date.UTC(2026, 10, 28, 2)],
    ['2026-11-28T02:00:00+01:00', Date.UTC(2026, 10, 28, 1)],
    ['2026-11-28', Date.UTC(2026, 10, 28)],
    ['1795850000000', 1795850000000],
    ['yesterday', null],
    ['28/11/2026', null],
    ['12', null],
    ['2026-02-30', null],
    ['2026-02-29T00:00:00Z', null],
    ['2028-02-29T00:00:00Z', Date.UTC(2028, 1, 29)],
    ['2026-13-01', null],
    ['2026-00-10', null],
    ['8640000000000000', 8.64e15],
    ['9999999999999999', null],
    ['+275760-09-14', null],
  ];
  for (const [v, want] of cases) t.equal(parseTime(v), want, v);
});

t.test('filters select dead letters', async (t) => {
  const letter = (over: Partial<DeadLetter>): DeadLetter => ({
    id: 'r:0', method: 'GET', template: 'https://api.partner.com/cb?x={x}', url: 'https://api.partner.com/cb?x=1', data: { x: 1 },
    requestTime: 1000, attempts: 1, outcome: 'dead', status: 404, errorCode: null, error: null, body: null, deadTime: 5000, ...over,
  });
  const filter = (argv: string[]) => {
    const r = parseDlqArgs(['replay', ...argv]);
    if (!r.ok || r.plan.command === 'list') throw new Error('bad');
    return r.plan.filter;
  };
  const cases: [string[], Partial<DeadLetter>, boolean][] = [
    [['--origin', 'https://api.partner.com'], {}, true],
    [['--origin', 'https://*.partner.com'], {}, true],
    [['--origin', 'https://other.com'], {}, false],
    [['--origin', 'https://api.partner.com'], { url: '' }, true],
    [['--status', '4xx'], {}, true],
    [['--status', '5xx'], {}, false],
    [['--status', '404'], {}, true],
    [['--status', 'none'], { status: null, errorCode: 'PB_ERR_CONNECT' }, true],
    [['--status', 'none'], {}, false],
    [['--error', 'PB_ERR_CONNECT'], { status: null, errorCode: 'PB_ERR_CONNECT' }, true],
    [['--error', 'PB_ERR_CONNECT'], {}, false],
    [['--outcome', 'expired'], { outcome: 'expired' }, true],
    [['--outcome', 'expired'], {}, false],
    [['--since', '1795840000000', '--until', '1795850000000'], {}, false],
    [['--since', '1795840000000', '--until', '1795850000000'], { deadTime: 1795845000000 }, true],
    [['--since', '1795850000000'], { deadTime: 1795850000001 }, true],
    [['--since', '1795850000000'], { deadTime: 1795849999999 }, false],
    [['--until', '1795850000000'], { deadTime: 1795850000000 }, true],
    [['--origin', 'https://api.partner.com', '--status', '5xx'], {}, false],
  ];
  for (const [argv, over, want] of cases) t.equal(matches(filter(argv), letter(over)), want, `${argv.join(' ')} ${JSON.stringify(over)}`);
  t.equal(letterOrigin(letter({ url: '', template: 'https://{host}/x' })), null, 'a placeholder in the host: no origin');
});
