/**
 * Pure: the `dlq` command line into a plan, and the selection of dead
 * letters it describes. Bad usage is an error message (the caller prints
 * it with the usage text and exits 2), never a parser's raw exception.
 *
 *   dlq list    [filters] [--json] [--limit N]
 *   dlq replay  <id...> | --all | filters   [--dry-run]
 *   dlq purge   <id...> | --all | filters   [--dry-run]
 *
 * Filters (all must hold): --origin URL-origin-pattern, --since/--until
 * (ISO time or ms epoch, the dead letter's time), --outcome dead|expired,
 * --status 5xx|404|... (comma list; "none" for no HTTP status), --error
 * PB_ERR_... (comma list).
 */
import { parseArgs } from 'node:util';
import { isErrorCode, type ErrorCode } from '../errors.js';
import type { DeadLetter } from '../queue/codec.js';
import { parseOriginPattern, type OriginPattern } from '../postback/origin-pattern.js';

export const USAGE = `usage: node dist/cli.js dlq <command> [options]
  dlq list   [filters] [--json] [--limit N]      dead letters, oldest first
  dlq replay <id...> | --all | <filters> [--dry-run]   back to the queue with a fresh attempt count
  dlq purge  <id...> | --all | <filters> [--dry-run]   delete for good
filters (all must match):
  --origin <pattern>     https://api.partner.com, https://*.partner.com (subdomains), http://h:8080
  --since <time>         dead at or after: ISO 8601 (2026-11-28T02:00:00Z) or ms since the epoch
  --until <time>         dead at or before
  --outcome dead|expired
  --status <list>        HTTP status or class, comma list: 404,5xx; "none" for no HTTP answer
  --error <list>         error codes, comma list: PB_ERR_CONNECT,PB_ERR_DELIVERY_TIMEOUT
--dry-run prints how many would be replayed or purged, and changes nothing.
`;

export interface Filter {
  origin: OriginPattern | null;
  /** ms epoch bounds on the dead letter's time, inclusive. */
  since: number | null;
  until: number | null;
  outcome: 'dead' | 'expired' | null;
  /** Exact statuses, status classes (4 for 4xx) and "none" (no HTTP status). */
  statuses: { exact: Set<number>; classes: Set<number>; none: boolean } | null;
  errors: Set<ErrorCode> | null;
}

export type DlqPlan =
  | { command: 'list'; filter: Filter; json: boolean; limit: number }
  | { command: 'replay' | 'purge'; ids: string[]; all: boolean; filter: Filter; dryRun: boolean };

export type ParsedArgs = { ok: true; plan: DlqPlan } | { ok: false; error: string };

const fail = (error: string): ParsedArgs => ({ ok: false, error });

/** The last instant a Date can hold (8.64e15 ms after the epoch). */
export const TIME_MAX = 8.64e15;

/**
 * ISO 8601 date-time (with a zone, or UTC assumed for a bare date) or ms
 * since the epoch; null for anything else, a day the month does not have
 * (Date.parse reads 2026-02-30 as 2 March), or a time past what a Date
 * can hold (which would break every later toISOString).
 */
export function parseTime(v: string): number | null {
  if (/^\d{10,16}$/.test(v)) {
    const ms = Number(v);
    return ms <= TIME_MAX ? ms : null;
  }
  const d = /^(\d{4})-(\d{2})-(\d{2})/.exec(v);
  if (d === null) return null;
  const [y, m, day] = [Number(d[1]), Number(d[2]), Number(d[3])];
  if (m < 1 || m > 12 || day < 1 || day > new Date(Date.UTC(y, m, 0)).getUTCDate()) return null;
  const at = Date.parse(v);
  return Number.isNaN(at) || at > TIME_MAX ? null : at;
}

function parseStatuses(v: string): Filter['statuses'] | string {
  const out = { exact: new Set<number>(), classes: new Set<number>(), none: false };
  for (const part of v.split(',').map((s) => s.trim().toLowerCase())) {
    if (part === 'none') out.none = true;
    else if (/^[1-5]xx$/.test(part)) out.classes.add(Number(part[0]));
    else if (/^[1-5]\d\d$/.test(part)) out.exact.add(Number(part));
    else return `--status: "${part}" is not an HTTP status (404), a class (5xx) or "none"`;
  }
  return out;
}

/** A postback id (`<request id>:<index>`): request ids may begin with "-", which must not read as an option. */
const DASHED_ID = /^-[A-Za-z0-9_-]*:\d+$/;

export function parseDlqArgs(argv: readonly string[]): ParsedArgs {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  // Ids that begin with "-" go after "--", where the parser takes everything as an id.
  const args = argv.includes('--') ? [...argv] : [...argv.filter((a) => !DASHED_ID.test(a)), '--', ...argv.filter((a) => DASHED_ID.test(a))];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        all: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        limit: { type: 'string' },
        origin: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        outcome: { type: 'string' },
        status: { type: 'string' },
        error: { type: 'string' },
      },
    }));
  } catch (err) {
    // ERR_PARSE_ARGS_UNKNOWN_OPTION and friends: say it plainly.
    return fail((err as Error).message.split('.')[0] ?? 'bad arguments');
  }
  const [command, ...ids] = positionals;
  if (command !== 'list' && command !== 'replay' && command !== 'purge') {
    return fail(command === undefined ? 'a command is required' : `unknown command "${command}"`);
  }

  const filter: Filter = { origin: null, since: null, until: null, outcome: null, statuses: null, errors: null };
  if (values.origin !== undefined) {
    const p = parseOriginPattern(String(values.origin));
    if (!p.ok) return fail(`--origin: ${p.message}`);
    filter.origin = p.pattern;
  }
  for (const name of ['since', 'until'] as const) {
    if (values[name] === undefined) continue;
    const at = parseTime(String(values[name]));
    if (at === null) return fail(`--${name} must be an ISO 8601 time (2026-11-28T02:00:00Z) or ms since the epoch, not "${String(values[name])}"`);
    filter[name] = at;
  }
  if (filter.since !== null && filter.until !== null && filter.since > filter.until) return fail('--since is after --until');
  if (values.outcome !== undefined) {
    if (values.outcome !== 'dead' && values.outcome !== 'expired') return fail('--outcome must be dead or expired');
    filter.outcome = values.outcome;
  }
  if (values.status !== undefined) {
    const s = parseStatuses(String(values.status));
    if (typeof s === 'string') return fail(s);
    filter.statuses = s;
  }
  if (values.error !== undefined) {
    const codes = String(values.error).split(',').map((s) => s.trim());
    const bad = codes.find((c) => !isErrorCode(c));
    if (bad !== undefined) return fail(`--error: "${bad}" is not an error code (README, Error codes)`);
    filter.errors = new Set(codes as ErrorCode[]);
  }
  const filtered = Object.values(filter).some((v) => v !== null);

  if (command === 'list') {
    if (ids.length > 0) return fail('list takes no ids (use filters)');
    if (values.all || values['dry-run']) return fail('list takes neither --all nor --dry-run');
    let limit = Number.MAX_SAFE_INTEGER;
    if (values.limit !== undefined) {
      if (!/^\d{1,15}$/.test(String(values.limit))) return fail(`--limit must be a whole number, not "${String(values.limit)}"`);
      limit = Number(values.limit);
    }
    return { ok: true, plan: { command, filter, json: values.json === true, limit } };
  }
  if (values.json || values.limit !== undefined) return fail(`${command} takes neither --json nor --limit`);
  const all = values.all === true;
  const ways = [ids.length > 0, all, filtered].filter(Boolean).length;
  if (ways === 0) return fail(`${command} needs ids, --all, or filters`);
  if (ids.length > 0 && (all || filtered)) return fail(`${command} takes ids, or --all / filters, not both`);
  // --all with a filter would act on every letter, the filter ignored: refused, whichever was meant.
  if (all && filtered) return fail(`${command} takes --all or filters, not both: filters alone take the letters they match, --all every one`);
  return { ok: true, plan: { command, ids, all, filter, dryRun: values['dry-run'] === true } };
}

/** The origin a dead letter was (or would have been) sent to, from its URL or else its template. */
export function letterOrigin(d: DeadLetter): string | null {
  for (const u of [d.url, d.template]) {
    if (!u) continue;
    try {
      const origin = new URL(u).origin;
      // A template with a placeholder in the host names no origin.
      if (!origin.includes('{')) return origin;
    } catch {
      // not a URL: try the next
    }
  }
  return null;
}

/** Whether a dead letter matches every filter set. */
export function matches(f: Filter, d: DeadLetter): boolean {
  if (f.since !== null && d.deadTime < f.since) return false;
  if (f.until !== null && d.deadTime > f.until) return false;
  if (f.outcome !== null && d.outcome !== f.outcome) return false;
  if (f.statuses !== null) {
    const s = d.status;
    const ok = s === null ? f.statuses.none : f.statuses.exact.has(s) || f.statuses.classes.has(Math.floor(s / 100));
    if (!ok) return false;
  }
  if (f.errors !== null && (d.errorCode === null || !f.errors.has(d.errorCode))) return false;
  if (f.origin !== null) {
    const origin = letterOrigin(d);
    if (origin === null || !f.origin.matches(origin)) return false;
  }
  return true;
}
