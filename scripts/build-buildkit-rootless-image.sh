#!/bin/bash
# The rootless BuildKit test image, laid out as moby/buildkit's `rootless` image is (its Dockerfile's
# `rootless` stage): user 1000 with the subordinate IDs 100000-165535, `rootlesskit buildkitd` as the
# entrypoint, the state in /home/user/.local/share/buildkit and the socket in /run/user/1000/buildkit.
# Made from the root test image (scripts/build-buildkit-image.sh: buildkitd, buildctl, runc, busybox)
# plus Debian bookworm's `rootlesskit` and `uidmap` (newuidmap/newgidmap, setuid root) with the
# libraries they link, so that no registry is needed.
# Needs setcap (libcap2-bin).
# Usage:  IMG=assemble-buildkit:v0.25-debian-rootless bash scripts/build-buildkit-rootless-image.sh
#   Skips when the image exists (FORCE=1 rebuilds). Needs the root test image first.
set -euo pipefail
BASE=${BASE:-assemble-buildkit:v0.25-debian-qemu}
IMG=${IMG:-assemble-buildkit:v0.25-debian-rootless}
W=${W:-${TMPDIR:-/tmp}/assemble-buildkit-rootless}
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$IMG" >/dev/null 2>&1; then
  echo "image $IMG is present; skipping the rootless BuildKit image build"
  exit 0
fi
docker image inspect "$BASE" >/dev/null 2>&1 || { echo "the root test image $BASE is missing: run scripts/build-buildkit-image.sh first" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W/debs" "$W/x"; cd "$W"
(cd debs && apt-get -q download rootlesskit uidmap >/dev/null 2>&1) \
  || { echo "cannot download Debian's rootlesskit and uidmap packages (apt-get update first?)" >&2; exit 1; }
for deb in debs/*.deb; do dpkg -x "$deb" x; done
R=$W/rootfs; mkdir -p "$R"
id=$(docker create "$BASE" true)
docker export "$id" | tar -C "$R" -xf -
docker rm -f "$id" >/dev/null
copy_with_libs() { # ROOTFS SRC DEST MODE: a binary and the libraries ldd resolves for it
  local R=$1 S=$2 D=$3 M=$4; install -D -m"$M" "$S" "$R$D"
  ldd "$S" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r l; do
    install -D -m755 "$(readlink -f "$l")" "$R$l"
  done
}
copy_with_libs "$R" x/usr/bin/rootlesskit /usr/bin/rootlesskit 755
# They write the user namespace's ID maps from /etc/subuid. With file capabilities, as Alpine's
# shadow-uidmap in moby's image, not setuid root as Debian ships them: bookworm's (shadow 4.13) opens
# the map as root, and root that is not the namespace's owner needs CAP_SYS_ADMIN, which a container
# has not; CAP_SETFCAP is what mapping uid 0 needs since Linux 5.12.
copy_with_libs "$R" x/usr/bin/newuidmap /usr/bin/newuidmap 755
copy_with_libs "$R" x/usr/bin/newgidmap /usr/bin/newgidmap 755
setcap cap_setuid,cap_setfcap=ep "$R/usr/bin/newuidmap"
setcap cap_setgid=ep "$R/usr/bin/newgidmap"
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n' > "$R/etc/group"
echo user:100000:65536 > "$R/etc/subuid"; echo user:100000:65536 > "$R/etc/subgid"
mkdir -p "$R/run/user/1000" "$R/home/user/.local/tmp" "$R/home/user/.local/share/buildkit" "$R/home/user/.config/buildkit"
# Its buildkitd.toml: the OCI worker, as the root image's /etc/buildkit/buildkitd.toml.
cp "$R/etc/buildkit/buildkitd.toml" "$R/home/user/.config/buildkit/buildkitd.toml"
chmod 700 "$R/run/user/1000"
chown -R 1000:1000 "$R/run/user/1000" "$R/home/user"
rm -rf "$R/var/lib/buildkit"
tar -C "$R" --numeric-owner --xattrs --xattrs-include=security.capability -cf "$W/rootfs.tar" .
docker rmi -f "$IMG" >/dev/null 2>&1 || true
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV HOME=/home/user' --change 'ENV USER=user' --change 'ENV XDG_RUNTIME_DIR=/run/user/1000' \
  --change 'ENV TMPDIR=/home/user/.local/tmp' \
  --change 'ENV BUILDKIT_HOST=unix:///run/user/1000/buildkit/buildkitd.sock' \
  --change 'USER 1000:1000' \
  --change 'VOLUME /home/user/.local/share/buildkit' \
  --change 'ENTRYPOINT ["rootlesskit", "buildkitd"]' \
  "$W/rootfs.tar" "$IMG" >/dev/null
rm -rf "$R" "$W/rootfs.tar"
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^$IMG "
