// PM2: one app per role. `npx pm2 start ecosystem.config.cjs`
// Roles read their settings from the environment (see README, Configuration);
// set REDIS_URL to the Redis they share.
const KILL_TIMEOUT_MS = 20_000; // above SHUTDOWN_TIMEOUT_MS (15 s): PM2 never cuts a graceful stop short

const common = {
  script: 'dist/cli.js',
  cwd: __dirname,
  wait_ready: true, // each role sends 'ready' once listening and connected to Redis
  listen_timeout: 30_000,
  kill_timeout: KILL_TIMEOUT_MS,
  max_memory_restart: '1G',
  merge_logs: true,
  time: false,
};

module.exports = {
  apps: [
    {
      ...common,
      name: 'postback-ingest',
      args: 'ingest',
      exec_mode: 'cluster',
      instances: process.env.INGEST_INSTANCES || 'max',
    },
    {
      ...common,
      name: 'postback-delivery',
      args: 'delivery',
      exec_mode: 'fork', // it runs its own worker threads
      instances: 1,
    },
    {
      ...common,
      name: 'postback-monitor',
      args: 'monitor',
      exec_mode: 'fork',
      instances: 1,
      max_memory_restart: '256M',
    },
  ],
};
