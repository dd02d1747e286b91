#!/usr/bin/env bash
# Benchmarks, side by side with the alternatives in one run (see docs/benchmarks.md): the relay
# (throughput, 100 streams, connection cost) against direct and socat; start-to-ready against a
# buildx-style bootstrap; warm `info` against `docker exec buildctl`, also over unix, TLS and ssh to a
# second engine (`engines`); logs against `docker logs`; the build history against `docker buildx
# history ls` (`builds`); `assemble build` against `docker buildx build` (`build`); the same build in
# the default and the rootless security modes (`security`); one emulated arm64 step against the same
# native amd64 step (`platforms`); a two-platform build on one node and on two, against buildx on
# the same nodes (`nodes`); a build `FROM` a 500 MiB image only the engine has against
# push-then-build and `docker save | docker load` (`local-images`);
# and the app's footprint, cold start and log viewer (scripts/bench-app.sh).
# Needs root (nsenter into the backend's network namespace) and the test images.
# Usage: scripts/bench.sh            every benchmark, default sizes (about 20 minutes)
#        scripts/bench.sh NAME [ARGS] one of relay, start, info, logs, engines, builds, build, build-cache, security, platforms, nodes, local-images, app
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-images
unset DOCKER_HOST  # the local engine only
cargo build --release --locked -p assemble-bench -p assemble-cli
bench=target/release/assemble-bench
case "${1:-all}" in
  all)
    $bench relay --gib 2 --rounds 3
    $bench start
    $bench info
    $bench engines
    $bench logs
    $bench builds
    $bench build
    $bench build-cache
    $bench security
    $bench platforms
    $bench nodes
    bash scripts/bench-local-images.sh
    bash scripts/bench-app.sh ;;
  local-images) shift; exec bash scripts/bench-local-images.sh "$@" ;;
  app) shift; exec bash scripts/bench-app.sh "$@" ;;
  # `build` also times a registry cache import on a cold backend (`build-cache`, its own flags).
  build) shift; $bench build "$@"; exec $bench build-cache ;;
  relay|start|info|logs|engines|builds|build-cache|security|platforms|nodes) exec $bench "$@" ;;
  *) echo "usage: scripts/bench.sh [relay|start|info|logs|engines|builds|build|build-cache|security|platforms|nodes|local-images|app] [ARGS]" >&2; exit 2 ;;
esac
