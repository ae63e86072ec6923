#!/usr/bin/env bash
# A model trained and saved in the browser, loaded by the native CLI (issue #27): runs the
# browser test that trains digits (tests/web.rs, fit_async_learns_digits), takes the model
# file's bytes, the test rows and the browser's predictions from its console, and checks that
# `wgpu-mlp predict --proba` on this machine gives the same classes and the same
# probabilities (to 1e-5: the browser's adapter and this one may run different matmul
# kernels, whose sums round differently in the last bits).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo test --release --target wasm32-unknown-unknown --no-default-features --features web --test web \
  fit_async_learns_digits -- --nocapture > "$dir/console.txt" 2>&1 || { cat "$dir/console.txt"; exit 1; }
sed -n 's/^ *BROWSER_MODEL //p' "$dir/console.txt" | base64 -d > "$dir/model.safetensors"
sed -n 's/^ *BROWSER_ROW //p' "$dir/console.txt" > "$dir/rows.csv"
sed -n 's/^ *BROWSER_PREDICTION //p' "$dir/console.txt" > "$dir/browser.csv"
[ -s "$dir/model.safetensors" ] && [ -s "$dir/rows.csv" ] || { echo "no model or rows in the browser's console" >&2; exit 1; }
cargo build -q --release --bin wgpu-mlp
target/release/wgpu-mlp predict --proba --no-header "$dir/model.safetensors" "$dir/rows.csv" | tail -n +2 > "$dir/cli.csv"
python3 - "$dir/browser.csv" "$dir/cli.csv" <<'PY'
import sys
browser = [line.split(",") for line in open(sys.argv[1]).read().split()]
cli = [line.split(",") for line in open(sys.argv[2]).read().split()]
assert len(browser) == len(cli) > 0, f"{len(browser)} browser rows, {len(cli)} CLI rows"
classes = sum(b[0] != c[0] for b, c in zip(browser, cli))
worst = max(abs(float(x) - float(y)) for b, c in zip(browser, cli) for x, y in zip(b[1:], c[1:]))
print(f"browser model in the CLI: {len(cli)} rows, {classes} classes differ, largest probability difference {worst:.2e}")
assert classes == 0 and worst <= 1e-5, "the CLI predicts differently from the browser"
PY
