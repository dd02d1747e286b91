#!/usr/bin/env bash
# Tests the Debian package: builds it (scripts/build-deb.sh), checks its contents and desktop entry,
# installs it with dpkg -i, starts the installed app with --hidden under Xvfb on a private D-Bus
# session and checks that it comes up in the tray and quits from it (tests/deb/check_tray.py), then
# removes the package again, also on failure. As root (or with sudo). Not part of CI: the release
# build takes long.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test-deb: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
NAME=assemble-backend
started=$(date +%s)

# What the build and the tray check need (Xvfb, D-Bus, the UI tests' venv with dbus-next).
bash scripts/setup.sh --ui-tests
if ! command -v desktop-file-validate >/dev/null; then
  log "installing desktop-file-utils"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q desktop-file-utils
fi

# Refuse to touch an installed copy or files no package owns: the test removes what it installs.
if [ "$(dpkg-query -W -f='${Status}' $NAME 2>/dev/null || true)" = "install ok installed" ]; then
  die "$NAME is installed already; remove it first (dpkg -r $NAME)"
fi
for file in /usr/bin/assemble-backend /usr/bin/assemble; do
  [ ! -e "$file" ] || die "$file exists and would be overwritten; move it away first"
done

log "building the package"
build_start=$(date +%s)
DEB=$(bash scripts/build-deb.sh)
build_seconds=$(( $(date +%s) - build_start ))
[ -f "$DEB" ] || die "scripts/build-deb.sh printed no package ($DEB)"

log "checking $DEB"
INFO=$(dpkg-deb -I "$DEB")
CONTENTS=$(dpkg-deb -c "$DEB")
field() { dpkg-deb -f "$DEB" "$1"; }
[ "$(field Package)" = $NAME ] || die "Package is $(field Package)"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || die "Architecture is $(field Architecture)"
DEPENDS=$(field Depends)
for lib in libwebkit2gtk-4.1-0 libgtk-3-0 libayatana-appindicator3-1; do
  grep -q "\b$lib\b" <<<"$DEPENDS" || die "Depends lacks $lib: $DEPENDS"
done
[ "$(field Recommends)" = "docker.io | docker-ce | docker-engine" ] || die "Recommends is $(field Recommends)"
for path in ./usr/bin/assemble-backend ./usr/bin/assemble ./usr/share/applications/$NAME.desktop \
            ./usr/share/icons/hicolor/32x32/apps/$NAME.png ./usr/share/icons/hicolor/128x128/apps/$NAME.png; do
  grep -q " $path\$" <<<"$CONTENTS" || die "the package lacks $path"
done
grep -q '^-rwxr-xr-x root/root .* ./usr/bin/assemble-backend$' <<<"$CONTENTS" ||
  die "/usr/bin/assemble-backend is not an executable owned by root"

installed=0
extracted=$(mktemp -d)
remove_package() {
  if [ $installed = 1 ]; then
    log "removing the package (dpkg -r $NAME)"
    $SUDO dpkg -r $NAME >/dev/null && installed=0
  fi
}
cleanup() { remove_package; rm -rf "$extracted"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

dpkg-deb -x "$DEB" "$extracted"
desktop-file-validate "$extracted/usr/share/applications/$NAME.desktop" || die "the desktop entry does not validate"

log "installing (dpkg -i)"
installed=1
if ! $SUDO dpkg -i "$DEB"; then
  log "dpkg -i left dependencies missing; apt-get install -f"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -f -y -q
fi
STATUS=$(dpkg -s $NAME) || die "dpkg -s $NAME failed"
grep -q '^Status: install ok installed$' <<<"$STATUS" || die "dpkg -s $NAME does not say installed"
[ -x /usr/bin/assemble-backend ] || die "/usr/bin/assemble-backend is missing after the install"
CLI_VERSION=$(/usr/bin/assemble --version) || die "/usr/bin/assemble --version failed"

log "starting the installed app to the tray"
xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- target/ui-venv/bin/python tests/deb/check_tray.py ||
  die "the installed app did not start to the tray and quit from it"

remove_package
[ "$(dpkg-query -W -f='${Status}' $NAME 2>/dev/null || true)" != "install ok installed" ] || die "$NAME is still installed"
[ ! -e /usr/bin/assemble-backend ] || die "/usr/bin/assemble-backend is still there after dpkg -r"

echo
echo "== dpkg-deb -I $DEB"
echo "$INFO"
echo
echo "== summary"
echo "package:   $DEB ($(du -h "$DEB" | cut -f1), $(stat -c %s "$DEB") bytes; installed $(field Installed-Size) KiB)"
echo "contents:  $(grep -c -v '/$' <<<"$CONTENTS") files: /usr/bin/assemble-backend, /usr/bin/assemble, the desktop entry, $(grep -c '/apps/.*\.png$' <<<"$CONTENTS") icons"
echo "build:     ${build_seconds} s (scripts/build-deb.sh)"
echo "install:   dpkg -i ok, dpkg -s says installed, $CLI_VERSION"
echo "tray:      the installed app registered its tray item with Start, Open panel, Quit; Quit exited 0"
echo "removed:   dpkg -r $NAME"
echo "total:     $(( $(date +%s) - started )) s"
echo "test-deb: PASSED"
