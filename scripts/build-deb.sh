#!/usr/bin/env bash
# Builds the Debian package of Assemble Backend: the tray app and the CLI, a desktop entry and the
# app's icons, with dpkg-deb (no tauri-cli). Prints the package's path:
#   target/deb/assemble-backend_<version>_<arch>.deb
# The release binaries come from $CARGO_TARGET_DIR (default target/). Needs what
# `scripts/setup.sh --app` installs (the WebKitGTK and appindicator development packages).
set -euo pipefail

log() { echo "build-deb: $*" >&2; }
die() { log "$*"; exit 1; }

# A relative CARGO_TARGET_DIR means relative to where we were called from.
if [ -n "${CARGO_TARGET_DIR:-}" ] && [ "${CARGO_TARGET_DIR#/}" = "$CARGO_TARGET_DIR" ]; then
  CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
fi
cd "$(dirname "$0")/.."
ROOT=$PWD
BINARIES="${CARGO_TARGET_DIR:-$ROOT/target}/release"
export PATH="$HOME/.cargo/bin:$PATH"

for tool in cargo dpkg-deb dpkg file; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh --app installs what the build needs)"
done

NAME=assemble-backend
# The version of the workspace ([workspace.package] in Cargo.toml), its one source: both binaries
# inherit it, and so does the app's own (tauri.conf.json names none, so Tauri takes the crate's).
VERSION=$(awk '/^\[/ { section = $0 } section == "[workspace.package]" && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)
[ -n "$VERSION" ] || die "no version in [workspace.package] of Cargo.toml"
if grep -q '^  "version"' tauri.conf.json; then
  log "warning: tauri.conf.json names a version; remove it, the version is written once in Cargo.toml"
fi
ARCH=$(dpkg --print-architecture)
MAINTAINER=${DEB_MAINTAINER:-Assemble Backend maintainers <maintainers@users.noreply.h-seed-dbb2f309.example>}
OUT_DIR="$ROOT/target/deb"
DEB="$OUT_DIR/${NAME}_${VERSION}_${ARCH}.deb"
STAGE="$OUT_DIR/${NAME}_${VERSION}_${ARCH}"

log "building the release binaries (cargo build --release, into $BINARIES)"
cargo build --release --locked -p assemble-app -p assemble-cli
for bin in assemble-backend assemble; do
  [ -x "$BINARIES/$bin" ] || die "$BINARIES/$bin is missing after the build"
done

log "assembling $STAGE"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN"
install -D -m 0755 "$BINARIES/assemble-backend" "$STAGE/usr/bin/assemble-backend"
install -D -m 0755 "$BINARIES/assemble" "$STAGE/usr/bin/assemble"
if command -v strip >/dev/null; then
  strip --strip-unneeded "$STAGE/usr/bin/assemble-backend" "$STAGE/usr/bin/assemble"
else
  log "warning: strip is missing (binutils); the binaries keep their symbols"
fi

# The app's icons, each at the size it really has (128x128@2x.png is 256x256).
icons=0
for png in icons/32x32.png icons/128x128.png icons/128x128@2x.png icons/icon.png; do
  [ -f "$png" ] || continue
  size=$(file -b "$png" | sed -n 's/^PNG image data, \([0-9]*\) x \([0-9]*\),.*/\1x\2/p')
  [ -n "$size" ] || die "$png is not a PNG image"
  [ "${size%x*}" = "${size#*x}" ] || die "$png is not square ($size)"
  install -D -m 0644 "$png" "$STAGE/usr/share/icons/hicolor/$size/apps/$NAME.png"
  icons=$((icons + 1))
done
[ $icons -gt 0 ] || die "no app icons in icons/"

mkdir -p "$STAGE/usr/share/applications"
cat > "$STAGE/usr/share/applications/$NAME.desktop" <<'EOF'
[Desktop Entry]
Type=Application
Name=Assemble Backend
Comment=A personal BuildKit backend on the local Docker Engine
Exec=assemble-backend
Icon=assemble-backend
Terminal=false
Categories=Development;
StartupNotify=false
EOF

LICENSE=$(awk '/^\[/ { section = $0 } section == "[workspace.package]" && $1 == "license" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)
mkdir -p "$STAGE/usr/share/doc/$NAME"
cat > "$STAGE/usr/share/doc/$NAME/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $NAME

Files: *
Copyright: Assemble Backend maintainers
License: ${LICENSE:-Apache-2.0}
 On Debian systems the full text is in /usr/share/common-licenses/${LICENSE:-Apache-2.0}.
EOF

# The shared libraries the binaries link, as Debian packages with their minimum versions.
# libayatana-appindicator3 is loaded at run time (dlopen) for the tray, so no tool sees it: named here.
DEPENDS=""
if command -v dpkg-shlibdeps >/dev/null; then
  shlib_dir=$(mktemp -d)
  trap 'rm -rf "$shlib_dir"' EXIT
  mkdir -p "$shlib_dir/debian"
  printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$NAME" "$NAME" > "$shlib_dir/debian/control"
  if shlibs=$(cd "$shlib_dir" && dpkg-shlibdeps -O "$STAGE/usr/bin/assemble-backend" "$STAGE/usr/bin/assemble" 2>"$shlib_dir/err"); then
    DEPENDS=$(sed -n 's/^shlibs:Depends=//p' <<<"$shlibs")
  else
    cat "$shlib_dir/err" >&2
  fi
fi
if [ -z "$DEPENDS" ]; then
  log "warning: dpkg-shlibdeps (dpkg-dev) is missing or failed; using the known list of libraries"
  DEPENDS="libc6, libgcc-s1, libglib2.0-0, libgtk-3-0, libwebkit2gtk-4.1-0, libsoup-3.0-0, libjavascriptcoregtk-4.1-0, libcairo2, libgdk-pixbuf-2.0-0"
fi
DEPENDS="$DEPENDS, libayatana-appindicator3-1"

INSTALLED_SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<EOF
Package: $NAME
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_SIZE
Depends: $DEPENDS
Recommends: docker.io | docker-ce | docker-engine
Section: devel
Priority: optional
Description: A personal BuildKit backend on the local Docker Engine
 Runs buildkitd in a container named docker-assemble-backend-<user> on the local
 Docker Engine, with sidecars that relay the host's ports into builds and a
 persistent build cache.
 .
 The package holds the tray app (assemble-backend: a panel, settings and a log
 viewer) and the CLI (assemble, also a Docker CLI plugin).
EOF

mkdir -p "$OUT_DIR"
rm -f "$DEB"
dpkg-deb --build --root-owner-group "$STAGE" "$DEB" >/dev/null
rm -rf "$STAGE"
log "built $(du -h "$DEB" | cut -f1) package, version $VERSION, $ARCH; depends: $DEPENDS"
echo "$DEB"
