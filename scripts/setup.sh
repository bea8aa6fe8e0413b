#!/usr/bin/env bash
# npm run setup: installs what is missing and builds. Idempotent.
#  1. redis-server (>= 6.2, for XAUTOCLAIM) from the OS package manager:
#     apt-get, dnf or brew, whichever this machine has;
#  2. npm dependencies with `npm ci` (skipped when node_modules already
#     matches package-lock.json);
#  3. the TypeScript build (dist/).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root for: $*"; return 1; fi
}

redis_ok() {
  command -v redis-server >/dev/null 2>&1 || return 1
  local v
  v=$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  set -- $v
  [ "${1:-0}" -gt 6 ] || { [ "${1:-0}" -eq 6 ] && [ "${2:-0}" -ge 2 ]; }
}

if redis_ok; then
  say "redis-server present: $(redis-server --version | awk '{print $3}')"
else
  say "installing redis-server"
  if command -v apt-get >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  elif command -v dnf >/dev/null 2>&1; then
    as_root dnf install -y redis
  elif command -v brew >/dev/null 2>&1; then
    brew install redis
  else
    say "no apt-get, dnf or brew here: install redis-server 6.2 or newer yourself, then run this again"
    exit 1
  fi
  redis_ok || { say "redis-server is still missing or older than 6.2"; exit 1; }
fi

lock_hash() { node -e 'const c=require("crypto");process.stdout.write(c.createHash("sha1").update(require("fs").readFileSync(process.argv[1])).digest("hex"))' "$1"; }
stamp=node_modules/.setup-lock-hash
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(lock_hash package-lock.json)" ]; then
  say "npm dependencies up to date"
else
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
  lock_hash package-lock.json > "$stamp"
fi

say "building"
npm run build --silent
say "done: npm start runs everything, npm test runs the suite"
