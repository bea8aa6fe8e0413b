import t from 'tap';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portablePaths, REPO_ROOT } from '../../bench/lib/repo.js';

t.test('results files name no path of the machine they ran on', async (t) => {
  const tmp = tmpdir();
  const cases: [string, unknown, unknown][] = [
    ['a path in the repository', { LOG_DIR: join(REPO_ROOT, 'bench/results/tmp/run-1/log') }, { LOG_DIR: 'bench/results/tmp/run-1/log' }],
    ['the temporary folder', { NODE_EXTRA_CA_CERTS: join(tmp, 'pb-tls-x/ca.pem') }, { NODE_EXTRA_CA_CERTS: '<tmp>/pb-tls-x/ca.pem' }],
    ['an argument list', { redisArgs: ['--dir', join(REPO_ROOT, 'bench/results/tmp/r')] }, { redisArgs: ['--dir', 'bench/results/tmp/r'] }],
    ['after "="', { arg: `--cafile=${join(tmp, 'ca.pem')}` }, { arg: '--cafile=<tmp>/ca.pem' }],
    ['anything else untouched', { note: 'results in bench/results/tmp/ and /tmpfile' }, { note: 'results in bench/results/tmp/ and /tmpfile' }],
  ];
  for (const [name, input, want] of cases) t.same(JSON.parse(portablePaths(JSON.stringify(input))), want, name);
});
