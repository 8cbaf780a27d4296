#!/usr/bin/env bash
# Builds the etcd raft (3.4) peer harness offline, in GOPATH mode, against the sources Debian's
# golang-etcd-server-dev installs under /usr/share/gocode. No module proxy is needed or used.
#
#   exit 0  built (or already up to date): prints the binary's path on stdout
#   exit 3  toolchain or etcd sources missing: prints why on stderr
#           (benchmarks/peers/install-toolchains.sh installs them)
#   other   the build itself failed
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers="$(dirname "$here")"
gocode="${RAFTLAB_GOCODE:-/usr/share/gocode}"
raft_source="$gocode/src/go.etcd.io/etcd/raft"
bin_dir="$peers/go/bin"
binary="$bin_dir/etcd-raft-bench"

if ! command -v go >/dev/null 2>&1; then
  echo "etcd-raft: skipped: no 'go' on PATH (install Debian package golang-go, e.g. benchmarks/peers/install-toolchains.sh)" >&2
  exit 3
fi
if [ ! -f "$raft_source/rawnode.go" ] || [ ! -f "$gocode/src/go.etcd.io/etcd/version/version.go" ]; then
  echo "etcd-raft: skipped: etcd raft sources not found at $raft_source (install Debian package golang-etcd-server-dev, e.g. benchmarks/peers/install-toolchains.sh)" >&2
  exit 3
fi

# Up to date when the binary is newer than the harness source and the etcd sources.
if [ -x "$binary" ] && [ "$binary" -nt "$here/main.go" ] && [ "$binary" -nt "$raft_source/rawnode.go" ]; then
  echo "$binary"
  exit 0
fi

mkdir -p "$bin_dir"
export GO111MODULE=off
export GOFLAGS=
# The first GOPATH entry is ours (nothing is fetched into it); Debian's tree provides the imports.
export GOPATH="$peers/go:$gocode"
export GOPROXY=off
if [ -z "${GOCACHE:-}" ]; then
  if [ -n "${HOME:-}" ] && [ -w "${HOME:-/nonexistent}" ]; then
    export GOCACHE="$HOME/.cache/go-build"
  else
    export GOCACHE="${TMPDIR:-/tmp}/raftlab-go-build-cache"
  fi
fi

cd "$here"
# A private temporary name, so two builds at once (a test and a bench run) cannot mix their output.
partial="$binary.$$.tmp"
trap 'rm -f "$partial"' EXIT
go build -trimpath -o "$partial" . >&2
mv -f "$partial" "$binary"
echo "$binary"
