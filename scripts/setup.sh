#!/usr/bin/env bash
# Prepares a Debian machine for Assemble Backend: Debian packages, a running Docker Engine, and
# (with --test-images) the BuildKit and socat test images. Everything already there is skipped.
# Usage: scripts/setup.sh [--test-images]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup: $*" >&2; }

PACKAGES=(docker.io docker-registry bc curl python3 ca-certificates)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

command -v cargo >/dev/null || { log "cargo is missing: install Rust (https://rustup.rs) and run again"; exit 1; }

# The engine: start dockerd in the background when the socket does not answer.
if ! docker version >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    log "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd"; exit 1
  fi
  log "starting dockerd (log: /var/log/assemble-dockerd.log)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO sh -c 'setsid nohup dockerd >/var/log/assemble-dockerd.log 2>&1 < /dev/null &'
  for _ in $(seq 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/assemble-dockerd.log"; exit 1; }
fi

if [ "${1:-}" = "--test-images" ]; then
  # No registry is reachable here: the BuildKit and socat images are built from Debian packages.
  bash scripts/build-buildkit-image.sh
fi
