#!/usr/bin/env bash
# Every test: unit tests, end-to-end tests of the engine and CLI against a real Docker Engine, the
# BuildKit test image and a real registry, and end-to-end tests of the real app window under Xvfb
# (tauri-driver + WebKitWebDriver, tray driven over D-Bus), then a short chaos soak. Sets up a fresh
# Debian machine first. Says how long each stage took, at the end, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

TIMES=()
stage() {
  local name=$1 began=$SECONDS; shift
  echo "test: ── $name" >&2
  "$@"
  TIMES+=("$(printf '%-8s %4ds' "$name" $((SECONDS - began)))")
}
report() {
  local status=$?
  echo "test: stage times (total ${SECONDS}s):" >&2
  for line in "${TIMES[@]}"; do echo "test:   $line" >&2; done
  [ $status = 0 ] || echo "test: FAILED (exit $status) after the stages above" >&2
}
trap report EXIT

# A one-off build never reuses incremental state, and it is a third of target/ on disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# A first build needs room: say so before a compiler dies of a full disk half way through.
if [ ! -x target/debug/assemble ]; then
  need_gb=12
  free_gb=$(df -BG --output=avail . | tail -n 1 | tr -dc 0-9)
  if [ "$free_gb" -lt "$need_gb" ]; then
    echo "test: the build and the tests need about ${need_gb} GB free on $(df --output=target . | tail -n 1), and it has ${free_gb} GB." >&2
    echo "test: free some space (old clones' target/ folders, 'docker system prune' for what you no longer need), then run this again." >&2
    exit 1
  fi
fi

stage set-up bash scripts/setup.sh --ui-tests --engine-tests
stage images bash scripts/setup.sh --test-images
stage build cargo build --workspace --bins --locked
# Under Xvfb: the app's run_app test builds the whole app, tray menu (GTK) included, on Tauri's mock runtime.
stage unit xvfb-run -a cargo test --workspace --exclude assemble-e2e --locked
stage e2e cargo test -p assemble-e2e --locked
rm -rf target/ui-screenshots
stage UI xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- \
  target/ui-venv/bin/python -m pytest tests/ui -v -p no:cacheprovider
echo "UI screenshots: target/ui-screenshots/"
# The chaos soak, short: every kind of operation and fault at least once (dockerd restart included,
# on the soak's own engine; a node on a second dockerd of its own), invariants after each. `target/debug/assemble-soak --ops 1000` on demand.
stage soak target/debug/assemble-soak --ops 35 --seed 1
