/**
 * The partner policy file (PARTNERS_FILE), JSON or YAML (the `yaml`
 * package), read and validated at start (a bad file stops the process with
 * every problem named) and reloaded on SIGHUP and when the file changes
 * (polled every second): a bad reload is logged and the old policies stay.
 */
import { readFileSync, statSync, unwatchFile, watchFile } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml, parseDocument } from 'yaml';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { emptyTable, parsePolicies, type ParsePoliciesResult, type PolicyDefaults, type PolicyTable } from './policy.js';

/** The defaults every policy starts from, from the configuration. */
export function policyDefaults(config: Config): PolicyDefaults {
  const d = config.delivery;
  return {
    timeoutMs: d.timeoutMs,
    maxTimeoutMs: Math.min(Math.floor((d.visibilityMs - 5_000) / 2), config.shutdownTimeoutMs - 3_000),
    maxAttempts: d.maxAttempts,
    backoffBaseMs: d.backoffBaseMs,
    backoffMaxMs: d.backoffMaxMs,
    signing: d.signingSecrets.length > 0,
    breaker: config.partners.breaker,
  };
}

/** Reads and validates a policy file: JSON for .json, YAML for .yaml/.yml, otherwise whichever parses. */
export function readPolicyFile(path: string, defaults: PolicyDefaults): ParsePoliciesResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, problems: [`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`] };
  }
  const ext = extname(path).toLowerCase();
  let doc: unknown;
  try {
    doc = ext === '.json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, problems: [`${path} is not valid ${ext === '.json' ? 'JSON' : 'YAML (or JSON)'}: ${(err as Error).message.split('\n')[0]}`] };
  }
  if (ext === '.json') {
    const duplicates = duplicateKeys(text);
    if (duplicates.length > 0) return { ok: false, problems: duplicates.map((where) => `${path}: a key appears twice in one object ${where}; JSON would keep only the last`) };
  }
  return parsePolicies(doc, defaults);
}

/**
 * JSON.parse keeps the last of two equal keys without a word, so an entry
 * added for an origin already in the file would silently replace the
 * first. YAML's parser refuses them; JSON is read by it again (JSON is
 * YAML 1.2) only to find them: its other complaints are ignored.
 */
function duplicateKeys(jsonText: string): string[] {
  return parseDocument(jsonText, { uniqueKeys: true })
    .errors.filter((e) => e.code === 'DUPLICATE_KEY')
    .map((e) => (e.linePos === undefined ? '' : `at line ${e.linePos[0].line}, column ${e.linePos[0].col}`));
}

export interface PolicySource {
  /** The policies in force now. */
  readonly table: PolicyTable;
  /** Increases with every successful reload. */
  readonly version: number;
  /** Reads the file again; a bad file is logged and the old policies stay. */
  reload(reason: string): void;
  close(): void;
}

/**
 * Loads PARTNERS_FILE (or none: every partner gets the defaults) and keeps
 * it current. Throws, with every problem, if the file is bad at start.
 */
export function loadPolicies(config: Config, logger: Logger, onChange: (table: PolicyTable) => void = () => undefined): PolicySource {
  const defaults = policyDefaults(config);
  const path = config.partners.file;
  if (path === undefined) {
    const table = emptyTable(defaults);
    return { table, version: 0, reload: () => undefined, close: () => undefined };
  }
  const first = readPolicyFile(path, defaults);
  if (!first.ok) throw new Error(`bad partner policy file ${path}: ${first.problems.join('; ')}`);
  let table = first.table;
  let version = 1;
  const source: PolicySource = {
    get table() {
      return table;
    },
    get version() {
      return version;
    },
    reload(reason) {
      const next = readPolicyFile(path, defaults);
      if (!next.ok) {
        logger.error({ file: path, problems: next.problems, reason }, 'partner policy file not reloaded: the old policies stay');
        return;
      }
      table = next.table;
      version++;
      logger.info({ file: path, partners: table.entries.length, reason }, 'partner policies reloaded');
      onChange(table);
    },
    close() {
      unwatchFile(path, changed);
      process.removeListener('SIGHUP', hup);
    },
  };
  let mtime = statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const changed = (cur: { mtimeMs: number }): void => {
    if (cur.mtimeMs === mtime) return;
    mtime = cur.mtimeMs;
    source.reload('file changed');
  };
  watchFile(path, { interval: 1_000, persistent: false }, changed);
  const hup = (): void => source.reload('SIGHUP');
  process.on('SIGHUP', hup);
  logger.info({ file: path, partners: table.entries.length }, 'partner policies loaded');
  return source;
}

/** loadPolicies for a role starting: a bad file ends the process (exit 1) with every problem on stderr. */
export function loadPoliciesOrExit(config: Config, logger: Logger): PolicySource {
  try {
    return loadPolicies(config, logger);
  } catch (err) {
    process.stderr.write(`postback-delivery: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
