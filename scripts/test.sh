#!/usr/bin/env bash
# The project's test command (README "Set up"): installs what the tests need
# beyond Rust (moto for a local S3 server; pyiceberg, polars and daft as
# independent Iceberg readers, tests/pyiceberg_reader.rs and
# tests/other_readers.rs), checks that the library builds without the
# `demo` feature, then runs every test. Installs only what is not
# importable yet; idempotent, safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${LAKEHOUSE_PYTHON:-python3}"
if ! "$PYTHON" -c "import moto.server, pyiceberg, pyarrow, polars, daft" 2>/dev/null; then
  echo "==> installing Python test dependencies (moto[server], pyiceberg[pyarrow], polars, daft)"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check \
    "moto[server]" "pyiceberg[pyarrow]" polars daft
fi

echo "==> cargo check --lib --no-default-features (the library without the demo source and benchmarks)"
nice -n 19 cargo check --lib --no-default-features

echo "==> cargo test"
cargo test "$@"
