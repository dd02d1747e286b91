#!/usr/bin/env bash
# App benchmark of the release build: memory and idle CPU of all the app's processes (tray only,
# panel open), cold start to the tray and to the panel, and the log viewer with 1,000,000 lines.
# Runs the real app under Xvfb with a private D-Bus session and our tray watcher (tests/ui/sni.py),
# against a backend of its own (user "benchapp"). Figures: a table, and target/bench-app.json.
# Usage: scripts/bench-app.sh [--parts footprint,logs,builds] [--idle S] [--cold-runs N] [--log-runs N]
#        [--lines N] [--build-runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-images --ui-tests
export PATH="$HOME/.cargo/bin:$PATH"
unset DOCKER_HOST  # the local engine only
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in tests/ui
cargo build --release --locked -p assemble-app -p assemble-cli
exec xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- target/ui-venv/bin/python tests/ui/bench_app.py "$@"
