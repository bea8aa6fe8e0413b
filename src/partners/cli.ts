/**
 * `node dist/cli.js partners <command>`:
 *   partners check FILE   validate a policy file without running anything
 *                         (exit 0, or 1 with every problem named)
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { policyDefaults, readPolicyFile } from './policy-file.js';

export const USAGE = `usage: node dist/cli.js partners <command>
  partners check FILE        validate a partner policy file (JSON or YAML) without running anything
`;

function usage(reason: string): void {
  process.stderr.write(`partners: ${reason}\n${USAGE}`);
  process.exitCode = 2;
}

export async function runPartners(argv: string[]): Promise<void> {
  let positionals: string[];
  try {
    ({ positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: {} }));
  } catch (err) {
    usage((err as Error).message.split('.')[0] ?? 'bad arguments');
    return;
  }
  const [command, ...rest] = positionals;
  if (command !== 'check') return usage(command === undefined ? 'a command is required' : `unknown command "${command}"`);
  if (rest.length !== 1) return usage('check takes one file');
  const file = rest[0] as string;
  const result = readPolicyFile(file, policyDefaults(loadConfig()));
  if (!result.ok) {
    for (const p of result.problems) process.stderr.write(`${file}: ${p}\n`);
    process.exitCode = 1;
    return;
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
}
