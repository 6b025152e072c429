#!/usr/bin/env bash
# Installs exactly the Debian packages Cairn needs to build, test and run.
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap          # Bazel 4.2.3 (offline build; see third_party/)
  g++
  pkg-config
  protobuf-compiler libprotobuf-dev
  libleveldb-dev
  libboost-dev             # Boost.Beast / Asio (header-only)
  libcurl4-openssl-dev
  libabsl-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  etcd-server              # peer in bench/log_bench
  procps psmisc            # pgrep/pkill for the local cluster scripts
  curl
  unzip zip                # the fetcher extracts .zip URIs (zip: its test builds one)
  prometheus               # promtool: tests check the /metrics exposition
  chromium                 # headless browser of tests/dashboard_browser_test
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# tests/npm_clients_test installs third-party npm clients with `npm ci`: it
# needs Node.js (18 or newer) and npm, which Debian packages separately (a
# nodejs that bundles npm already provides both).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
