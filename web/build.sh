#!/usr/bin/env bash
# Builds the browser demo into web/pkg (the wasm module and its JS glue, by wasm-bindgen) and,
# with `serve`, serves web/ at http://127.0.0.1:8000 (a page's module must come over http, not
# file://). Needs the wasm32 target and wasm-bindgen-cli at Cargo.lock's version
# (.ci/install-browser.sh installs both).
#
#   bash web/build.sh [serve]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --target wasm32-unknown-unknown -p wgpu-mlp-web
wasm-bindgen --target web --no-typescript --out-dir web/pkg \
  target/wasm32-unknown-unknown/release/wgpu_mlp_web.wasm
echo "built web/pkg ($(du -h web/pkg/wgpu_mlp_web_bg.wasm | cut -f1) of wasm)"
if [ "${1:-}" = serve ]; then
  echo "open http://127.0.0.1:8000 in a browser with WebGPU (Chrome, Edge; Firefox Nightly)"
  exec python3 -m http.server --bind 127.0.0.1 --directory web 8000
fi
