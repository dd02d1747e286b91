#!/usr/bin/env bash
# Every test: unit tests, end-to-end tests of the engine and CLI against a real Docker Engine, the
# BuildKit test image and a real registry, and end-to-end tests of the real app window under Xvfb
# (tauri-driver + WebKitWebDriver, tray driven over D-Bus), then a short chaos soak. Sets up a fresh
# Debian machine first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-images --ui-tests
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --workspace --bins --locked
# Under Xvfb: the app's run_app test builds the whole app, tray menu (GTK) included, on Tauri's mock runtime.
xvfb-run -a cargo test --workspace --locked
rm -rf target/ui-screenshots
xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- target/ui-venv/bin/python -m pytest tests/ui -v -p no:cacheprovider
echo "UI screenshots: target/ui-screenshots/"
# The chaos soak, short: every kind of operation and fault at least once (dockerd restart included,
# on the soak's own engine), invariants after each. `target/debug/assemble-soak --ops 1000` on demand.
target/debug/assemble-soak --ops 40 --seed 1
