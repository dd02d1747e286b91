#!/usr/bin/env bash
# Fetches Debian's static busybox for foreign architectures, for the tests' emulated builds (a
# `FROM scratch` image with it runs `RUN uname -m` as linux/arm64 through the backend's qemu):
# busybox-static:<arch> of this system's Debian release, downloaded through a private apt state
# with APT::Architecture=<arch> (its own lists and cache; the mirror is the system's own) and
# extracted with dpkg -x. Nothing is installed. Puts target/foreign/busybox-<arch>.
# Usage: scripts/fetch-foreign-busybox.sh [ARCH…]   (Debian's names; default: arm64)
# Skipped for an architecture whose busybox is there.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=target/foreign
[ $# -gt 0 ] || set -- arm64
RELEASE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mkdir -p "$DEST"
for arch in "$@"; do
  if [ -s "$DEST/busybox-$arch" ]; then
    echo "busybox for $arch is present: $DEST/busybox-$arch"
    continue
  fi
  A=${TMPDIR:-/tmp}/assemble-apt-$arch
  if [ ! -f "$A/etc/sources.list" ]; then
    mkdir -p "$A/etc" "$A/lists/partial" "$A/cache/archives/partial"
    # shellcheck source=scripts/debian-mirror.sh
    source scripts/debian-mirror.sh
    echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $RELEASE main" > "$A/etc/sources.list.new"
  fi
  O=(-oAPT::Architecture="$arch" -oAPT::Architectures="$arch" -oDir::State::Lists="$A/lists"
     -oDir::Etc::SourceList="$A/etc/sources.list" -oDir::Etc::SourceParts=/dev/null -oDir::Cache="$A/cache"
     -oDir::State::Status=/dev/null -oAPT::Sandbox::User=root)
  if [ -f "$A/etc/sources.list.new" ]; then
    apt-get "${O[@]}" -oDir::Etc::SourceList="$A/etc/sources.list.new" -q update >/dev/null
    mv "$A/etc/sources.list.new" "$A/etc/sources.list"   # only an updated state counts as made
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get "${O[@]}" -q download "busybox-static:$arch" >/dev/null)
  dpkg -x "$work"/busybox-static_*.deb "$work/root"
  install -m 0755 "$work/root/bin/busybox" "$DEST/busybox-$arch"
  rm -rf "$work"
  echo "busybox for $arch fetched: $DEST/busybox-$arch ($RELEASE)"
done
