#!/usr/bin/env bash
# Installs what the browser tests (tests/web.rs) need: Chromium and its WebDriver (Debian's
# `chromium` + `chromium-driver`; headless Chromium offers WebGPU on its bundled SwiftShader
# with --enable-unsafe-webgpu, see webdriver.json), the wasm32 target, and wasm-bindgen's test
# runner at the version of wasm-bindgen in Cargo.lock (it must match: about 9 minutes to
# build on 2 cores, once). Idempotent; run as root or with sudo for the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# The version of wasm-bindgen the lock file pins, e.g. 0.2.130.
want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
[ -n "$want" ] || { echo "no wasm-bindgen in Cargo.lock" >&2; exit 1; }
have=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (have: ${have:-none}); about 9 minutes on 2 cores"
  cargo install -q wasm-bindgen-cli --version "$want"
fi
echo "browser tests: chromium $(dpkg-query -W -f='${Version}' chromium), $(wasm-bindgen-test-runner --version)"
