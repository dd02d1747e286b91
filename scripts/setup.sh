#!/usr/bin/env bash
# Prepares a Debian machine for Assemble Backend. Everything already there is skipped.
#   scripts/setup.sh [--app] [--ui-tests] [--engine-tests] [--test-images] [--buildx]
#   (always)        Debian packages for the engine and CLI, a running Docker Engine
#   --app           the packages Tauri needs to build the tray app
#   --ui-tests      Xvfb, WebKitWebDriver, D-Bus, tauri-driver, and a Python venv with selenium
#   --engine-tests  openssl and openssh for the engine tests (TLS, ssh)
#   --test-images   the BuildKit and socat images, built from Debian packages (no registry here),
#                   and the rootless BuildKit image made from them (rootlesskit, uidmap),
#                   and buildx from Debian sid for the builder tests (target/buildx/docker-buildx,
#                   never installed into the system), and Debian's static busybox for arm64 for the
#                   emulated builds (target/foreign/busybox-arm64, never installed); implies --engine-tests
#   --buildx        docker buildx for the user: Debian's docker-buildx where this release has it,
#                   else a sentence that says how to get it
# Packages are installed without their recommendations (none of them is needed here); each step
# says how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup: $*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
# Runs a step and says how long it took.
step() { local name=$1 began=$SECONDS; shift; "$@"; log "$name took $((SECONDS - began))s"; }

PACKAGES=(docker.io docker-registry bc curl iproute2 iptables python3 python3-venv ca-certificates)
# A kernel with AppArmor makes dockerd load its profile with apparmor_parser (a recommendation of
# docker.io, which --no-install-recommends leaves out).
[ -d /sys/kernel/security/apparmor ] && PACKAGES+=(apparmor)
# The engine tests: TLS certificates (openssl) and an engine reached over ssh (a private sshd).
ENGINE_TEST_PACKAGES=(openssl openssh-client openssh-server)
APP=0; UI=0; IMAGES=0; BUILDX=0
for arg in "$@"; do
  case $arg in
    --app) APP=1 ;;
    --ui-tests) UI=1; APP=1 ;;
    --engine-tests) PACKAGES+=("${ENGINE_TEST_PACKAGES[@]}") ;;
    --test-images) IMAGES=1; PACKAGES+=("${ENGINE_TEST_PACKAGES[@]}" libcap2-bin) ;;
    --buildx) BUILDX=1 ;;
    *) log "unknown option $arg"; exit 2 ;;
  esac
done
# What WebKitGTK and the tray need at run time beyond their dependencies: Mesa's software renderer
# (WebKit opens EGL even without compositing) and GTK's SVG icon loader.
[ $APP = 1 ] && PACKAGES+=(build-essential pkg-config file libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev libgl1-mesa-dri librsvg2-common)
# x11-utils: xwininfo for the app benchmark; xdotool answers the system's file chooser in the Build
# window's tests; python3-dev is not needed (the venv's wheels are pure).
[ $UI = 1 ] && PACKAGES+=(xvfb xauth x11-utils xdotool webkit2gtk-driver dbus-x11 at-spi2-core)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
}
step "packages" install_packages

command -v cargo >/dev/null || { log "cargo is missing: install Rust (https://rustup.rs) and run again"; exit 1; }

# The engine: start dockerd in the background when the socket does not answer.
start_engine() {
  docker version >/dev/null 2>&1 && return 0
  if [ -n "${DOCKER_HOST:-}" ]; then
    log "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd"; exit 1
  fi
  log "starting dockerd (log: /var/log/assemble-dockerd.log)"
  $SUDO sh -c 'setsid nohup dockerd >/var/log/assemble-dockerd.log 2>&1 < /dev/null &'
  for _ in $(seq 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/assemble-dockerd.log"; exit 1; }
}
step "engine" start_engine

ui_tools() {
  if ! command -v tauri-driver >/dev/null && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
    log "installing tauri-driver"
    cargo install tauri-driver --version 2.1.0 --locked
  fi
  local venv=target/ui-venv
  if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/ui/requirements.txt "$venv/requirements.txt"; then
    log "making the UI test venv ($venv)"
    mkdir -p target
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r tests/ui/requirements.txt
    cp tests/ui/requirements.txt "$venv/requirements.txt"
  fi
}
[ $UI = 1 ] && step "UI tools" ui_tools

if [ $IMAGES = 1 ]; then
  step "BuildKit image" bash scripts/build-buildkit-image.sh
  step "rootless BuildKit image" bash scripts/build-buildkit-rootless-image.sh
  step "buildx for the tests" bash scripts/fetch-buildx.sh
  step "arm64 busybox for the tests" bash scripts/fetch-foreign-busybox.sh arm64
fi

# buildx for the user, so the line `start` prints (docker buildx build --builder assemble .) works.
user_buildx() {
  docker buildx version >/dev/null 2>&1 && return 0
  if apt-cache policy docker-buildx 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    log "installing docker buildx (Debian's docker-buildx)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends docker-buildx
    return 0
  fi
  log "docker buildx is not installed, and this Debian release has no docker-buildx package. \
\`assemble build\` builds without it; for \`docker buildx build --builder assemble\`, install Docker's \
docker-buildx-plugin (https://docs.docker.com/engine/install/debian/) or put a buildx release binary \
at ~/.docker/cli-plugins/docker-buildx (https://github.com/docker/buildx/releases)."
}
[ $BUILDX = 1 ] && user_buildx
exit 0
