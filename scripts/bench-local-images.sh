#!/usr/bin/env bash
# Local images (docs/local-images.md): `FROM` a 500 MiB image that only the engine has, first build
# (fresh BuildKit cache, fresh mirror store) and second build (base in BuildKit's cache, a step
# changed), against what a user does without local images: push the image to a registry on the
# host, then build `FROM localhost:P/…` (its first and second build; the second is the build whose
# base is already in BuildKit's cache), and against `docker save IMAGE | docker load`.
# Usage: scripts/bench-local-images.sh [ROUNDS]   (default 3; $ASSEMBLE: the CLI, default the
#        release build; $BENCH_MIB: the base's size, default 500)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
mib=${BENCH_MIB:-500}
assemble=${ASSEMBLE:-$PWD/target/release/assemble}
work=$(mktemp -d /tmp/bench-local-images.XXXXXX)
export ASSEMBLE_BACKEND_USER=bench-local-images ASSEMBLE_CONFIG_DIR=$work/settings DOCKER_CONFIG=$work/docker
export ASSEMBLE_BACKEND_IMAGE=${ASSEMBLE_TEST_IMAGE:-assemble-buildkit:v0.25-debian}
base=bench-local-images-base:1
registry_pid=""
cleanup() {
  "$assemble" backend stop >/dev/null 2>&1 || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  docker image rm -f "$base" >/dev/null 2>&1 || true
  docker images --format '{{.Repository}}:{{.Tag}}' | grep "^127.0.0.1:[0-9]*/bench/base:" | xargs -r docker image rm -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/settings" "$work/docker" "$work/base" "$work/app"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
# A backend with an empty BuildKit cache (anonymous volume) and an empty mirror store.
fresh() {
  "$assemble" backend stop >/dev/null 2>&1 || true
  "$assemble" backend start --allow-host-port "$port" > "$work/start.log" 2>&1 || { cat "$work/start.log" >&2; exit 1; }
}
# A registry of its own, empty, on the host's loopback (the sidecar relays it into the backend).
fresh_registry() {
  [ -n "$registry_pid" ] && { kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true; }
  rm -rf "$work/registry"
  mkdir -p "$work/registry"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$work/registry" "$port" > "$work/registry.yml"
  docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
  registry_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return; sleep 0.1; done
  echo "the registry did not answer" >&2; exit 1
}
build_app() { # FROM, the step's value
  "$assemble" build --progress plain --build-arg "BASE=$1" --build-arg "N=$2" "$work/app" > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }
}

# The base: BuildKit's busybox and $mib MiB of random bytes (incompressible, as a real layer of
# binaries mostly is), loaded into the engine only.
id=$(docker create "$ASSEMBLE_BACKEND_IMAGE" true)
docker cp "$id:/bin/busybox" "$work/base/busybox" >/dev/null
docker rm -f "$id" >/dev/null
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c %s /dev/urandom > /big"]\n' "$((mib * 1048576))" > "$work/base/Dockerfile"
printf 'ARG BASE\nFROM $BASE\nARG N\nRUN ["/bin/busybox", "sh", "-c", "echo $N > /n"]\n' > "$work/app/Dockerfile"
fresh
"$assemble" build --load -t "$base" --progress plain "$work/base" > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
echo "base: $base, $(docker image inspect -f '{{.Size}}' "$base" | awk '{printf "%.0f MiB", $1/1048576}'), engine only"

printf '%-6s %12s %12s %12s %12s %12s %12s\n' round local-1st local-2nd save-load push reg-1st reg-2nd
for round in $(seq "$rounds"); do
  fresh
  t=$(now); build_app "$base" "$round-1"; local_first=$(since "$t")
  t=$(now); build_app "$base" "$round-2"; local_second=$(since "$t")
  t=$(now); docker save "$base" | docker load >/dev/null; save_load=$(since "$t")
  fresh
  fresh_registry
  remote="127.0.0.1:$port/bench/base:$round"
  docker tag "$base" "$remote"
  t=$(now); docker push -q "$remote" >/dev/null; push=$(since "$t")
  docker image rm "$remote" >/dev/null
  t=$(now); build_app "localhost:$port/bench/base:$round" "$round-1"; registry_first=$(since "$t")
  t=$(now); build_app "localhost:$port/bench/base:$round" "$round-2"; registry_second=$(since "$t")
  printf '%-6s %11ss %11ss %11ss %11ss %11ss %11ss\n' "$round" "$local_first" "$local_second" "$save_load" "$push" "$registry_first" "$registry_second"
done
echo "push-then-build = push + reg-1st; the goal: local-1st <= push-then-build, local-2nd <= 1.1 x reg-2nd"
