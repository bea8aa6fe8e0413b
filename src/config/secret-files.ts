/**
 * Pure: the `<NAME>_FILE` convention of Docker and Kubernetes secrets. For
 * each secret variable X, `X_FILE=/path` gives X the text of that file, its
 * trailing newline(s) removed and nothing else changed; the value is then
 * read exactly as X would be. A secret kept in a file stays out of the
 * process's environment (`/proc/<pid>/environ`, `ps e`, `pm2 env`,
 * `dump.pm2`, `docker inspect`), where only its path shows.
 *
 * Both X and X_FILE set, a file that cannot be read, or one with nothing in
 * it: a problem, coded, naming the variable and the path, never a byte of
 * the file. A file other users may read gives a warning (see
 * {@link worldReadable}).
 *
 * REDIS_PASSWORD has no X_FILE: REDIS_PASSWORD_FILE already names the
 * private Redis's generated password file (README Configuration), and
 * install-service.sh writes it into every env file. Read as REDIS_PASSWORD's
 * file with REDIS_CLUSTER_NODES or REDIS_SENTINELS, it stopped an install
 * moved to Sentinel (the file missing, or REDIS_PASSWORD set beside it) or
 * sent the private Redis's password to another Redis. It keeps its one
 * meaning; your own Redis's password goes in REDIS_URL_FILE's URL, or in
 * the environment.
 */
import type { ErrorCode } from '../errors.js';

/** Every variable whose value is a secret (redact.ts hides each in the Config). */
export const SECRET_VARIABLES = ['REDIS_URL', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'INGEST_TOKENS', 'ADMIN_TOKENS', 'SIGNING_SECRET'] as const;
export type SecretVariable = (typeof SECRET_VARIABLES)[number];

/** The secrets that may come from a file (all but REDIS_PASSWORD: above). */
export const FILE_VARIABLES = SECRET_VARIABLES.filter((name) => name !== 'REDIS_PASSWORD');

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads a file's text (throws like readFileSync). */
export type ReadFile = (path: string) => string;

/** A file's permission bits (throws like statSync; follows symlinks, as Kubernetes' secret files are). */
export type FileMode = (path: string) => number;

export const SECRET_CONFLICT: ErrorCode = 'PB_ERR_SECRET_CONFLICT';
export const SECRET_FILE: ErrorCode = 'PB_ERR_SECRET_FILE';

export interface SecretFiles {
  /** The environment with each X_FILE's value put in X. */
  env: Env;
  /** Coded problems: the process must not start. */
  problems: string[];
  /** Worth a line on stderr at start, nothing more. */
  warnings: string[];
  /** Which secret came from which file: variable -> path. */
  files: Partial<Record<SecretVariable, string>>;
}

const set = (v: string | undefined): v is string => v !== undefined && v !== '';

/**
 * Other users may read it. Group-readable is not warned about: a secret
 * shared with the service's group (0640 root:service, as install-service.sh
 * does for its env file) is the usual way to hand it over.
 */
export function worldReadable(mode: number): boolean {
  return (mode & 0o004) !== 0;
}

export function resolveSecretFiles(env: Env, readFile: ReadFile, fileMode?: FileMode): SecretFiles {
  const out: Record<string, string | undefined> = { ...env };
  const problems: string[] = [];
  const warnings: string[] = [];
  const files: Partial<Record<SecretVariable, string>> = {};
  for (const name of FILE_VARIABLES) {
    const fileVar = `${name}_FILE`;
    const path = env[fileVar];
    if (!set(path)) continue;
    if (set(env[name])) {
      problems.push(`${SECRET_CONFLICT}: ${name} and ${fileVar} are both set: set only one (the value is not shown)`);
      continue;
    }
    let text: string;
    try {
      text = readFile(path);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      problems.push(`${SECRET_FILE}: ${fileVar} (${path}) cannot be read: ${e.code ?? e.message}`);
      continue;
    }
    const value = text.replace(/(\r?\n)+$/, '');
    // Blank counts as empty: read as X, it would be unset, and a secret would be missing without a word.
    if (value.trim() === '') {
      problems.push(`${SECRET_FILE}: ${fileVar} (${path}) is empty`);
      continue;
    }
    out[name] = value;
    files[name] = path;
    if (fileMode !== undefined) {
      let mode: number | undefined;
      try {
        mode = fileMode(path);
      } catch {
        mode = undefined; // it was read a moment ago: nothing to warn about that the read did not say
      }
      if (mode !== undefined && worldReadable(mode)) {
        const octal = (mode & 0o777).toString(8).padStart(4, '0');
        warnings.push(`${fileVar} (${path}) is readable by other users (mode ${octal}): chmod o-r it, or keep it where only this service can read it`);
      }
    }
  }
  return { env: out, problems, warnings, files };
}
