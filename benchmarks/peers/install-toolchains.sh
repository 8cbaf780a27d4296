#!/usr/bin/env bash
# Installs what the etcd raft peer harness needs, from Debian packages only:
#   golang-go               the Go toolchain
#   golang-etcd-server-dev  etcd 3.4 sources under /usr/share/gocode (raft, raftpb, version, deps)
# liferaft needs nothing here: it is an npm dependency of @raftlab/benchmarks.
#
# Safe to call from CI on every run: does nothing when both are present; installs only as root
# (or with password-less sudo) where apt-get exists.
#
#   exit 0  present, or installed now
#   exit 3  not present and cannot be installed here (says why); the peers runner then reports
#           etcd raft as skipped. Callers that treat peers as optional: `... || true`.
set -uo pipefail

gocode="${RAFTLAB_GOCODE:-/usr/share/gocode}"
raft_source="$gocode/src/go.etcd.io/etcd/raft/rawnode.go"

present() {
  command -v go >/dev/null 2>&1 && [ -f "$raft_source" ]
}

if present; then
  echo "peers toolchains: present ($(go version), etcd raft sources at $gocode)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "peers toolchains: missing and no apt-get here; install Go and etcd 3.4's raft sources by hand (Debian: golang-go golang-etcd-server-dev)" >&2
  exit 3
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "peers toolchains: missing, and installing needs root or password-less sudo: apt-get install golang-go golang-etcd-server-dev" >&2
  exit 3
fi

export DEBIAN_FRONTEND=noninteractive
echo "peers toolchains: installing golang-go golang-etcd-server-dev with apt-get"
# An install from a stale package list can fail; refresh it first (quietly).
"${as_root[@]}" apt-get update -qq >/dev/null || echo "peers toolchains: apt-get update failed; trying the install anyway" >&2
if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends golang-go golang-etcd-server-dev >/dev/null; then
  echo "peers toolchains: apt-get install golang-go golang-etcd-server-dev failed" >&2
  exit 3
fi

if present; then
  echo "peers toolchains: installed ($(go version), etcd raft sources at $gocode)"
  exit 0
fi
echo "peers toolchains: installed the packages but $raft_source or 'go' is still missing (a Debian release without etcd 3.4 sources?)" >&2
exit 3
