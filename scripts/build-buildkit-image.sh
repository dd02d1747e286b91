#!/bin/bash
# Build a real BuildKit backend image (buildkitd + buildctl + runc + busybox + qemu user emulators) from
# Debian packages only.
#   Host: Debian bookworm amd64, docker daemon running, access to Debian's package mirror only.
#   Source: sid's golang-github-docker-docker-dev (docker.io 28.5.2) ships the BuildKit tree
#           (github.com/moby/buildkit, v0.25.x as vendored by Docker 28.5.2) + sid golang-*-dev deps,
#           compiled in GOPATH mode with sid's golang-1.27-go (extracted, not installed).
#   Runtime bits: bookworm runc / busybox-static / socat (+libs) / docker-registry (for the smoke test).
#   Emulators: trixie's qemu-user (10.0, statically linked: trixie's qemu-user-static is only a
#           transitional package now), each as /usr/bin/buildkit-qemu-<arch>, the names BuildKit looks up
#           in PATH for a step of a platform the kernel cannot run (solver/llbsolver/ops/exec_binfmt.go
#           getEmulator: buildkit-qemu-aarch64 for linux/arm64, -arm for linux/arm/v7 and v6, -riscv64,
#           -ppc64le, -s390x). BuildKit copies the one it needs into the step and runs the step's first
#           process through it, so no binfmt_misc registration and no --privileged are needed.
# Usage:  W=SCRATCH_DIR IMG=assemble-buildkit:v0.25-debian-qemu SMOKE=0 bash scripts/build-buildkit-image.sh
#   (W defaults under $TMPDIR). Skips everything when both images already exist and the BuildKit image
#   carries its emulators (the label below; an image made by an older recipe is rebuilt). FORCE=1 rebuilds.
# Adapted from the team's shared recipe so that a fresh machine can make the test images by itself.
set -euo pipefail
W=${W:-${TMPDIR:-/tmp}/assemble-buildkit}
IMG=${IMG:-assemble-buildkit:v0.25-debian-qemu}
SOCAT_IMG=${SOCAT_IMG:-assemble-socat:debian}
SMOKE=${SMOKE:-0}
# The emulators the image carries: qemu's name for each architecture, as BuildKit looks it up.
EMULATORS="aarch64 arm riscv64 ppc64le s390x"
EMU_LABEL=com.docker.assemble.test-image.emulators
emulators_of() { docker image inspect -f "{{ index .Config.Labels \"$EMU_LABEL\" }}" "$1" 2>/dev/null || true; }
if [ "${FORCE:-0}" != 1 ] && [ "$(emulators_of "$IMG")" = "$EMULATORS" ] && docker image inspect "$SOCAT_IMG" >/dev/null 2>&1; then
  echo "images $IMG (with the emulators $EMULATORS) and $SOCAT_IMG are present; skipping the BuildKit image build"
  exit 0
fi
if docker image inspect "$IMG" >/dev/null 2>&1; then
  echo "image $IMG lacks the emulators ($EMULATORS): rebuilding it"
fi
GOVER=${GOVER:-1.27}
SCRIPTS=$(cd "$(dirname "$0")" && pwd)            # private-apt.sh: the apt state with trixie/sid/bookworm-backports
mkdir -p "$W"; cd "$W"
TIM=$W/timings.txt; : > "$TIM"
t() { local s=$1; shift; local _t0; _t0=$(date +%s.%N); "$@"; echo "$s $(echo "$(date +%s.%N) - $_t0" | bc | xargs printf '%.1f')s" | tee -a "$TIM"; }

# ---------------------------------------------------------------- 0. private apt config (never touches system apt state)
# shellcheck source=scripts/private-apt.sh
source "$SCRIPTS/private-apt.sh"
o=("${APT_OPTIONS[@]}")

# ---------------------------------------------------------------- 1. download debs
fetch() {
  rm -rf debs debs-trixie debs-bookworm debs-qemu; mkdir -p debs debs-trixie debs-bookworm debs-qemu
  # recursive Depends of docker-dev, keep golang-*-dev (all arch:all Go source pkgs except go-sqlite3)
  apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances golang-github-docker-docker-dev | grep -v '^ ' | grep '^golang-.*-dev$' | sort -u > golist.txt
  # imports of buildkit cmd/buildkitd+cmd/buildctl that docker-dev's Depends do not cover (found with apt-file)
  EXTRA="golang-github-azure-azure-sdk-for-go-dev golang-github-agext-levenshtein-dev
         golang-github-containerd-accelerated-container-image-dev golang-github-gofrs-flock-dev
         golang-github-google-shlex-dev golang-github-hashicorp-go-immutable-radix-v2-dev
         golang-github-package-url-packageurl-go-dev golang-github-pkg-profile-dev
         golang-github-spdx-tools-golang-dev golang-github-tonistiigi-go-archvariant-dev"
  apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances $EXTRA | grep -v '^ ' | grep '^golang-.*-dev$' | sort -u >> golist.txt
  sort -u -o golist.txt golist.txt
  echo "$(wc -l < golist.txt) golang-*-dev packages"
  (cd debs && apt-get "${o[@]}" -q download $(cat ../golist.txt) golang-$GOVER-go golang-$GOVER-src >/dev/null)
  # trixie docker-dev (26.1.5) still contains the real profiles/seccomp implementation
  (cd debs-trixie && apt-get "${o[@]}" -q download golang-github-docker-docker-dev/trixie >/dev/null)
  # runtime pieces from bookworm (system apt sources, download only)
  (cd debs-bookworm && apt-get -q download runc busybox-static socat libwrap0 docker-registry >/dev/null)
  # trixie's qemu-user: static qemu-<arch> binaries (bookworm's qemu-user is dynamically linked)
  (cd debs-qemu && apt-get "${o[@]}" -q download qemu-user/trixie >/dev/null)
}
t "fetch-debs" fetch
du -sh debs | sed 's/^/debs size: /' | tee -a "$TIM"

# ---------------------------------------------------------------- 2. extract into a GOPATH tree
extract() {
  rm -rf root trixie; mkdir -p root trixie
  # Hundreds of small packages: unpack four at a time (each into the same tree; they share no file).
  ls debs/*.deb | xargs -P 4 -I{} dpkg -x {} root
  dpkg -x debs-trixie/*.deb trixie
}
t "extract" extract
G=$W/root/usr/share/gocode/src
( for f in debs/golang-github-docker-docker-dev_*.deb debs/golang-${GOVER}-go_*.deb debs-trixie/*.deb debs-bookworm/*.deb debs-qemu/*.deb; do
    dpkg-deb -f "$f" Package Version | paste -sd' '; done ) > versions.txt

# ---------------------------------------------------------------- 3. fix-ups for GOPATH mode
fixups() {
  OV=$W/overlay/src; rm -rf "$W/overlay"; mkdir -p "$OV"
  # (a) /vN import paths: Debian installs these without the /vN dir; GOPATH mode only maps /vN
  #     ("minimal module compatibility") when the IMPORTER has a go.mod - buildkit in docker-dev has none.
  mkdir -p $OV/github.com/coreos/go-systemd $OV/github.com/mitchellh/hashstructure
  ln -s $G/github.com/coreos/go-systemd     $OV/github.com/coreos/go-systemd/v22
  ln -s $G/github.com/mitchellh/hashstructure $OV/github.com/mitchellh/hashstructure/v2
  # (b) github.com/moby/profiles/seccomp: not packaged; sid docker-dev has only a deprecated wrapper
  #     importing it. Use trixie docker-dev's github.com/docker/docker/profiles/seccomp implementation.
  mkdir -p $OV/github.com/moby/profiles/seccomp
  T=$W/trixie/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp
  cp $T/default_linux.go $T/kernel_linux.go $T/seccomp.go $T/seccomp_linux.go $T/default.json $OV/github.com/moby/profiles/seccomp/
  sed -i 's#^package seccomp // import .*#package seccomp#' $OV/github.com/moby/profiles/seccomp/*.go
  # (c) github.com/containerd/fuse-overlayfs-snapshotter/v2: not packaged -> stub (only the fallback
  #     snapshotter when kernel overlayfs is unusable).
  mkdir -p $OV/github.com/containerd/fuse-overlayfs-snapshotter/v2
  cat > $OV/github.com/containerd/fuse-overlayfs-snapshotter/v2/stub.go <<'GO'
// Package fuseoverlayfs is a stub: fuse-overlayfs-snapshotter is not packaged in Debian.
package fuseoverlayfs

import (
	"errors"

	"github.com/containerd/containerd/v2/core/snapshots"
)

var errNotBuilt = errors.New("fuse-overlayfs snapshotter not included in this build")

func Supported(root string) error { return errNotBuilt }

func NewSnapshotter(root string, opts ...interface{}) (snapshots.Snapshotter, error) {
	return nil, errNotBuilt
}
GO
  # (d) github.com/tonistiigi/go-actions-cache: not packaged -> stub buildkit's "gha" cache backend.
  #     Done in the tree itself: GOPATH lookup takes the FIRST GOPATH entry where the import dir
  #     exists, so an overlay dir below github.com/moby/buildkit would shadow the real packages.
  GHA=$G/github.com/moby/buildkit/cache/remotecache/gha
  rm -f $GHA/*.go
  cat > $GHA/stub.go <<'GO'
// Package gha is a stub: github.com/tonistiigi/go-actions-cache is not packaged in Debian.
package gha

import (
	"context"

	"github.com/moby/buildkit/cache/remotecache"
	"github.com/moby/buildkit/session"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

var errNotBuilt = errors.New("gha cache backend not included in this build")

func ResolveCacheExporterFunc() remotecache.ResolveCacheExporterFunc {
	return func(ctx context.Context, g session.Group, attrs map[string]string) (remotecache.Exporter, error) {
		return nil, errNotBuilt
	}
}

func ResolveCacheImporterFunc() remotecache.ResolveCacheImporterFunc {
	return func(ctx context.Context, g session.Group, attrs map[string]string) (remotecache.Importer, ocispecs.Descriptor, error) {
		return nil, ocispecs.Descriptor{}, errNotBuilt
	}
}
GO
  # (e) stargz snapshotter: Debian's stargz-snapshotter-dev (0.14.x, containerd 1.7 API) does not fit
  #     buildkit's containerd/v2 API -> drop the "stargz" case from cmd/buildkitd/main_oci_worker.go.
  python3 - "$G" <<'PY'
import re, sys
p = sys.argv[1] + '/github.com/moby/buildkit/cmd/buildkitd/main_oci_worker.go'
s = open(p).read()
a = s.index('\tcase "stargz":\n'); b = s.index('\tdefault:\n', a)
s = s[:a] + '\tcase "stargz":\n\t\treturn snFactory, errors.New("stargz snapshotter not included in this build (Debian stargz-snapshotter too old)")\n' + s[b:]
a = s.index('// sourceWithSession returns'); b = s.index('\n}\n', s.index('func sourceWithSession', a)) + 3
s = s[:a] + s[b:]
ia = s.index('import (\n'); ib = s.index('\n)\n', ia)
body = re.sub(r'//[^\n]*', '', s[ib:]); keep = []
for line in s[ia+9:ib].split('\n'):
    m = re.match(r'\s*(\w+\s+)?"([^"]+)"', line)
    if m:
        name = (m.group(1) or '').strip() or m.group(2).rstrip('/').split('/')[-1].replace('go-', '')
        if not re.search(r'\b' + re.escape(name) + r'\.', body):
            continue
    keep.append(line)
open(p, 'w').write(s[:ia+9] + '\n'.join(keep) + s[ib:])
PY
}
t "fixups" fixups

# ---------------------------------------------------------------- 4. go build (GOPATH mode, static)
export GOROOT=$W/root/usr/lib/go-$GOVER PATH=$W/root/usr/lib/go-$GOVER/bin:$PATH
export GOPATH=$W/overlay:$W/root/usr/share/gocode GO111MODULE=off GOTOOLCHAIN=local GOPROXY=off
export GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOCACHE=$W/gocache
BKVER=${BKVER:-v0.25.x-debian28.5.2+dfsg4-5}
build() {
  rm -rf bin; mkdir -p bin
  go version
  missing=$(go list -e -deps -f '{{if .Error}}{{.ImportPath}}{{end}}' \
      github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl | grep -v '^$' || true)
  [ -z "$missing" ] || { echo "unresolved imports:"; echo "$missing"; exit 1; }
  go build -trimpath -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$BKVER -X github.com/moby/buildkit/version.Revision=debian" \
     -o bin/ github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
}
t "go-build" build
ls -la bin | tee -a "$TIM"

# ---------------------------------------------------------------- 5. image (docker import)
X=$W/x
copy_with_libs() { # ROOTFS SRC DEST [LD_LIBRARY_PATH]  - binary + libs ldd resolves (host = bookworm)
  local R=$1 S=$2 D=$3; install -D -m755 "$S" "$R$D"
  LD_LIBRARY_PATH=${4:-} ldd "$S" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r l; do
    case $l in $X/*) dst=/usr/lib/x86_64-linux-gnu/$(basename "$l");; *) dst=$l;; esac
    install -D -m755 "$(readlink -f "$l")" "$R$dst"
  done
}
mkimage() {
  rm -rf "$X"; mkdir -p "$X"
  for d in runc busybox-static socat libwrap0; do dpkg -x debs-bookworm/${d}_*.deb "$X/$d"; done
  mkdir -p "$X/qemu-user"   # only the emulators the image carries, of the package's forty
  dpkg-deb --fsys-tarfile debs-qemu/qemu-user_*.deb | tar -C "$X/qemu-user" -x $(for a in $EMULATORS; do echo ./usr/bin/qemu-$a; done)
  R=$W/rootfs; rm -rf "$R"
  mkdir -p $R/usr/bin $R/bin $R/etc/buildkit $R/var/lib/buildkit $R/run/buildkit $R/tmp $R/root $R/etc/ssl/certs $R/proc $R/sys $R/dev
  chmod 1777 $R/tmp
  install -m755 bin/buildkitd bin/buildctl $R/usr/bin/
  # Regular files, not links: BuildKit copies the emulator it needs into the step's mounts.
  for a in $EMULATORS; do
    q=$X/qemu-user/usr/bin/qemu-$a
    ldd "$q" 2>&1 | grep -q 'statically linked\|not a dynamic executable' || { echo "$q is not statically linked" >&2; exit 1; }
    install -m755 "$q" $R/usr/bin/buildkit-qemu-$a
  done
  copy_with_libs $R $X/runc/usr/sbin/runc /usr/bin/runc
  install -m755 $X/busybox-static/bin/busybox $R/bin/busybox
  for a in $($R/bin/busybox --list); do [ -e $R/bin/$a ] || [ -e $R/usr/bin/$a ] || ln -s busybox $R/bin/$a; done
  cp /etc/ssl/certs/ca-certificates.crt $R/etc/ssl/certs/
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > $R/etc/passwd
  printf 'root:x:0:\nnogroup:x:65534:\n' > $R/etc/group
  printf 'hosts: files dns\n' > $R/etc/nsswitch.conf
  printf '[worker.oci]\n  enabled = true\n[worker.containerd]\n  enabled = false\n' > $R/etc/buildkit/buildkitd.toml
  tar -C $R --numeric-owner -cf $W/rootfs.tar .
  docker rmi -f "$IMG" >/dev/null 2>&1 || true
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV BUILDKIT_SETUP_CGROUPV2_ROOT=1' \
    --change 'VOLUME /var/lib/buildkit' \
    --change 'ENTRYPOINT ["buildkitd"]' \
    --change "LABEL $EMU_LABEL=\"$EMULATORS\"" \
    $W/rootfs.tar "$IMG"
  # socat sidecar image ("host-port proxy")
  S=$W/rootfs-socat; rm -rf "$S"; mkdir -p $S/bin $S/tmp
  copy_with_libs $S $X/socat/usr/bin/socat /usr/bin/socat $X/libwrap0/usr/lib/x86_64-linux-gnu
  install -m755 $X/busybox-static/bin/busybox $S/bin/busybox; ln -s busybox $S/bin/sh
  tar -C $S --numeric-owner -cf $W/rootfs-socat.tar .
  docker rmi -f "$SOCAT_IMG" >/dev/null 2>&1 || true
  docker import --change 'ENTRYPOINT ["/usr/bin/socat"]' $W/rootfs-socat.tar "$SOCAT_IMG"
}
t "image" mkimage
# The emulators run in the image (qemu prints its version; nothing foreign is run here).
for a in $EMULATORS; do
  docker run --rm --entrypoint buildkit-qemu-$a "$IMG" -version | head -1 | sed "s/^/buildkit-qemu-$a: /" | tee -a "$TIM"
done
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^($IMG|$SOCAT_IMG) " | tee -a "$TIM"

# ---------------------------------------------------------------- 6. smoke test (registry on host + sidecar + push)
[ "$SMOKE" = 1 ] || exit 0
smoke() {
  C=bk-recipe-test P=bk-recipe-proxy
  docker rm -f $C $P >/dev/null 2>&1 || true
  mkdir -p $W/reg; dpkg -x debs-bookworm/docker-registry_*.deb $W/reg
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 0.0.0.0:5000\n' "$W/reg/data" > $W/reg/config.yml
  REGISTRY_HTTP_ADDR=0.0.0.0:5000 $W/reg/usr/bin/docker-registry serve $W/reg/config.yml > $W/reg/log 2>&1 &
  RPID=$!; sleep 2
  # run like the public moby/buildkit image; if the host cannot grant --privileged (e.g. no
  # CAP_SYS_RESOURCE in its bounding set), fall back to all-caps-but-that + rw cgroup remount.
  FALLBACK=0
  if ! docker run -d --privileged --name $C -v bk-recipe-cache:/var/lib/buildkit "$IMG" buildkitd >/dev/null 2>$W/run.err; then
    cat $W/run.err; docker rm -f $C >/dev/null 2>&1 || true; FALLBACK=1
    docker run -d --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
      --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
      --name $C -v bk-recipe-cache:/var/lib/buildkit "$IMG" buildkitd >/dev/null
  fi
  for i in $(seq 30); do docker exec $C buildctl debug workers >/dev/null 2>&1 && break; sleep 1; done
  [ $FALLBACK = 1 ] && docker exec $C sh -c 'for m in $(awk "\$3==\"cgroup\"{print \$2}" /proc/mounts); do mount -o remount,bind,rw $m; done'
  GW=$(docker exec $C ip route | awk '/^default/{print $3}')
  docker run -d --name $P --network container:$C "$SOCAT_IMG" TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr TCP:$GW:5000 >/dev/null
  docker exec $C buildctl debug workers
  docker exec $C sh -c 'mkdir -p /tmp/ctx && echo hello > /tmp/ctx/hello.txt && printf "FROM scratch\nCOPY hello.txt /\n" > /tmp/ctx/Dockerfile'
  docker exec $C buildctl build --frontend dockerfile.v0 --local context=/tmp/ctx --local dockerfile=/tmp/ctx \
      --output type=image,name=localhost:5000/hello:1,push=true
  docker exec $C sh -c 'mkdir -p /tmp/ctx2 && cp /bin/busybox /tmp/ctx2/ && printf "FROM scratch AS base\nCOPY busybox /bin/busybox\nFROM base\nRUN [\"/bin/busybox\",\"uname\",\"-a\"]\n" > /tmp/ctx2/Dockerfile'
  docker exec $C buildctl build --progress=plain --frontend dockerfile.v0 --local context=/tmp/ctx2 --local dockerfile=/tmp/ctx2 \
      --output type=image,name=localhost:5000/hello-run:1,push=true 2>&1 | grep -E 'Linux|DONE|ERROR' || true
  docker exec $C buildctl du
  echo "registry catalog: $(curl -s http://127.0.0.1:5000/v2/_catalog)" | tee -a "$TIM"
  docker rm -f $P $C >/dev/null; docker volume rm bk-recipe-cache >/dev/null
  kill $RPID; wait $RPID 2>/dev/null || true
}
t "smoke-test" smoke
cat "$TIM"
