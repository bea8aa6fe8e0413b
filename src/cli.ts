#!/usr/bin/env node
/**
 * One entry point, one role per process:
 *   node dist/cli.js <ingest|delivery|monitor|start|sink|dlq|config>
 * Roles are loaded lazily so each process only imports what it runs.
 */
const USAGE = `usage: node dist/cli.js <role> [options]

roles:
  start      everything on one machine (private Redis unless REDIS_URL)
  ingest     the HTTP ingest endpoint (POST /i, /ingest.php, /preview)
  delivery   the delivery process (reads Redis, calls endpoints)
  monitor    live dashboard, /metrics, /healthz, /readyz
  redis      the private redis-server in the foreground (for PM2/systemd)
  sink       a local endpoint that prints what it receives (--port 9999)
  dlq        dead letters: list [--json] | replay <id...|--all> | purge <id...|--all>
  partners   partner policies and control: check FILE | list | show | pause | resume | limit
  usage      live size and memory of every Redis key family [--json]
  config     print the effective configuration as JSON (secrets hidden)
`;

/**
 * A command's output piped into a reader that stops early (`dlq list | head`)
 * closes the pipe: without a listener, the EPIPE is an unhandled 'error'
 * event and the command dies with a stack trace. Output nobody reads is
 * dropped and the command finishes what it was doing (a replay or purge
 * that prints as it goes is not cut short between pages). Commands only:
 * the roles' own stdout is their log.
 */
function dropOutputOnClosedPipe(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
}

async function main(argv: string[]): Promise<void> {
  const [role, ...rest] = argv;
  if (role === 'dlq' || role === 'partners' || role === 'usage' || role === 'config') dropOutputOnClosedPipe();
  switch (role) {
    case 'ingest':
      return (await import('./ingest/main.js')).runIngest();
    case 'delivery':
      return (await import('./delivery/main.js')).runDelivery();
    case 'monitor':
      return (await import('./monitor/main.js')).runMonitor();
    case 'start':
      return (await import('./start/main.js')).runStart();
    case 'sink':
      return (await import('./sink/main.js')).runSink(rest);
    case 'redis':
      return (await import('./start/redis-role.js')).runRedisRole();
    case 'dlq':
      return (await import('./dlq/main.js')).runDlq(rest);
    case 'partners':
      return (await import('./partners/cli.js')).runPartners(rest);
    case 'usage':
      return (await import('./usage/main.js')).runUsage(rest);
    case 'config': {
      const { loadConfig } = await import('./config/index.js');
      const { redactConfig } = await import('./config/redact.js');
      process.stdout.write(`${JSON.stringify(redactConfig(loadConfig()), null, 2)}\n`);
      return;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`unknown role "${role}"\n${USAGE}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`postback-delivery: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
