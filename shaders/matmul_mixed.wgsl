// The grouped weight gradients on CPU adapters with subgroups (after matmul_grouped.wgsl,
// matmul.wgsl and matmul_subgroup.wgsl): each product runs the kernel it runs unfused — the
// subgroup kernel for outputs 32 or more columns wide, the lanes kernel (lanes down the rows)
// for narrower ones — so a 10-column layer does not run 64-column tiles with 6 of 8 lanes
// idle, and each product gives the bits it gives alone. All three take LANES invocations, and
// each workgroup's product (params.mixed_kernel) is the same for all of them.
@compute @workgroup_size(LANES)
fn matmul_grouped_mixed(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let tile = start_tile(wid, nwg);
    if tile == NO_TILE {
        return;
    }
    // One call of each body: every call inlines the body and its stores' epilogue (here
    // each optimizer's update), which is what lavapipe spends its compile time on.
    if params.mixed_kernel == MIXED_SUBGROUP {
        subgroup_tile(tile, lane);
    } else {
        lanes_tile(tile, lane, params.mixed_kernel == MIXED_LANES_DOWN);
    }
}
