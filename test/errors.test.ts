/**
 * The error registry and the README's error table list the same codes,
 * each with the same HTTP status and public `error` string: the table is
 * what operators read at 3 am, the registry is what the code writes.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERRORS, PostbackError, isErrorCode, type ErrorCode } from '../src/errors.js';

function readmeTable(): Map<string, { status: number | null; error: string }> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('## Error codes');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const rows = new Map<string, { status: number | null; error: string }>();
  for (const line of section.split('\n')) {
    const m = /^\| `(PB_ERR_[A-Z_]+)` \| *(\d*) *\| `([a-z_]+)` \|/.exec(line);
    if (m) rows.set(m[1] as string, { status: m[2] === '' ? null : Number(m[2]), error: m[3] as string });
  }
  return rows;
}

t.test('the README error table and the registry agree', async (t) => {
  const table = readmeTable();
  t.same([...table.keys()].sort(), Object.keys(ERRORS).sort(), 'the same codes');
  for (const [code, spec] of Object.entries(ERRORS)) {
    t.same(table.get(code), { status: spec.status, error: spec.error }, code);
  }
});

t.test('codes are unique in their public string too', async (t) => {
  const strings = Object.values(ERRORS).map((s) => s.error);
  t.equal(new Set(strings).size, strings.length);
});

t.test('a PostbackError carries its status and public string', async (t) => {
  const err = new PostbackError('PB_ERR_QUEUE_FULL', 'full');
  t.equal(err.status, 503);
  t.equal(err.error, 'queue_full');
  t.equal(err.code, 'PB_ERR_QUEUE_FULL');
  const codes: [unknown, boolean][] = [['PB_ERR_CODEC', true], ['PB_ERR_NOPE', false], ['toString', false], [42, false], [null, false]];
  for (const [code, want] of codes) t.equal(isErrorCode(code), want, String(code));
  const typed: ErrorCode = 'PB_ERR_EXPIRED';
  t.equal(ERRORS[typed].status, null, 'attempt outcomes have no HTTP status');
});
