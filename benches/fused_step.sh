#!/usr/bin/env bash
# Issue #26's lavapipe table in one sitting: each workload's training step fused (2 dispatches
# per layer) and unfused (WGPU_MLP_FUSED_STEP=0, 3L + 1), run in turn ROUNDS times, then
# PyTorch on the CPU beside them (../shared/bench/torch_peer.py, if `python3 -c "import torch"`
# works; set PYTHON to a venv's interpreter). One JSON line per run on stdout.
#
#   bash benches/fused_step.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-2}
cargo build --release --example workloads >&2
bin=target/release/examples/workloads
runs=(
  "--workload small"
  "--workload mnist"
  "--workload wide"
  "--workload xor --general"
  "--workload small --models 40"
)
for round in $(seq "$rounds"); do
  for run in "${runs[@]}"; do
    for fused in 1 0; do
      # shellcheck disable=SC2086 # the run's words are separate arguments
      WGPU_MLP_FUSED_STEP=$fused "$bin" $run --seconds "$seconds" 2>/dev/null |
        sed "s/^{/{\"round\":$round,\"fused\":$fused,/"
    done
  done
done
python=${PYTHON:-python3}
peer=../shared/bench/torch_peer.py
if [ -f "$peer" ] && "$python" -c "import torch" 2>/dev/null; then
  "$python" "$peer" --device cpu --threads 2 --workloads small,mnist,wide,xor --min-seconds "$seconds"
  "$python" "$peer" --device cpu --threads 2 --workloads small --models 40 --min-seconds "$seconds"
else
  echo "PyTorch not importable by $python: no CPU peer in this run" >&2
fi
