/**
 * The password of the private Redis, in REDIS_PASSWORD_FILE (mode 0600):
 * created on first use by whichever process gets there first (exclusive
 * create, so two roles starting together agree on one password).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function privatePassword(passwordFile: string): string {
  const file = resolve(passwordFile);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    // not there yet: create it below
  }
  mkdirSync(dirname(file), { recursive: true });
  try {
    writeFileSync(file, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readFileSync(file, 'utf8').trim();
}
