#!/usr/bin/env bash
# Fetches a real buildx for the tests: docker-buildx from Debian sid, downloaded through the private
# apt state (scripts/private-apt.sh; nothing is installed into the system) and extracted to
# target/buildx/docker-buildx. The tests link it into each test user's own docker CLI plugin
# folder. Skipped when it is there and runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=target/buildx
if [ -x "$DEST/docker-buildx" ] && "$DEST/docker-buildx" version >/dev/null 2>&1; then
  echo "buildx is present: $("$DEST/docker-buildx" version)"
  exit 0
fi
# shellcheck source=scripts/private-apt.sh
source scripts/private-apt.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${APT_OPTIONS[@]}" -q download docker-buildx/sid)
dpkg -x "$work"/docker-buildx_*.deb "$work/root"
mkdir -p "$DEST"
install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-buildx" "$DEST/docker-buildx"
echo "buildx fetched: $("$DEST/docker-buildx" version)"
