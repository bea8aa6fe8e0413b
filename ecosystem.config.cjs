// PM2: one app per role. From a fresh `npm run setup`:
//   npx pm2 start ecosystem.config.cjs      (then: npx pm2 save && npx pm2 startup)
// Settings come from the environment PM2 starts with (see README,
// Configuration) plus the per-role `env` below. Without REDIS_URL (or REDIS_URL_FILE),
// REDIS_CLUSTER_NODES or REDIS_SENTINELS a private redis-server runs as the `postback-redis` app (127.0.0.1:REDIS_PORT,
// password generated into ./var/redis.password, AOF in ./var/redis).
// Secrets: PM2 keeps every app's environment (`pm2 env`, and `pm2 save`
// writes it to ~/.pm2/dump.pm2), so give them as files instead:
// INGEST_TOKENS_FILE=/path rather than INGEST_TOKENS=... (each secret has
// its <NAME>_FILE: README, Security); only the path is then kept.
//
// Shutdown: every role stops gracefully within SHUTDOWN_TIMEOUT_MS (15 s by
// default); kill_timeout (5 s above it) sits above it so PM2 never cuts that short.
const path = require('node:path');

// 5 s above SHUTDOWN_TIMEOUT_MS (15 s by default), read from the environment PM2 starts with.
const KILL_TIMEOUT_MS = (Number(process.env.SHUTDOWN_TIMEOUT_MS) || 15_000) + 5_000;
const pm2Logs = path.join(path.resolve(__dirname, process.env.LOG_DIR || 'var/log'), 'pm2');
const logs = (name) => ({
  out_file: path.join(pm2Logs, `${name}.out.log`),
  error_file: path.join(pm2Logs, `${name}.err.log`),
  merge_logs: true,
});

const common = {
  script: 'dist/cli.js',
  cwd: __dirname,
  wait_ready: true, // each role sends 'ready' once listening and connected to Redis
  listen_timeout: 30_000,
  kill_timeout: KILL_TIMEOUT_MS,
  autorestart: true,
  exp_backoff_restart_delay: 200,
};

// REDIS_URL_FILE names another Redis as surely as REDIS_URL (a secret read from a file: README, Security).
const usePrivateRedis = !process.env.REDIS_URL && !process.env.REDIS_URL_FILE && !process.env.REDIS_CLUSTER_NODES && !process.env.REDIS_SENTINELS;

module.exports = {
  apps: [
    ...(usePrivateRedis
      ? [
          {
            ...common,
            ...logs('redis'),
            name: 'postback-redis',
            args: 'redis',
            exec_mode: 'fork',
            instances: 1,
          },
        ]
      : []),
    {
      ...common,
      ...logs('ingest'),
      name: 'postback-ingest',
      args: 'ingest',
      exec_mode: 'cluster', // workers share INGEST_PORT
      instances: process.env.INGEST_INSTANCES || 'max',
      max_memory_restart: '512M',
      env: { NODE_ENV: 'production' },
    },
    {
      ...common,
      ...logs('delivery'),
      name: 'postback-delivery',
      args: 'delivery',
      exec_mode: 'fork', // it runs its own worker threads (DELIVERY_WORKERS)
      instances: 1,
      max_memory_restart: '1G',
      env: { NODE_ENV: 'production' },
    },
    {
      ...common,
      ...logs('monitor'),
      name: 'postback-monitor',
      args: 'monitor',
      exec_mode: 'fork',
      instances: 1,
      max_memory_restart: '256M',
      env: { NODE_ENV: 'production' },
    },
  ],
};
