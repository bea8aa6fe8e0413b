import t from 'tap';
import { outgoingRequest } from '../../src/postback/outgoing.js';
import { parseTemplate, type CompiledTemplate } from '../../src/postback/template.js';

function compile(url: string, method: 'GET' | 'POST' = 'GET'): CompiledTemplate {
  const r = parseTemplate(method, url);
  if (!r.ok) throw new Error(r.message);
  return r.template;
}

t.test("a policy's headers are added beside the service's own, whatever their names", async (t) => {
  const cases: [string, Record<string, string>, Record<string, string>][] = [
    ['a plain header', { 'x-api-key': 'k' }, { 'x-api-key': 'k' }],
    // Names an object already has by inheritance must still go out.
    ['named like Object.prototype members', { constructor: 'c', tostring: 't', valueof: 'v', hasownproperty: 'h' }, { constructor: 'c', tostring: 't', valueof: 'v', hasownproperty: 'h' }],
    ["never replacing the service's own", { 'user-agent': 'evil', 'x-postback-id': 'evil' }, { 'user-agent': 'ua', 'x-postback-id': 'r:0' }],
  ];
  for (const [name, headers, want] of cases) {
    const out = outgoingRequest(compile('http://h.com/p?k={k}'), { k: '1' }, 'r:0', '', 'ua', { headers });
    t.match(out.headers, want, name);
    t.ok(Object.entries(want).every(([k]) => Object.hasOwn(out.headers, k)), `${name}: own headers`);
  }
});
