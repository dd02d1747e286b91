#!/usr/bin/env bash
# Builds and starts the Assemble Backend tray app (or, with `cli`, runs the CLI), after making
# sure Docker runs and the backend image is there: pulled, or, where no registry answers, built
# locally from Debian packages.
# Usage: scripts/run.sh                 the app (tray + panel)
#        scripts/run.sh cli [ARGS…]     `assemble ARGS` (default: backend start)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=app
if [ "${1:-}" = cli ]; then MODE=cli; shift; fi
if [ $MODE = app ]; then bash scripts/setup.sh --app --buildx; else bash scripts/setup.sh --buildx; fi

PINNED=moby/buildkit:v0.25.1
LOCAL=assemble-buildkit:v0.25-debian-qemu
if [ -z "${ASSEMBLE_BACKEND_IMAGE:-}" ]; then
  if docker image inspect "$PINNED" >/dev/null 2>&1 || docker pull "$PINNED" >/dev/null 2>&1; then
    export ASSEMBLE_BACKEND_IMAGE=$PINNED
  else
    echo "run: $PINNED cannot be pulled here; using a BuildKit image built from Debian packages ($LOCAL)" >&2
    bash scripts/build-buildkit-image.sh
    export ASSEMBLE_BACKEND_IMAGE=$LOCAL
  fi
fi

if [ $MODE = cli ]; then
  cargo build --release --locked -p assemble-cli
  [ $# -gt 0 ] || set -- backend start
  exec target/release/assemble "$@"
fi
cargo build --release --locked -p assemble-app
echo "run: starting the app (backend image $ASSEMBLE_BACKEND_IMAGE)" >&2
exec target/release/assemble-backend "$@"
