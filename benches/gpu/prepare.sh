#!/usr/bin/env bash
# Run HERE (the build machine): builds everything the GPU run needs into .device/ (git-ignored),
# with the Vulkan loader and glvnd libraries a bare NVIDIA machine lacks and the PyTorch peer.
# Then, on the GPU machine, one command: `bash .device/run.sh` (writes to $OUT, or ./gpu-results).
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device && mkdir -p .device/bin .device/debs
cargo build --release --example workloads --example matmul_bench --example compile_times --example adapter
for e in workloads matmul_bench compile_times adapter; do cp "target/release/examples/$e" .device/bin/; done
# The Vulkan loader and the glvnd libraries NVIDIA's Vulkan driver needs (the GPU machine has
# neither, and no network): downloaded as amd64 packages, unpacked there.
lists=$(mktemp -d)
o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
mkdir -p "$lists/partial"
apt-get $o update >/dev/null
(cd .device/debs && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
peer=../shared/bench/torch_peer.py
[ -f "$peer" ] && cp "$peer" .device/ || echo "no $peer: the PyTorch peers will be skipped" >&2
cp benches/gpu/run.sh .device/run.sh
du -sh .device
