import t from 'tap';
import { parseTemplate, render, requestPath, splitPlaceholders, encodeDefault, type CompiledTemplate } from '../../src/postback/template.js';
import type { DataObject, Method } from '../../src/postback/data.js';
import { requestCases } from '../helpers/fixtures.js';

function compile(url: string, method: Method = 'GET'): CompiledTemplate {
  const r = parseTemplate(method, url);
  if (!r.ok) throw new Error(r.message);
  return r.template;
}

t.test('every request case renders exactly its expected requests', async (t) => {
  const cases = requestCases();
  t.ok(cases.length >= 7, 'cases found');
  for (const c of cases) {
    const req = JSON.parse(c.body) as { endpoint: { method: string; url: string }; data: DataObject[] };
    const method = req.endpoint.method.toUpperCase() as Method;
    const tpl = compile(req.endpoint.url, method);
    const lines = req.data.map((d) => {
      const url = render(tpl, d, encodeDefault(''));
      return method === 'POST' ? `POST ${url} ${JSON.stringify(d)}` : `GET ${url}`;
    });
    t.same(lines, c.expected, c.name);
  }
});

t.test('splitting placeholders', async (t) => {
  const cases: [string, string[], string[]][] = [
    ['a{x}b{y}', ['a', 'b', ''], ['x', 'y']],
    ['{x}{x}', ['', '', ''], ['x', 'x']],
    ['no placeholders', ['no placeholders'], []],
    ['{}', ['{}'], []],
    ['a{b', ['a{b'], []],
    ['a}b{c}', ['a}b', ''], ['c']],
    ['{a{b}c', ['{a', 'c'], ['b']],
    ['{a.b*}', ['', ''], ['a.b*']],
  ];
  for (const [src, lits, names] of cases) {
    t.same(splitPlaceholders(src), { literals: lits, names }, src);
  }
});

t.test('rendering edge cases', async (t) => {
  const d = encodeDefault('');
  const cases: [string, DataObject, string, string?][] = [
    ['http://h.com/a?x={x}&y={x}', { x: 'v' }, 'http://h.com/a?x=v&y=v'],
    ['http://h.com/a?x={a}-{b}-{c}', { b: 'B' }, 'http://h.com/a?x=-B-'],
    ['http://h.com/?q={q}', { q: 'a b&c=d/e?f#g+h%' }, 'http://h.com/?q=a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25'],
    ['http://h.com/?q={q}', { q: 'žluťoučký 🐸' }, 'http://h.com/?q=%C5%BElu%C5%A5ou%C4%8Dk%C3%BD%20%F0%9F%90%B8'],
    ['http://h.com/?q={q}', { q: '{q}' }, 'http://h.com/?q=%7Bq%7D'],
    ['http://h.com/?q={a.b*}&r={(x|y)}', { 'a.b*': '1', '(x|y)': '2' }, 'http://h.com/?q=1&r=2'],
    ['http://h.com/users/{id}/events/{ev}', { id: 42, ev: 'buy' }, 'http://h.com/users/42/events/buy'],
    ['http://h.com/?n={n}&f={f}&b={b}&z={z}', { n: 1.5, f: false, b: true, z: null }, 'http://h.com/?n=1.5&f=false&b=true&z='],
    ['http://h.com/?n={n}', { n: -0.000001 }, 'http://h.com/?n=-0.000001'],
    ['http://h.com/?p={toString}&q={constructor}', {}, 'http://h.com/?p=&q='],
    ['http://h.com/?q={q}', { q: '\ud800' }, 'http://h.com/?q=%EF%BF%BD'],
  ];
  for (const [url, data, want] of cases) {
    t.equal(render(compile(url), data, d), want, `${url} ${JSON.stringify(data)}`);
  }
});

t.test('the default for unmatched placeholders is encoded once', async (t) => {
  const tpl = compile('http://h.com/?a={a}&b={b}');
  t.equal(render(tpl, { a: 'x' }, encodeDefault('n/a')), 'http://h.com/?a=x&b=n%2Fa');
  t.equal(render(tpl, { a: null }, encodeDefault('-')), 'http://h.com/?a=-&b=-');
});

t.test('templates are normalised once; the origin is fixed unless the host varies', async (t) => {
  const tpl = compile('http://sample_domain_endpoint.com/data?key={key}');
  t.equal(tpl.origin, 'http://sample_domain_endpoint.com');
  t.equal(requestPath(tpl, render(tpl, { key: 'a' }, '')), '/data?key=a');

  const noPath = compile('http://h.com?x={x}');
  t.equal(render(noPath, { x: '1' }, ''), 'http://h.com/?x=1');
  t.equal(requestPath(noPath, 'http://h.com/?x=1'), '/?x=1');

  const frag = compile('https://h.com:8443/p/{a}?q=1#frag{b}');
  t.equal(frag.origin, 'https://h.com:8443');
  t.equal(requestPath(frag, render(frag, { a: 'x', b: 'y' }, '')), '/p/x?q=1');

  const spaces = compile('http://h.com/a b/{x}?c d={y}');
  t.equal(render(spaces, { x: '1', y: '2' }, ''), 'http://h.com/a%20b/1?c%20d=2');

  const host = compile('http://{sub}.h.com/p?x={x}');
  t.equal(host.origin, null);
  t.equal(render(host, { sub: 'eu', x: '1' }, ''), 'http://eu.h.com/p?x=1');

  const glued = compile('http://h.com{path}');
  t.equal(glued.origin, null, 'a placeholder touching the host makes the origin vary');

  t.equal(compile('HTTP://H.COM/X').origin, 'http://h.com');
});

t.test('templates that cannot be delivered are refused with a message naming endpoint.url', async (t) => {
  const bad = [
    'not a url',
    '/relative/{x}',
    'ftp://h.com/{x}',
    'file:///etc/passwd',
    'http://user:pass@h.com/',
    'http://h.com:{port}/',
    'http://',
    '{scheme}://h.com/',
    'javascript:alert(1)',
  ];
  for (const url of bad) {
    const r = parseTemplate('GET', url);
    t.notOk(r.ok, url);
    if (!r.ok) t.match(r.message, /^endpoint\.url /, url);
  }
});

t.test('text the URL parser turns into a marker never moves a placeholder', async (t) => {
  // The parser decodes and case-folds the host: %78 is "x", fullwidth
  // letters fold to ASCII. A marker made there must not be taken for the
  // placeholder, which belongs in the path.
  for (const url of ['http://%78pbmk0x.example.com/p/{a}', 'http://ｘｐｂｍｋ０ｘ.example.com/p/{a}', 'http://XPBMK0X.example.com/p/{a}']) {
    const tpl = compile(url);
    t.equal(tpl.origin, 'http://xpbmk0x.example.com', `${url}: the host stays fixed`);
    t.equal(render(tpl, { a: 'evil.net' }, ''), 'http://xpbmk0x.example.com/p/evil.net', `${url}: the value stays in the path`);
  }
  const many = `http://${Array.from({ length: 40 }, (_, k) => `%78pbmk${k}q0x`).join('.')}.%78pbmk0x.h.com/{a}`;
  const r = parseTemplate('GET', many);
  t.notOk(r.ok, 'a host built to match every marker is refused, not mis-rendered');
  if (!r.ok) t.equal(r.message, 'endpoint.url holds text that cannot be told apart from its placeholders');
});

t.test('template ids are content addresses', async (t) => {
  const a = compile('http://h.com/?x={x}');
  const b = compile('http://h.com/?x={x}');
  const c = compile('http://h.com/?x={x}', 'POST');
  t.equal(a.id, b.id);
  t.not(a.id, c.id);
  t.match(a.id, /^[A-Za-z0-9_-]{16}$/);
});
