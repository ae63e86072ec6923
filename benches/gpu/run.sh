#!/usr/bin/env bash
# Run ON the GPU machine from the repository root, after benches/gpu/prepare.sh here:
#   bash .device/run.sh
# Our workloads, the matmul kernels and the PyTorch peers (eager, CUDA graph, 40 stacked
# models) in one call; JSON lines into $OUT (or ./gpu-results), a summary table on stdout.
set -uo pipefail
dev=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$PWD/gpu-results}
mkdir -p "$out"
# A bare GPU machine has no Vulkan loader: unpack the carried one (and glvnd) into /.
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in "$dev"/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$nvidia_icd" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$nvidia_icd}
export WGPU_BACKEND=${WGPU_BACKEND:-vulkan}
# A dry run on a software adapter: WORKLOADS="xor small" SHAPES=64x64x64 bash .device/run.sh
workloads=${WORKLOADS:-xor small mnist wide xl}
(nvidia-smi -L 2>/dev/null || echo "no nvidia-smi") | tee "$out/device.txt"
step() { echo "== $*" >&2; }
step adapter;  "$dev/bin/adapter" 2>&1 | tee -a "$out/device.txt"
step compile;  "$dev/bin/compile_times" > "$out/compile.tsv" 2>&1
step matmul;   timeout 150 "$dev/bin/matmul_bench" --shapes "${SHAPES:-128x784x256,256x1024x1024,1024x256x1024,4096x4096x4096}" --kernels Vec4,Tiled,Naive,Lanes,LanesDown,Subgroup > "$out/matmul.jsonl"
for w in $workloads; do
  step "ours $w"; timeout 120 "$dev/bin/workloads" --workload "$w" --seconds 1 ${PROFILE:+--profile} >> "$out/ours.jsonl"
done
step "ours small x40"; timeout 60 "$dev/bin/workloads" --workload small --models 40 --seconds 1 >> "$out/ours.jsonl"
# the unfused step (3L + 1 dispatches) beside the fused one (2L), same run
for w in small mnist wide; do
  step "ours $w unfused"; WGPU_MLP_FUSED_STEP=0 timeout 60 "$dev/bin/workloads" --workload "$w" --seconds 1 |
    sed 's/"workload":"\([a-z]*\)"/"workload":"\1-unfused"/' >> "$out/ours.jsonl"
done
torch_list=$(echo $workloads | tr ' ' ',')
if [ -f "$dev/torch_peer.py" ] && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  step "torch eager";  timeout 150 python3 "$dev/torch_peer.py" --device cuda --workloads "$torch_list" --min-seconds 1 >> "$out/torch.jsonl"
  step "torch graph";  timeout 120 python3 "$dev/torch_peer.py" --device cuda --workloads "${torch_list/,xl/}" --min-seconds 1 --cuda-graph >> "$out/torch_graph.jsonl"
  step "torch x40";    timeout 60 python3 "$dev/torch_peer.py" --device cuda --workloads small --models 40 --min-seconds 1 >> "$out/torch.jsonl"
  step "torch x40 graph"; timeout 60 python3 "$dev/torch_peer.py" --device cuda --workloads small --models 40 --min-seconds 1 --cuda-graph >> "$out/torch_graph.jsonl"
else
  step "no PyTorch with CUDA here: peers skipped"
fi
step table
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p) if l.startswith("{")] if os.path.exists(p) else []
ours = {r["workload"]: r for r in rows("ours.jsonl") if "workload" in r}
key = lambda r: r.get("workload", "") + (f"x{r['models']}" if r.get("models", 1) > 1 else "")
eager = {key(r): r for r in rows("torch.jsonl")}
graph = {key(r): r for r in rows("torch_graph.jsonl")}
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
