// Naive (the oracle) and vec4 (register-blocked, for GPUs) matmuls, plus matmul_lanes, the
// kernel for CPU adapters. Compiled after matmul_common.wgsl (parameters, bindings, loads, epilogue).

// The oracle: one output per invocation, a plain loop over K. Every faster kernel is tested
// against this one.
@compute @workgroup_size(NAIVE_TILE, NAIVE_TILE)
fn matmul_naive(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = start_tile(wid, nwg);
    if tile == NO_TILE {
        return;
    }
    let row = (tile / params.tiles_n) * NAIVE_TILE + lid.y;
    let col = (tile % params.tiles_n) * NAIVE_TILE + lid.x;
    if row >= params.rows || col >= params.n {
        return;
    }
    var sum = 0.0;
    for (var kk = 0u; kk < params.k; kk++) {
        sum += a_at(row, kk) * b_at(kk, col);
    }
    store(row, col, sum);
}

// vec4 loads and an 8×8 register block per invocation, (8·VEC4_WG_ROWS)×64 per workgroup, no workgroup
// memory. On CPU adapters every storage load costs about the same whatever its width, so
// this kernel's 4 vec4 loads per k for 64 FMAs beat 8 scalar loads for 16.
// Its caller guarantees: K % 4 == 0; N % 4 == 0 unless TRANS_B; M % 4 == 0 if TRANS_A.
// K is walked in chunks of 4. Everything is spelled out in scalar variables (no private
// arrays, no dynamic component indices): lavapipe turns those into per-lane memory traffic.

// The 4 k-values of one row of A in a chunk, times the chunk's 4 rows of B (4 columns each).
fn fma_chunk(acc: vec4<f32>, a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(a.w), b3, fma(vec4<f32>(a.z), b2, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.x), b0, acc))));
}

@compute @workgroup_size(LANES, VEC4_WG_ROWS)
fn matmul_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = start_tile(wid, nwg);
    if tile == NO_TILE {
        return;
    }
    let row0 = (tile / params.tiles_n) * (8u * VEC4_WG_ROWS) + lid.y * 8u;
    let col0 = (tile % params.tiles_n) * (8u * LANES) + lid.x * 8u;
    if row0 >= params.m || col0 >= params.n {
        return;
    }
    let m = params.m;
    let n = params.n;
    let k4 = params.k / 4u;
    let a4_base = a_base / 4u; // strides are multiples of 4 for this kernel
    let b4_base = b_base / 4u;
    // Clamped so loads stay in bounds; the clamped outputs are never stored.
    let last_row = m - 1u;
    let last_col = n - 1u;
    let r0 = row0;
    let r1 = min(row0 + 1u, last_row);
    let r2 = min(row0 + 2u, last_row);
    let r3 = min(row0 + 3u, last_row);
    let r4 = min(row0 + 4u, last_row);
    let r5 = min(row0 + 5u, last_row);
    let r6 = min(row0 + 6u, last_row);
    let r7 = min(row0 + 7u, last_row);
    let c0 = col0;
    let c1 = min(col0 + 1u, last_col);
    let c2 = min(col0 + 2u, last_col);
    let c3 = min(col0 + 3u, last_col);
    let c4 = min(col0 + 4u, last_col);
    let c5 = min(col0 + 5u, last_col);
    let c6 = min(col0 + 6u, last_col);
    let c7 = min(col0 + 7u, last_col);
    // With TRANS_A rows are read 4 at a time (M % 4 == 0), likewise columns without TRANS_B.
    let row_hi = select(row0, min(row0 + 4u, m - 4u), TRANS_A);
    let col_hi = select(col0, min(col0 + 4u, n - 4u), !TRANS_B);

    var lo0 = vec4<f32>(0.0); var lo1 = vec4<f32>(0.0); var lo2 = vec4<f32>(0.0); var lo3 = vec4<f32>(0.0);
    var lo4 = vec4<f32>(0.0); var lo5 = vec4<f32>(0.0); var lo6 = vec4<f32>(0.0); var lo7 = vec4<f32>(0.0);
    var hi0 = vec4<f32>(0.0); var hi1 = vec4<f32>(0.0); var hi2 = vec4<f32>(0.0); var hi3 = vec4<f32>(0.0);
    var hi4 = vec4<f32>(0.0); var hi5 = vec4<f32>(0.0); var hi6 = vec4<f32>(0.0); var hi7 = vec4<f32>(0.0);
    for (var kc = 0u; kc < k4; kc++) {
        let k = kc * 4u;
        // a0..a7: rows r0..r7 of op(A), each holding its 4 k-values of this chunk.
        var a0: vec4<f32>; var a1: vec4<f32>; var a2: vec4<f32>; var a3: vec4<f32>;
        var a4v: vec4<f32>; var a5: vec4<f32>; var a6: vec4<f32>; var a7: vec4<f32>;
        if TRANS_A {
            // A stored (K,M): each load is 4 consecutive rows at one k; transpose in registers.
            let l0 = a4[a4_base + (k * m + row0) / 4u];
            let l1 = a4[a4_base + ((k + 1u) * m + row0) / 4u];
            let l2 = a4[a4_base + ((k + 2u) * m + row0) / 4u];
            let l3 = a4[a4_base + ((k + 3u) * m + row0) / 4u];
            let h0 = a4[a4_base + (k * m + row_hi) / 4u];
            let h1 = a4[a4_base + ((k + 1u) * m + row_hi) / 4u];
            let h2 = a4[a4_base + ((k + 2u) * m + row_hi) / 4u];
            let h3 = a4[a4_base + ((k + 3u) * m + row_hi) / 4u];
            a0 = vec4<f32>(l0.x, l1.x, l2.x, l3.x);
            a1 = vec4<f32>(l0.y, l1.y, l2.y, l3.y);
            a2 = vec4<f32>(l0.z, l1.z, l2.z, l3.z);
            a3 = vec4<f32>(l0.w, l1.w, l2.w, l3.w);
            a4v = vec4<f32>(h0.x, h1.x, h2.x, h3.x);
            a5 = vec4<f32>(h0.y, h1.y, h2.y, h3.y);
            a6 = vec4<f32>(h0.z, h1.z, h2.z, h3.z);
            a7 = vec4<f32>(h0.w, h1.w, h2.w, h3.w);
        } else {
            a0 = a4[a4_base + r0 * k4 + kc];
            a1 = a4[a4_base + r1 * k4 + kc];
            a2 = a4[a4_base + r2 * k4 + kc];
            a3 = a4[a4_base + r3 * k4 + kc];
            a4v = a4[a4_base + r4 * k4 + kc];
            a5 = a4[a4_base + r5 * k4 + kc];
            a6 = a4[a4_base + r6 * k4 + kc];
            a7 = a4[a4_base + r7 * k4 + kc];
        }
        // b_lo0..3 / b_hi0..3: rows k..k+3 of op(B), columns col0..col0+4 / col0+4..col0+8.
        var b_lo0: vec4<f32>; var b_lo1: vec4<f32>; var b_lo2: vec4<f32>; var b_lo3: vec4<f32>;
        var b_hi0: vec4<f32>; var b_hi1: vec4<f32>; var b_hi2: vec4<f32>; var b_hi3: vec4<f32>;
        if TRANS_B {
            // B stored (N,K): each load is one column's 4 k-values; transpose in registers.
            let q0 = b4[b4_base + c0 * k4 + kc];
            let q1 = b4[b4_base + c1 * k4 + kc];
            let q2 = b4[b4_base + c2 * k4 + kc];
            let q3 = b4[b4_base + c3 * k4 + kc];
            let q4 = b4[b4_base + c4 * k4 + kc];
            let q5 = b4[b4_base + c5 * k4 + kc];
            let q6 = b4[b4_base + c6 * k4 + kc];
            let q7 = b4[b4_base + c7 * k4 + kc];
            b_lo0 = vec4<f32>(q0.x, q1.x, q2.x, q3.x);
            b_lo1 = vec4<f32>(q0.y, q1.y, q2.y, q3.y);
            b_lo2 = vec4<f32>(q0.z, q1.z, q2.z, q3.z);
            b_lo3 = vec4<f32>(q0.w, q1.w, q2.w, q3.w);
            b_hi0 = vec4<f32>(q4.x, q5.x, q6.x, q7.x);
            b_hi1 = vec4<f32>(q4.y, q5.y, q6.y, q7.y);
            b_hi2 = vec4<f32>(q4.z, q5.z, q6.z, q7.z);
            b_hi3 = vec4<f32>(q4.w, q5.w, q6.w, q7.w);
        } else {
            b_lo0 = b4[b4_base + (k * n + col0) / 4u];
            b_lo1 = b4[b4_base + ((k + 1u) * n + col0) / 4u];
            b_lo2 = b4[b4_base + ((k + 2u) * n + col0) / 4u];
            b_lo3 = b4[b4_base + ((k + 3u) * n + col0) / 4u];
            b_hi0 = b4[b4_base + (k * n + col_hi) / 4u];
            b_hi1 = b4[b4_base + ((k + 1u) * n + col_hi) / 4u];
            b_hi2 = b4[b4_base + ((k + 2u) * n + col_hi) / 4u];
            b_hi3 = b4[b4_base + ((k + 3u) * n + col_hi) / 4u];
        }
        lo0 = fma_chunk(lo0, a0, b_lo0, b_lo1, b_lo2, b_lo3);
        hi0 = fma_chunk(hi0, a0, b_hi0, b_hi1, b_hi2, b_hi3);
        lo1 = fma_chunk(lo1, a1, b_lo0, b_lo1, b_lo2, b_lo3);
        hi1 = fma_chunk(hi1, a1, b_hi0, b_hi1, b_hi2, b_hi3);
        lo2 = fma_chunk(lo2, a2, b_lo0, b_lo1, b_lo2, b_lo3);
        hi2 = fma_chunk(hi2, a2, b_hi0, b_hi1, b_hi2, b_hi3);
        lo3 = fma_chunk(lo3, a3, b_lo0, b_lo1, b_lo2, b_lo3);
        hi3 = fma_chunk(hi3, a3, b_hi0, b_hi1, b_hi2, b_hi3);
        lo4 = fma_chunk(lo4, a4v, b_lo0, b_lo1, b_lo2, b_lo3);
        hi4 = fma_chunk(hi4, a4v, b_hi0, b_hi1, b_hi2, b_hi3);
        lo5 = fma_chunk(lo5, a5, b_lo0, b_lo1, b_lo2, b_lo3);
        hi5 = fma_chunk(hi5, a5, b_hi0, b_hi1, b_hi2, b_hi3);
        lo6 = fma_chunk(lo6, a6, b_lo0, b_lo1, b_lo2, b_lo3);
        hi6 = fma_chunk(hi6, a6, b_hi0, b_hi1, b_hi2, b_hi3);
        lo7 = fma_chunk(lo7, a7, b_lo0, b_lo1, b_lo2, b_lo3);
        hi7 = fma_chunk(hi7, a7, b_hi0, b_hi1, b_hi2, b_hi3);
    }
    // The 64 stores in a loop LLVM keeps rolled (its bound is not a constant): each store
    // inlines the epilogue, a switch over every activation, and 64 unrolled copies of it
    // took lavapipe's LLVM 74-78 s per layout on a cold cache. The block goes through a
    // private array once, after the K loop, where its cost is one write and one read per
    // output.
    let block = array<vec4<f32>, 16>(lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3, lo4, hi4, lo5, hi5, lo6, hi6, lo7, hi7);
    let count = min(64u, params.rows * 64u);
    for (var i = 0u; i < count; i++) {
        let row = row0 + i / 8u;
        let col = col0 + i % 8u;
        if row < params.rows && col < params.n {
            store(row, col, block[i / 4u][i % 4u]);
        }
    }
}

// For CPU adapters, cheap to compile: a workgroup of 8 invocations (one SIMD group on
// lavapipe) and a 4×4 block of C per invocation, in four vec4 accumulators, over a plain
// (not unrolled) loop on K. The unrolled 8×8 kernel above (and a former 32×64 one) spend ~25 s
// (and minutes) in LLVM's register allocator on a cold shader cache (64 or 256 live accumulators
// per lane spill); this one compiles in about a second. On lavapipe the cost is in the
// loads (8 per 16 FMAs here); a 16×1 block per lane (17 loads per 16 FMAs, 16 of them the
// same for all lanes) ran 2× slower, so the uniform loads are not cheaper there.
// Lanes run across the columns (lane l: columns col0 + l + 8j, a tile of 4 rows × 32
// columns), or with LANES_DOWN_ROWS down the rows (lane l: rows row0 + l + 8i, a tile of 32
// rows × 4 columns) for outputs narrower than 32 columns, where lanes across the columns
// would idle. Any shape, every epilogue, the bias gradient's row of ones (loads clamped at
// the edges, stores checked).
@compute @workgroup_size(LANES)
fn matmul_lanes(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = start_tile(wid, nwg);
    if tile == NO_TILE {
        return;
    }
    lanes_tile(tile, lid.x, LANES_DOWN_ROWS);
}

// One tile of C, by the invocation in lane `lane`, the lanes down the rows with `down` (the
// grouped dispatch's mixed entry point calls it too, for the products it runs with this
// kernel).
fn lanes_tile(tile: u32, lane: u32, down: bool) {
    var row0 = (tile / params.tiles_n) * 4u;
    var row_step = 1u;
    var col0 = (tile % params.tiles_n) * (4u * LANES) + lane;
    var col_step = LANES;
    if down {
        row0 = (tile / params.tiles_n) * (4u * LANES) + lane;
        row_step = LANES;
        col0 = (tile % params.tiles_n) * 4u;
        col_step = 1u;
    }
    let last_row = params.rows - 1u;
    let last_col = params.n - 1u;
    let r0 = min(row0, last_row);
    let r1 = min(row0 + row_step, last_row);
    let r2 = min(row0 + 2u * row_step, last_row);
    let r3 = min(row0 + 3u * row_step, last_row);
    let c0 = min(col0, last_col);
    let c1 = min(col0 + col_step, last_col);
    let c2 = min(col0 + 2u * col_step, last_col);
    let c3 = min(col0 + 3u * col_step, last_col);
    // acc_i: row i of the block, one component per column
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < params.k; kk++) {
        let b_row = vec4<f32>(b_at(kk, c0), b_at(kk, c1), b_at(kk, c2), b_at(kk, c3));
        acc0 = fma(vec4<f32>(a_at(r0, kk)), b_row, acc0);
        acc1 = fma(vec4<f32>(a_at(r1, kk)), b_row, acc1);
        acc2 = fma(vec4<f32>(a_at(r2, kk)), b_row, acc2);
        acc3 = fma(vec4<f32>(a_at(r3, kk)), b_row, acc3);
    }
    // The 16 stores in a loop LLVM does not unroll (its bound is not a constant): each store
    // inlines the whole epilogue, and sixteen copies of it cost more compile time than the
    // rest of the kernel. The row's vec4 is picked by a switch and its component by selects
    // (`component`), not by indexing: lavapipe lowers a dynamic index to per-lane memory.
    let count = min(16u, params.rows * 16u);
    for (var i = 0u; i < count; i++) {
        let row = row0 + (i / 4u) * row_step;
        let col = col0 + (i % 4u) * col_step;
        var v = acc3;
        switch i / 4u {
            case 0u: { v = acc0; }
            case 1u: { v = acc1; }
            case 2u: { v = acc2; }
            default: {}
        }
        if row < params.rows && col < params.n {
            store(row, col, component(v, i % 4u));
        }
    }
}
