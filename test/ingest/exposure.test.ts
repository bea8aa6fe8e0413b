import t from 'tap';
import { checkExposure, hostAllowed, isLoopbackHost, originAllowed } from '../../src/ingest/exposure.js';

t.test('loopback addresses', async (t) => {
  const cases: [string, boolean][] = [
    ['127.0.0.1', true], ['127.1.2.3', true], ['localhost', true], ['LOCALHOST', true], ['::1', true], ['[::1]', true], ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false], ['::', false], ['10.0.0.5', false], ['192.168.1.2', false], ['ingest.internal', false], ['::ffff:10.0.0.1', false], ['128.0.0.1', false],
  ];
  for (const [host, want] of cases) t.equal(isLoopbackHost(host), want, host);
});

t.test('an open ingest reachable from elsewhere is a choice, never a default', async (t) => {
  const cases: [string, number, boolean, 'start' | 'warn' | 'refuse'][] = [
    ['127.0.0.1', 0, false, 'start'],
    ['localhost', 0, false, 'start'],
    ['0.0.0.0', 1, false, 'start'],
    ['0.0.0.0', 0, true, 'warn'],
    ['0.0.0.0', 0, false, 'refuse'],
    ['10.0.0.5', 0, false, 'refuse'],
    ['::', 0, false, 'refuse'],
  ];
  for (const [host, tokens, allowAnonymous, want] of cases) {
    const e = checkExposure({ host, port: 8080, tokens, allowAnonymous });
    const got = !e.ok ? 'refuse' : e.warning !== null ? 'warn' : 'start';
    t.equal(got, want, `${host}, ${tokens} tokens, anonymous ${allowAnonymous}`);
    if (!e.ok) t.match(e.error, /set INGEST_TOKENS .* or INGEST_ALLOW_ANONYMOUS=true/);
    if (e.ok && e.warning) t.match(e.warning, new RegExp(`open to anyone who can reach ${host.replace(/\./g, '\\.')}:8080`));
  }
});

t.test('hostAllowed: a loopback listener answers only loopback Host names and the listed ones (DNS rebinding)', async (t) => {
  const cases: [string, string[], string | undefined, boolean][] = [
    ['127.0.0.1', [], 'localhost:9090', true],
    ['127.0.0.1', [], '127.0.0.1:9090', true],
    ['127.0.0.1', [], '127.8.9.10', true],
    ['127.0.0.1', [], '[::1]:9090', true],
    ['127.0.0.1', [], 'LOCALHOST', true],
    ['127.0.0.1', [], undefined, true],
    ['127.0.0.1', [], 'evil.example:9090', false],
    ['127.0.0.1', [], 'evil.example', false],
    ['127.0.0.1', [], '10.0.0.5:9090', false],
    ['127.0.0.1', [], 'localhost.evil.example:9090', false],
    ['::1', [], 'rebind.test:9090', false],
    ['127.0.0.1', ['dash.internal'], 'Dash.Internal:443', true],
    ['127.0.0.1', ['dash.internal'], 'other.internal', false],
    ['0.0.0.0', [], 'evil.example:9090', true],
    ['10.0.0.5', [], 'anything', true],
  ];
  for (const [bind, allowed, host, want] of cases) t.equal(hostAllowed(bind, allowed, host), want, `bound to ${bind}, Host ${host}`);
});

t.test('originAllowed: no Origin (a server) or a loopback page; any other web page is refused', async (t) => {
  const cases: [string | undefined, boolean][] = [
    [undefined, true],
    ['http://localhost:3000', true],
    ['http://127.0.0.1:8080', true],
    ['http://[::1]:8080', true],
    ['https://evil.example', false],
    ['http://evil.example:8080', false],
    ['null', false],
    ['not a url', false],
  ];
  for (const [origin, want] of cases) t.equal(originAllowed(origin), want, `Origin ${origin}`);
});
