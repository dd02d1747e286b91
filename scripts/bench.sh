#!/usr/bin/env bash
# Benchmarks, side by side with the alternatives in one run (see docs/benchmarks.md).
# So far: the host-port relay (throughput, 100 streams, connection cost) against the direct path
# and a socat sidecar. Needs root (nsenter into the backend's network namespace) and the test images.
# Usage: scripts/bench.sh [--gib N] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-images
cargo build --release --locked -p assemble-bench
exec target/release/assemble-bench relay "$@"
