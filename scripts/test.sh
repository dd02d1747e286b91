#!/usr/bin/env bash
# Every test: unit tests and end-to-end tests against a real Docker Engine, the BuildKit test
# image and a real registry. Sets up a fresh Debian machine first (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-images
cargo build --workspace --bins --locked
cargo test --workspace --locked
