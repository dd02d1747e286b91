#!/usr/bin/env bash
# Prepares a Debian machine for Assemble Backend. Everything already there is skipped.
#   scripts/setup.sh [--app] [--ui-tests] [--test-images]
#   (always)       Debian packages for the engine and CLI, a running Docker Engine
#   --app          the packages Tauri needs to build the tray app
#   --ui-tests     Xvfb, WebKitWebDriver, D-Bus, tauri-driver, and a Python venv with selenium
#   --test-images  the BuildKit and socat images, built from Debian packages (no registry here),
#                  openssl and openssh for the engine tests, and buildx from Debian sid for the
#                  builder tests (target/buildx/docker-buildx, never installed into the system)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup: $*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

PACKAGES=(docker.io docker-registry bc curl iproute2 python3 python3-venv ca-certificates)
# The engine tests: TLS certificates (openssl) and an engine reached over ssh (a private sshd).
ENGINE_TEST_PACKAGES=(openssl openssh-client openssh-server)
APP=0; UI=0; IMAGES=0
for arg in "$@"; do
  case $arg in
    --app) APP=1 ;;
    --ui-tests) UI=1; APP=1 ;;
    --test-images) IMAGES=1; PACKAGES+=("${ENGINE_TEST_PACKAGES[@]}") ;;
    *) log "unknown option $arg"; exit 2 ;;
  esac
done
[ $APP = 1 ] && PACKAGES+=(build-essential pkg-config file libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev)
[ $UI = 1 ] && PACKAGES+=(xvfb xauth x11-utils imagemagick webkit2gtk-driver dbus-x11 at-spi2-core)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
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
  $SUDO sh -c 'setsid nohup dockerd >/var/log/assemble-dockerd.log 2>&1 < /dev/null &'
  for _ in $(seq 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/assemble-dockerd.log"; exit 1; }
fi

if [ $UI = 1 ]; then
  if ! command -v tauri-driver >/dev/null && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
    log "installing tauri-driver"
    cargo install tauri-driver --version 2.1.0 --locked
  fi
  VENV=target/ui-venv
  if [ ! -x "$VENV/bin/python" ] || ! cmp -s tests/ui/requirements.txt "$VENV/requirements.txt"; then
    log "making the UI test venv ($VENV)"
    mkdir -p target
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r tests/ui/requirements.txt
    cp tests/ui/requirements.txt "$VENV/requirements.txt"
  fi
fi

if [ $IMAGES = 1 ]; then
  bash scripts/build-buildkit-image.sh
  bash scripts/fetch-buildx.sh
fi
