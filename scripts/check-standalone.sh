#!/usr/bin/env bash
# The project stands alone: a user's clone has nothing beside it. Fails,
# naming each file and line, when a tracked file reaches outside the
# repository: the reference folder of shared material that sits beside the
# development checkout, or a relative path that climbs three or more levels
# (no file here is deeper than two, counting dist/). Run by .ci/run before
# the suite.
set -uo pipefail
cd "$(dirname "$0")/.."

hits=$(git grep -nE -e '\.\./shared' -e '(\.\./){3,}' -- . ':!scripts/check-standalone.sh' ':!bench/results/*.json' ':!package-lock.json')
if [ -n "$hits" ]; then
  echo "check-standalone: these lines reach outside the repository (a user's clone has nothing beside it):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "check-standalone: no path outside the repository"
