#!/usr/bin/env bash
# Run ON the GPU machine from the repository root, after benches/gpu/prepare.sh here:
#   bash .device/run.sh
# Our workloads, the matmul kernels and the PyTorch peers (eager, CUDA graph, 40 stacked
# models) in one call; JSON lines into $OUT (or ./gpu-results), a summary table on stdout.
set -uo pipefail
dev=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$PWD/gpu-results}
mkdir -p "$out"
for f in "$dev"/debs/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export WGPU_BACKEND=${WGPU_BACKEND:-vulkan}
nvidia-smi -L | tee "$out/device.txt"
step() { echo "== $*" >&2; }
step adapter;  "$dev/bin/adapter" 2>&1 | tee -a "$out/device.txt"
step compile;  "$dev/bin/compile_times" > "$out/compile.tsv" 2>&1
step matmul;   timeout 150 "$dev/bin/matmul_bench" --shapes "${SHAPES:-128x784x256,256x1024x1024,1024x256x1024,4096x4096x4096}" --kernels Vec4,Tiled > "$out/matmul.jsonl"
for w in xor small mnist wide xl; do
  step "ours $w"; timeout 120 "$dev/bin/workloads" --workload "$w" --seconds 1 ${PROFILE:+--profile} >> "$out/ours.jsonl"
done
if [ -f "$dev/torch_peer.py" ]; then
  step "torch eager";  timeout 150 python3 "$dev/torch_peer.py" --device cuda --workloads xor,small,mnist,wide,xl --min-seconds 1 >> "$out/torch.jsonl"
  step "torch graph";  timeout 120 python3 "$dev/torch_peer.py" --device cuda --workloads xor,small,mnist,wide --min-seconds 1 --cuda-graph >> "$out/torch_graph.jsonl"
fi
step table
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p) if l.startswith("{")] if os.path.exists(p) else []
ours = {r["workload"]: r for r in rows("ours.jsonl") if "workload" in r}
eager = {r.get("workload"): r for r in rows("torch.jsonl")}
graph = {r.get("workload"): r for r in rows("torch_graph.jsonl")}
print(f"{'workload':8} {'ours ms':>10} {'torch ms':>10} {'graph ms':>10} {'x eager':>8} {'x graph':>8}")
for w, r in ours.items():
    e, g = eager.get(w, {}).get("ms_per_step"), graph.get(w, {}).get("ms_per_step")
    f = lambda v: f"{v:10.4f}" if v else f"{'-':>10}"
    ratio = lambda v: f"{v / r['ms_per_step']:8.2f}" if v else f"{'-':>8}"
    print(f"{w:8} {f(r['ms_per_step'])} {f(e)} {f(g)} {ratio(e)} {ratio(g)}")
print()
for r in rows("ours.jsonl"):
    if "profile" in r:
        print(f"profile {r['profile']:6} {r['ms']:9.4f} ms  {r['dispatch']}")
print()
for r in rows("matmul.jsonl"):
    print(f"matmul {r['kernel']:6} {r['layout']:3} {r['m']}x{r['k']}x{r['n']}: {r['gflops']:9.1f} GFLOP/s{'  (chosen)' if r['chosen'] else ''}")
PY
