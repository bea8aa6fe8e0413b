import t from 'tap';
import { createAddressPolicy, parseCidr } from '../../src/delivery/address-policy.js';

t.test('private, loopback, link-local, multicast, unspecified are refused by default', async (t) => {
  const allowed = createAddressPolicy({ allowPrivate: false, allowedCidrs: [] });
  const refused = [
    '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1',
    '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '239.255.255.250', '255.255.255.255',
    '198.18.0.1', '192.0.2.1',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
    '::ffff:7f00:1', '64:ff9b::7f00:1', '64:ff9b::10.0.0.1', '64:ff9b:1::1', '2001:db8::1',
    // IPv4-compatible (::/96, deprecated) and IPv4-translated (::ffff:0:0:0/96) forms
    '::127.0.0.1', '::7f00:1', '::10.0.0.1', '::8.8.8.8', '::ffff:0:127.0.0.1', '::ffff:0:7f00:1', '::ffff:0:a00:1', '::ffff:0:8.8.8.8',
    'not-an-ip', '',
  ];
  for (const a of refused) t.notOk(allowed(a), `${a} refused`);
  const ok = ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'];
  for (const a of ok) t.ok(allowed(a), `${a} allowed`);
});

t.test('DELIVERY_ALLOW_PRIVATE lifts it; DELIVERY_ALLOWED_CIDRS lets chosen ranges through', async (t) => {
  t.ok(createAddressPolicy({ allowPrivate: true, allowedCidrs: [] })('127.0.0.1'));
  const some = createAddressPolicy({ allowPrivate: false, allowedCidrs: ['10.1.2.0/24', 'fd00:1::/32', '192.168.7.7'] });
  t.ok(some('10.1.2.99'));
  t.notOk(some('10.1.3.1'));
  t.ok(some('fd00:1::5'));
  t.notOk(some('fd00:2::5'));
  t.ok(some('192.168.7.7'));
  t.notOk(some('192.168.7.8'));
  t.notOk(some('127.0.0.1'));
});

t.test('CIDR parsing', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  t.same(parseCidr('::1'), { address: '::1', prefix: 128, family: 'ipv6' });
  t.throws(() => parseCidr('10.0.0.0/33'));
  t.throws(() => parseCidr('example.com/8'));
  t.throws(() => parseCidr('10.0.0.0/x'));
});
