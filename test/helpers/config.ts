/** A validated Config for in-process tests, from env-style overrides. */
import { parseConfig } from '../../src/config/parse.js';
import type { Config } from '../../src/config/defaults.js';

export function testConfig(env: Record<string, string>): Config {
  const r = parseConfig({ LOG_LEVEL: 'silent', DELIVERY_ALLOW_PRIVATE: 'true', ...env });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.config;
}
