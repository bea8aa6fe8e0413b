/**
 * Pure: the `partners` command line into a plan. Bad usage is an error
 * message (the caller prints it with the usage text and exits 2).
 *
 *   partners check FILE
 *   partners list [--json]
 *   partners show <origin> [--json]
 *   partners pause <origin> [--until <ISO time>] [--reason TEXT]
 *   partners resume <origin>
 *   partners limit <origin> (--rate N [--concurrency N] | --concurrency N | --clear)
 */
import { parseArgs } from 'node:util';
import { parseTime } from '../dlq/args.js';
import { normalizeOrigin } from './control-state.js';

export const USAGE = `usage: node dist/cli.js partners <command>
  partners check FILE              validate a partner policy file (JSON or YAML) without running anything
  partners list [--json]           partners that are paused, limited, open, or have postbacks waiting
  partners show <origin> [--json]  one partner: its policy, overrides, breaker, postbacks waiting
  partners pause <origin> [--until <ISO time>] [--reason TEXT]
                                   every delivery process stops calling it (within 2 s); its postbacks wait in Redis
  partners resume <origin>         end a pause (an operator's or an automatic one)
  partners limit <origin> --rate N [--concurrency N] | --concurrency N | --clear
                                   override the policy's cluster-wide rate (requests/s) and concurrency
<origin> is scheme://host[:port], e.g. https://api.partner.com
`;

export type PartnersPlan =
  | { command: 'check'; file: string }
  | { command: 'list'; json: boolean }
  | { command: 'show'; origin: string; json: boolean }
  | { command: 'pause'; origin: string; until: number | null; reason: string | null }
  | { command: 'resume'; origin: string }
  | { command: 'limit'; origin: string; rate: number | null | undefined; concurrency: number | null | undefined; clear: boolean };

export type ParsedPartnersArgs = { ok: true; plan: PartnersPlan } | { ok: false; error: string };

const fail = (error: string): ParsedPartnersArgs => ({ ok: false, error });

export function parsePartnersArgs(argv: readonly string[], now: number): ParsedPartnersArgs {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        until: { type: 'string' },
        reason: { type: 'string' },
        rate: { type: 'string' },
        concurrency: { type: 'string' },
        clear: { type: 'boolean' },
      },
    }));
  } catch (err) {
    return fail((err as Error).message.split('.')[0] ?? 'bad arguments');
  }
  const [command, ...rest] = positionals;
  const allowed: Record<string, string[]> = {
    check: [],
    list: ['json'],
    show: ['json'],
    pause: ['until', 'reason'],
    resume: [],
    limit: ['rate', 'concurrency', 'clear'],
  };
  if (command === undefined) return fail('a command is required');
  const options = allowed[command];
  if (options === undefined) return fail(`unknown command "${command}"`);
  const extra = Object.keys(values).find((k) => !options.includes(k));
  if (extra !== undefined) return fail(`${command} takes no --${extra}`);
  if (command === 'check') {
    if (rest.length !== 1) return fail('check takes one file');
    return { ok: true, plan: { command, file: rest[0] as string } };
  }
  if (command === 'list') {
    if (rest.length !== 0) return fail('list takes no origin');
    return { ok: true, plan: { command, json: values.json === true } };
  }
  if (rest.length !== 1) return fail(`${command} takes one origin`);
  const o = normalizeOrigin(rest[0] as string);
  if (!o.ok) return fail(o.message);
  const origin = o.origin;
  if (command === 'show') return { ok: true, plan: { command, origin, json: values.json === true } };
  if (command === 'resume') return { ok: true, plan: { command, origin } };
  if (command === 'pause') {
    let until: number | null = null;
    if (values.until !== undefined) {
      until = parseTime(String(values.until));
      if (until === null) return fail(`--until must be an ISO 8601 time (2026-11-28T14:00:00Z) or ms since the epoch, not "${String(values.until)}"`);
      if (until <= now) return fail(`--until ${String(values.until)} is already past`);
    }
    const reason = values.reason === undefined ? null : String(values.reason).slice(0, 200);
    return { ok: true, plan: { command, origin, until, reason } };
  }
  // limit
  const clear = values.clear === true;
  if (clear && (values.rate !== undefined || values.concurrency !== undefined)) return fail('limit --clear takes neither --rate nor --concurrency');
  if (!clear && values.rate === undefined && values.concurrency === undefined) return fail('limit needs --rate N, --concurrency N, or --clear');
  let rate: number | undefined;
  let concurrency: number | undefined;
  if (values.rate !== undefined) {
    rate = Number(values.rate);
    if (!/^\d+(\.\d+)?$/.test(String(values.rate)) || !(rate >= 0.001 && rate <= 1_000_000)) return fail(`--rate must be requests per second from 0.001 to 1000000, not "${String(values.rate)}"`);
  }
  if (values.concurrency !== undefined) {
    concurrency = Number(values.concurrency);
    if (!/^\d+$/.test(String(values.concurrency)) || !(concurrency >= 1 && concurrency <= 100_000)) return fail(`--concurrency must be a whole number from 1 to 100000, not "${String(values.concurrency)}"`);
  }
  return { ok: true, plan: { command: 'limit', origin, rate, concurrency, clear } };
}
