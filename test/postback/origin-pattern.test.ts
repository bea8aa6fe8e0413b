import t from 'tap';
import { bestMatch, parseOriginPattern } from '../../src/postback/origin-pattern.js';

t.test('patterns match origins as URL.origin writes them', async (t) => {
  const cases: [string, string, boolean][] = [
    ['https://api.partner.com', 'https://api.partner.com', true],
    ['https://api.partner.com', 'http://api.partner.com', false],
    ['https://api.partner.com', 'https://api.partner.com:8443', false],
    ['https://api.partner.com:443', 'https://api.partner.com', true],
    ['HTTPS://API.Partner.COM', 'https://api.partner.com', true],
    ['http://h.example:8080', 'http://h.example:8080', true],
    ['http://h.example:8080', 'http://h.example', false],
    ['https://*.pixel.example', 'https://a.pixel.example', true],
    ['https://*.pixel.example', 'https://a.b.pixel.example', true],
    ['https://*.pixel.example', 'https://pixel.example', false],
    ['https://*.pixel.example', 'https://evilpixel.example', false],
    ['https://*.pixel.example', 'https://a.pixel.example.evil.com', false],
    ['https://*.pixel.example', 'https://a.pixel.example:8443', false],
    ['https://*.pixel.example:8443', 'https://a.pixel.example:8443', true],
    ['https://*.pixel.example', 'http://a.pixel.example', false],
    ['http://[::1]:9000', 'http://[::1]:9000', true],
    ['http://127.0.0.1:9999', 'http://127.0.0.1:9999', true],
    ['https://bücher.example', 'https://xn--bcher-kva.example', true],
  ];
  for (const [pattern, origin, want] of cases) {
    const p = parseOriginPattern(pattern);
    if (!p.ok) {
      t.fail(`${pattern}: ${p.message}`);
      continue;
    }
    t.equal(p.pattern.matches(origin), want, `${pattern} ${want ? 'matches' : 'does not match'} ${origin}`);
  }
});

t.test('what is not a pattern is refused with a reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['api.partner.com', /must start with http/],
    ['ftp://h.example', /must start with http/],
    ['https://h.example/path', /origin only/],
    ['https://h.example/?q=1', /origin only/],
    ['https://user:pw@h.example', /credentials/],
    ['https://a.*.example', /a \* may only open the host/],
    ['https://*', /not an origin|only open/],
    ['https://', /not an origin/],
  ];
  for (const [pattern, re] of cases) {
    const p = parseOriginPattern(pattern);
    t.equal(p.ok, false, pattern);
    if (!p.ok) t.match(p.message, re, pattern);
  }
});

t.test('the most specific pattern wins', async (t) => {
  const list = ['https://*.example.com', 'https://*.api.example.com', 'https://pay.api.example.com'].map((s) => {
    const p = parseOriginPattern(s);
    if (!p.ok) throw new Error(p.message);
    return { pattern: p.pattern, name: s };
  });
  t.equal(bestMatch(list, 'https://pay.api.example.com')?.name, 'https://pay.api.example.com', 'exact beats wildcards');
  t.equal(bestMatch(list, 'https://x.api.example.com')?.name, 'https://*.api.example.com', 'the longer wildcard');
  t.equal(bestMatch(list, 'https://www.example.com')?.name, 'https://*.example.com');
  t.equal(bestMatch(list, 'https://example.org'), undefined);
});
