#!/usr/bin/env bash
# The project's test command (README "Set up"): installs what the tests need
# beyond Rust (moto for a local S3 server, pyiceberg as an independent Iceberg
# reader), then runs every test. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${LAKEHOUSE_PYTHON:-python3}"
if ! "$PYTHON" -c "import moto.server, pyiceberg, pyarrow" 2>/dev/null; then
  echo "==> installing Python test dependencies (moto[server], pyiceberg[pyarrow])"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "moto[server]" "pyiceberg[pyarrow]"
fi

echo "==> cargo test"
cargo test "$@"
