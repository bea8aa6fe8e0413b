/**
 * `node dist/cli.js partners <command>` (usage in args.ts): policy file
 * checks, and the cluster-wide control plane in Redis (pause, resume,
 * limit), which every delivery process obeys within about a second. Uses
 * the same REDIS_URL and Redis variables as the roles.
 */
import { loadConfig, type Config } from '../config/index.js';
import { TIME_MAX } from '../dlq/args.js';
import { allShards, controlKeys } from '../queue/keys.js';
import { createRedis } from '../queue/redis.js';
import { parsePartnersArgs, USAGE, type PartnersPlan } from './args.js';
import { clearPause, setLimit, setPause } from './control.js';
import { policyDefaults, readPolicyFile } from './policy-file.js';
import type { PolicyTable } from './policy.js';
import { readPartnerStatus, readPartnerStatuses, type PartnerStatus } from './status.js';

export { USAGE };

function check(file: string, config: Config): number {
  const result = readPolicyFile(file, policyDefaults(config));
  if (!result.ok) {
    for (const p of result.problems) process.stderr.write(`${file}: ${p}\n`);
    return 1;
  }
  const n = result.table.entries.length;
  process.stdout.write(`${file}: ${n} partner polic${n === 1 ? 'y' : 'ies'}, valid\n`);
  for (const { pattern, policy } of result.table.entries) {
    const parts = [
      policy.rate !== null ? `rate ${policy.rate}/s burst ${policy.burst}` : null,
      policy.concurrency !== null ? `concurrency ${policy.concurrency}` : null,
      `timeout ${policy.timeoutMs} ms`,
      `${policy.maxAttempts} attempts`,
      `delivered on ${policy.success.source}`,
      `retried on ${policy.retryOn.source}`,
      Object.keys(policy.headers).length > 0 ? `headers ${Object.keys(policy.headers).join(', ')}` : null,
      policy.signing ? 'signed' : 'unsigned',
    ].filter(Boolean);
    process.stdout.write(`  ${pattern.source}: ${parts.join('; ')}\n`);
  }
  return 0;
}

/** PARTNERS_FILE's table for showing effective limits; null (with a note) when there is none or it is bad. */
function table(config: Config): PolicyTable | null {
  if (config.partners.file === undefined) return null;
  const r = readPolicyFile(config.partners.file, policyDefaults(config));
  if (r.ok) return r.table;
  process.stderr.write(`note: PARTNERS_FILE ${config.partners.file} is not valid (partners check ${config.partners.file}): policies not shown\n`);
  return null;
}

/** A stored time as ISO 8601; one a Date cannot hold (an older version let it in) as its number, never a crash. */
const iso = (ms: number | null): string => (ms === null ? 'until resumed' : Number.isFinite(ms) && Math.abs(ms) <= TIME_MAX ? new Date(ms).toISOString() : String(ms));

export function describe(s: PartnerStatus): string {
  const parts: string[] = [s.state];
  if (s.pause) parts.push(`paused by ${s.pause.by} ${s.pause.until === null ? 'until resumed' : `until ${iso(s.pause.until)}`}${s.pause.reason ? ` (${s.pause.reason})` : ''}`);
  if (s.breaker) parts.push(`breaker ${s.breaker.state} since ${iso(s.breaker.since)}: ${s.breaker.reason}`);
  if (s.rate !== null) parts.push(`rate ${s.rate}/s`);
  if (s.concurrency !== null) parts.push(`concurrency ${s.concurrency}`);
  if (s.limit) parts.push('(limit set by an operator)');
  parts.push(`${s.held} waiting`);
  return `${s.origin}  ${parts.join('; ')}`;
}

async function control(plan: Exclude<PartnersPlan, { command: 'check' }>, config: Config): Promise<number> {
  const redis = createRedis(config, 'cli', 'partners');
  const keys = controlKeys(config.redis.prefix);
  const shards = allShards(config.redis.prefix, config.redis.shards);
  const now = Date.now();
  try {
    switch (plan.command) {
      case 'list': {
        const all = await readPartnerStatuses(redis, keys, shards, table(config), now);
        if (plan.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
        else if (all.length === 0) process.stdout.write('no partner is paused, limited, open or waiting\n');
        else for (const s of all) process.stdout.write(`${describe(s)}\n`);
        return 0;
      }
      case 'show': {
        const s = await readPartnerStatus(redis, keys, shards, table(config), plan.origin, now);
        process.stdout.write(plan.json ? `${JSON.stringify(s, null, 2)}\n` : `${describe(s)}${s.pattern !== null ? `\npolicy: ${s.pattern}` : ''}\n`);
        return 0;
      }
      case 'pause':
        await setPause(redis, keys, plan.origin, { until: plan.until, by: 'operator', reason: plan.reason, at: now });
        process.stdout.write(`paused ${plan.origin} ${plan.until === null ? 'until resumed' : `until ${iso(plan.until)}`}: its postbacks wait in Redis\n`);
        return 0;
      case 'resume': {
        const changed = await clearPause(redis, keys, plan.origin);
        process.stdout.write(changed ? `resumed ${plan.origin}: its waiting postbacks go out at its rate, or ramping up\n` : `${plan.origin} was not paused\n`);
        return 0;
      }
      case 'limit': {
        const limit = plan.clear ? null : { ...(plan.rate !== undefined ? { rate: plan.rate } : {}), ...(plan.concurrency !== undefined ? { concurrency: plan.concurrency } : {}) };
        await setLimit(redis, keys, plan.origin, limit);
        process.stdout.write(limit === null ? `limits of ${plan.origin} back to its policy\n` : `limited ${plan.origin}: ${JSON.stringify(limit)} for the whole cluster\n`);
        return 0;
      }
    }
  } finally {
    redis.disconnect();
  }
}

export async function runPartners(argv: string[]): Promise<void> {
  const parsed = parsePartnersArgs(argv, Date.now());
  if (!parsed.ok) {
    process.stderr.write(`partners: ${parsed.error}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  const plan = parsed.plan;
  process.exitCode = plan.command === 'check' ? check(plan.file, config) : await control(plan, config);
}
