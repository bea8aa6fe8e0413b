#!/usr/bin/env bash
# The project stands alone: see scripts/check-standalone.mjs (what counts as
# reaching outside the repository). Run by .ci/run before the suite.
set -euo pipefail
exec node "$(dirname "$0")/check-standalone.mjs"
