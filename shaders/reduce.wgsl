// The deterministic end of every loss's forward kernel (src/ops/loss.rs `REDUCE`): one
// workgroup of REDUCE_THREADS invocations, each holding a partial sum, combined by a
// fixed-shape tree with no atomics, so the same inputs give the same bits on every run.

// Invocations in the reduction (a power of two, at most 1024). Few on CPU adapters, where
// each barrier switches every SIMD group of the workgroup in and out; as many as the device
// allows on GPUs, where one workgroup streams the whole batch (xl: 16.8M outputs).
override REDUCE_THREADS: u32 = 256u;

var<workgroup> partial: array<f32, 1024>;

// The sum of every invocation's `value`, valid in invocation 0. Call from uniform control
// flow with every invocation of the workgroup.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
    partial[lid] = value;
    workgroupBarrier();
    for (var width = REDUCE_THREADS / 2u; width > 0u; width >>= 1u) {
        if lid < width {
            partial[lid] += partial[lid + width];
        }
        workgroupBarrier();
    }
    return partial[0];
}
