#!/usr/bin/env bash
# Runs rkube's whole test suite exactly as CI does: installs what the build and the tests
# need, then checks formatting and lints, then runs every test in the workspace (unit,
# storage conformance against SQLite, etcd and memory, durability, faults, end to end).
# Run it as root: some tests mount filesystems.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages
ensure_rust

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
