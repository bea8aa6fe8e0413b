import t from 'tap';
import { fdWarning, filesNeeded, openFilesLimit } from '../../src/delivery/fd-limit.js';

t.test('the open-file limit, read and judged', async (t) => {
  const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            ${soft}                20000                files\n`;
  t.equal(openFilesLimit(limits('1024')), 1024);
  t.equal(openFilesLimit(limits('unlimited')), null);
  t.equal(openFilesLimit('garbage'), null);
  t.equal(filesNeeded(1024), 2304);
  t.match(fdWarning(1024, 1024), /open-file limit \(1024\) is below what delivery may need at DELIVERY_CONCURRENCY 1024 \(2304\)/);
  t.equal(fdWarning(65536, 1024), null);
  t.equal(fdWarning(null, 1024), null);
  t.equal(fdWarning(1024, 100), null, 'a small concurrency fits');
});
