#!/usr/bin/env bash
# Installs postback-delivery as systemd services that start on boot.
# Idempotent: run it again after an upgrade; it rewrites the units, keeps the
# environment file and the Redis password.
#
#   sudo scripts/install-service.sh [--user postback] [--no-start]
#
# What it writes (paths can be moved for tests with the flags below):
#   /etc/systemd/system/postback-redis.service     private Redis: 127.0.0.1, REDIS_PORT (6380),
#                                                 password, AOF, noeviction (our `redis` role)
#   /etc/systemd/system/postback-ingest.service    node dist/cli.js ingest
#   /etc/systemd/system/postback-delivery.service  node dist/cli.js delivery
#   /etc/systemd/system/postback-monitor.service   node dist/cli.js monitor
#   /etc/systemd/system/postback-delivery.target   all of them: systemctl start|stop|status postback-delivery.target
#   /etc/postback-delivery/env                     the settings (README, Configuration), kept if present
#   /etc/postback-delivery/ingest.tokens           the generated ingest token (0600, the service user's),
#                                                 written with a new env file, which names it
#
# Why native units rather than `pm2 startup`: each role is restarted on its
# own, the roles start after Redis and stop before it, logs go to journald
# (journalctl -u postback-delivery), and stop timeouts are explicit. Use PM2
# instead when you want ingest in cluster mode on one port (see
# docs/OPERATIONS.md): `npx pm2 start ecosystem.config.cjs && npx pm2 save &&
# npx pm2 startup`.
#
# Flags:
#   --user NAME       run the roles as NAME (default: postback, created as a system user)
#   --app-dir DIR     where the built app lives (default: this checkout)
#   --unit-dir DIR    where to write units (default: /etc/systemd/system)
#   --env-dir DIR     where the env file and password go (default: /etc/postback-delivery)
#   --data-dir DIR    Redis data (default: /var/lib/postback-delivery)
#   --log-dir DIR     logs (default: /var/log/postback-delivery)
#   --no-start        write files only; do not create the user or call systemctl
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
user=postback
app_dir=$here
unit_dir=/etc/systemd/system
env_dir=/etc/postback-delivery
data_dir=/var/lib/postback-delivery
log_dir=/var/log/postback-delivery
start=1

while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=$2; shift 2 ;;
    --app-dir) app_dir=$(cd "$2" && pwd); shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --env-dir) env_dir=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --log-dir) log_dir=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "install-service: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'install-service: %s\n' "$*"; }

node_bin=$(command -v node) || { say "node not found in PATH"; exit 1; }
[ -f "$app_dir/dist/cli.js" ] || { say "$app_dir/dist/cli.js is missing: run npm run setup first"; exit 1; }

if [ "$start" -eq 1 ] && ! id -u "$user" >/dev/null 2>&1; then
  say "creating system user $user"
  useradd --system --home-dir "$data_dir" --shell /usr/sbin/nologin "$user"
fi

mkdir -p "$unit_dir" "$env_dir" "$data_dir/redis" "$log_dir"
if [ "$start" -eq 1 ]; then chown -R "$user" "$data_dir" "$log_dir"; fi

env_file=$env_dir/env
token_file=$env_dir/ingest.tokens
if [ ! -f "$env_file" ]; then
  say "writing $env_file (ingest listens on every interface and requires the bearer token in $token_file)"
  # An ingest other machines reach acts only with credentials: a token is
  # generated, never printed, into a file of its own (INGEST_TOKENS_FILE),
  # so it is not in the roles' environment (/proc/<pid>/environ).
  if [ ! -f "$token_file" ]; then
    (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > "$token_file"; echo >> "$token_file")
  fi
  (umask 027; cat > "$env_file" <<ENV
# postback-delivery settings (README, Configuration). Restart after editing:
#   systemctl restart postback-delivery.target
# Leave REDIS_URL unset to use the private Redis of postback-redis.service.
# Any secret here (INGEST_TOKENS, ADMIN_TOKENS, SIGNING_SECRET, REDIS_URL,
# REDIS_SENTINEL_PASSWORD; not REDIS_PASSWORD) may instead be read from a
# file that only the service can read: <NAME>_FILE=/path (README,
# Security); then it is not in the processes' environment.
# REDIS_PASSWORD_FILE below is the private Redis's password file, ignored
# with REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS.
REDIS_PORT=6380
REDIS_DIR=$data_dir/redis
REDIS_PASSWORD_FILE=$env_dir/redis.password
REDIS_APPENDFSYNC=everysec
LOG_DIR=$log_dir
INGEST_HOST=0.0.0.0
INGEST_PORT=8080
# Clients send Authorization: Bearer <a token of this file> (a comma list;
# rotate by adding, then removing; restart ingest after editing it).
INGEST_TOKENS_FILE=$token_file
# The dashboard and /metrics (monitor, delivery): this machine only. For a
# Prometheus elsewhere set an internal address (or 0.0.0.0); they show
# partner names and volumes. Pausing partners through the monitor also
# needs ADMIN_TOKENS.
MONITOR_HOST=127.0.0.1
MONITOR_PORT=9090
DELIVERY_METRICS_PORT=9091
ENV
)
  chmod 0640 "$env_file"
else
  say "keeping $env_file"
fi
if [ "$start" -eq 1 ]; then chown "root:$user" "$env_file" 2>/dev/null || true; fi
if [ -f "$token_file" ]; then
  chmod 0600 "$token_file"
  if [ "$start" -eq 1 ]; then chown "$user" "$token_file"; fi
fi

# The private Redis password: generated once, readable by the service user only.
password_file=$env_dir/redis.password
if [ ! -f "$password_file" ]; then
  (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > "$password_file"; echo >> "$password_file")
  say "generated $password_file"
fi
chmod 0600 "$password_file"
if [ "$start" -eq 1 ]; then chown "$user" "$password_file"; fi

common() { # $1 description, $2 role
  cat <<UNIT
[Unit]
Description=$1
Documentation=file://$app_dir/docs/OPERATIONS.md
PartOf=postback-delivery.target
UNIT
}

service() { # $1 role, $2 stop timeout (s)
  cat <<UNIT

[Service]
Type=simple
User=$user
WorkingDirectory=$app_dir
EnvironmentFile=$env_file
Environment=NODE_ENV=production
$( [ "$1" = redis ] && echo '# Skipped (not failed) when the env file names another Redis: the roles use that one ($$: a literal $ for sh).' && echo "ExecCondition=/bin/sh -c 'test -z \"\$\$REDIS_URL\$\$REDIS_URL_FILE\$\$REDIS_CLUSTER_NODES\$\$REDIS_SENTINELS\"'" )
ExecStart=$node_bin $app_dir/dist/cli.js $1
$( [ "$1" = redis ] || printf '%s\n' '# systemctl reload: partner policies read again, log files reopened (logrotate).' 'ExecReload=/bin/kill -HUP $MAINPID' )
KillSignal=SIGTERM
TimeoutStopSec=$2
Restart=always
RestartSec=2
LimitNOFILE=65536
NoNewPrivileges=true
ProtectSystem=full
PrivateTmp=true
ReadWritePaths=$data_dir $log_dir

[Install]
WantedBy=postback-delivery.target
UNIT
}

write() { # $1 file; content on stdin
  local tmp
  tmp=$(mktemp)
  cat > "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; say "unchanged $1"; else mv "$tmp" "$1"; chmod 0644 "$1"; say "wrote $1"; fi
}

{ common "postback-delivery: private Redis (127.0.0.1, AOF, password)" redis; echo "After=network.target"; service redis 15; } \
  | write "$unit_dir/postback-redis.service"
# Stop timeout: 5 s above SHUTDOWN_TIMEOUT_MS (the graceful bound; 15 s unless
# the env file sets it), so systemd never cuts a graceful shutdown short.
# After raising SHUTDOWN_TIMEOUT_MS in the env file, run this script again.
shutdown_ms=$(sed -n 's/^SHUTDOWN_TIMEOUT_MS=\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$env_file" | tail -n 1)
stop_s=$(( (${shutdown_ms:-15000} + 999) / 1000 + 5 ))
for role in ingest delivery monitor; do
  # The roles start after Redis and stop before it; they wait for it if it is slow.
  { common "postback-delivery: $role" "$role"; echo "After=network-online.target postback-redis.service"; echo "Wants=network-online.target postback-redis.service"; service "$role" "$stop_s"; } \
    | write "$unit_dir/postback-$role.service"
done
write "$unit_dir/postback-delivery.target" <<UNIT
[Unit]
Description=postback-delivery (Redis, ingest, delivery, monitor)
Documentation=file://$app_dir/docs/OPERATIONS.md
Wants=postback-redis.service postback-ingest.service postback-delivery.service postback-monitor.service

[Install]
WantedBy=multi-user.target
UNIT

if [ "$start" -eq 1 ]; then
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable postback-redis.service postback-ingest.service postback-delivery.service postback-monitor.service postback-delivery.target
    systemctl restart postback-delivery.target
    say "running: systemctl status postback-delivery.target; logs: journalctl -u 'postback-*' -f"
  else
    say "systemd is not running here: units written, nothing started"
  fi
else
  say "--no-start: files written, nothing enabled"
fi
