/**
 * The only place that reads `process.env`. `loadConfig()` parses it once
 * (and reads the files DELIVERY_CA_FILE and the secrets' X_FILE variables
 * name); on a bad value it prints one line naming every bad variable and
 * exits 1, so a misconfigured process never starts half-working. A warning
 * (a secret file other users may read) is one line on stderr, once.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseConfig } from './parse.js';
import type { Config } from './defaults.js';

export type { Config, LogLevel } from './defaults.js';
export { DEFAULTS, REDIS_MODE_SOURCE } from './defaults.js';

let cached: Config | undefined;

export function loadConfig(): Config {
  if (cached) return cached;
  const result = parseConfig(process.env, (path) => readFileSync(path, 'utf8'), (path) => statSync(path).mode);
  if (!result.ok) {
    process.stderr.write(`postback-delivery: bad configuration: ${result.problems.join('; ')}\n`);
    process.exit(1);
  }
  for (const w of result.warnings) process.stderr.write(`postback-delivery: warning: ${w}\n`);
  cached = result.config;
  return cached;
}
