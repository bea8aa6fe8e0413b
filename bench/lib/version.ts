/** The User-Agent the service sends (`postback-delivery/<version>`), for baselines to send the same bytes. */
import { packageJson } from './repo.js';

export function packageUserAgent(): string {
  const pkg = packageJson();
  return `${pkg.name}/${pkg.version}`;
}
