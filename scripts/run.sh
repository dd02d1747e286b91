#!/usr/bin/env bash
# Builds the `assemble` CLI, makes sure Docker runs and the backend image is there (pulled, or,
# where no registry answers, built locally from Debian packages), then runs `assemble ARGS`
# (default: `backend start`).
# Usage: scripts/run.sh [assemble arguments…]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p assemble-cli
BIN=$PWD/target/release/assemble

PINNED=moby/buildkit:v0.25.1
LOCAL=assemble-buildkit:v0.25-debian
if [ -z "${ASSEMBLE_BACKEND_IMAGE:-}" ]; then
  if docker image inspect "$PINNED" >/dev/null 2>&1 || docker pull "$PINNED" >/dev/null 2>&1; then
    export ASSEMBLE_BACKEND_IMAGE=$PINNED
  else
    echo "run: $PINNED cannot be pulled here; using a BuildKit image built from Debian packages ($LOCAL)" >&2
    bash scripts/build-buildkit-image.sh
    export ASSEMBLE_BACKEND_IMAGE=$LOCAL
  fi
fi
echo "run: $BIN (backend image $ASSEMBLE_BACKEND_IMAGE)" >&2
[ $# -gt 0 ] || set -- backend start
exec "$BIN" "$@"
