// Subgroup broadcast, for CPU adapters with subgroups of at least 8 (the 8 invocations of a
// workgroup are one subgroup). Compiled after matmul_common.wgsl (parameters, bindings, loads,
// epilogue) and matmul.wgsl's helpers.
//
// A workgroup of 8 computes a 32×64 tile of C; invocation l owns the columns col0 + 8l .. + 8
// of all 32 rows (64 vec4 accumulators). Per k, each invocation loads 4 values of op(A) (rows
// l, l + 8, l + 16, l + 24) and its own 8 of op(B); subgroupBroadcast hands every invocation
// all 32 values of op(A): 12 loads per 256 FMAs, where on lavapipe a load costs far more than
// a broadcast. Broadcasts need a constant lane, so the 32 rows are spelled out below (rows
// r = 8q + l: `s{r} = subgroupBroadcast(a{q}, l)`). The stores run in loops LLVM keeps
// rolled, a row per pass, so the epilogue is inlined once (unrolled, 256 copies of it took
// minutes to compile). Any shape and every epilogue; the bias gradient's row of ones is not a
// row of the tiles: each invocation sums its op(B) values as it loads them, and the first row
// of tiles stores the sums.
@compute @workgroup_size(LANES)
fn matmul_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let tile = start_tile(wid, nwg);
    if tile == NO_TILE {
        return;
    }
    subgroup_tile(tile, lane);
}

// One tile of C, by the invocation in lane `lane` (the grouped dispatch's mixed entry point
// calls it too, for the products it runs with this kernel).
fn subgroup_tile(tile: u32, lane: u32) {
    let row0 = (tile / params.tiles_n) * (4u * LANES);
    let col0 = (tile % params.tiles_n) * (8u * LANES) + lane * 8u;
    let last_row = params.m - 1u;
    let last_col = params.n - 1u;
    let ra0 = min(row0 + lane, last_row);
    let ra1 = min(row0 + 8u + lane, last_row);
    let ra2 = min(row0 + 16u + lane, last_row);
    let ra3 = min(row0 + 24u + lane, last_row);
    let c0 = min(col0, last_col);
    let c1 = min(col0 + 1u, last_col);
    let c2 = min(col0 + 2u, last_col);
    let c3 = min(col0 + 3u, last_col);
    let c4 = min(col0 + 4u, last_col);
    let c5 = min(col0 + 5u, last_col);
    let c6 = min(col0 + 6u, last_col);
    let c7 = min(col0 + 7u, last_col);
    // lo{r} / hi{r}: row r of the tile, columns col0.. / col0 + 4..
    var lo0 = vec4<f32>(0.0); var hi0 = vec4<f32>(0.0);
    var lo1 = vec4<f32>(0.0); var hi1 = vec4<f32>(0.0);
    var lo2 = vec4<f32>(0.0); var hi2 = vec4<f32>(0.0);
    var lo3 = vec4<f32>(0.0); var hi3 = vec4<f32>(0.0);
    var lo4 = vec4<f32>(0.0); var hi4 = vec4<f32>(0.0);
    var lo5 = vec4<f32>(0.0); var hi5 = vec4<f32>(0.0);
    var lo6 = vec4<f32>(0.0); var hi6 = vec4<f32>(0.0);
    var lo7 = vec4<f32>(0.0); var hi7 = vec4<f32>(0.0);
    var lo8 = vec4<f32>(0.0); var hi8 = vec4<f32>(0.0);
    var lo9 = vec4<f32>(0.0); var hi9 = vec4<f32>(0.0);
    var lo10 = vec4<f32>(0.0); var hi10 = vec4<f32>(0.0);
    var lo11 = vec4<f32>(0.0); var hi11 = vec4<f32>(0.0);
    var lo12 = vec4<f32>(0.0); var hi12 = vec4<f32>(0.0);
    var lo13 = vec4<f32>(0.0); var hi13 = vec4<f32>(0.0);
    var lo14 = vec4<f32>(0.0); var hi14 = vec4<f32>(0.0);
    var lo15 = vec4<f32>(0.0); var hi15 = vec4<f32>(0.0);
    var lo16 = vec4<f32>(0.0); var hi16 = vec4<f32>(0.0);
    var lo17 = vec4<f32>(0.0); var hi17 = vec4<f32>(0.0);
    var lo18 = vec4<f32>(0.0); var hi18 = vec4<f32>(0.0);
    var lo19 = vec4<f32>(0.0); var hi19 = vec4<f32>(0.0);
    var lo20 = vec4<f32>(0.0); var hi20 = vec4<f32>(0.0);
    var lo21 = vec4<f32>(0.0); var hi21 = vec4<f32>(0.0);
    var lo22 = vec4<f32>(0.0); var hi22 = vec4<f32>(0.0);
    var lo23 = vec4<f32>(0.0); var hi23 = vec4<f32>(0.0);
    var lo24 = vec4<f32>(0.0); var hi24 = vec4<f32>(0.0);
    var lo25 = vec4<f32>(0.0); var hi25 = vec4<f32>(0.0);
    var lo26 = vec4<f32>(0.0); var hi26 = vec4<f32>(0.0);
    var lo27 = vec4<f32>(0.0); var hi27 = vec4<f32>(0.0);
    var lo28 = vec4<f32>(0.0); var hi28 = vec4<f32>(0.0);
    var lo29 = vec4<f32>(0.0); var hi29 = vec4<f32>(0.0);
    var lo30 = vec4<f32>(0.0); var hi30 = vec4<f32>(0.0);
    var lo31 = vec4<f32>(0.0); var hi31 = vec4<f32>(0.0);
    // With a bias gradient (rows = m + 1), op(B)'s column sums ride along: the row of ones.
    let with_bias = params.rows > params.m;
    var sum_lo = vec4<f32>(0.0);
    var sum_hi = vec4<f32>(0.0);
    for (var kk = 0u; kk < params.k; kk++) {
        let a0 = a_at(ra0, kk);
        let a1 = a_at(ra1, kk);
        let a2 = a_at(ra2, kk);
        let a3 = a_at(ra3, kk);
        let b_lo = vec4<f32>(b_at(kk, c0), b_at(kk, c1), b_at(kk, c2), b_at(kk, c3));
        let b_hi = vec4<f32>(b_at(kk, c4), b_at(kk, c5), b_at(kk, c6), b_at(kk, c7));
        if with_bias {
            sum_lo += b_lo;
            sum_hi += b_hi;
        }
        let s0 = vec4<f32>(subgroupBroadcast(a0, 0u));
        lo0 = fma(s0, b_lo, lo0);
        hi0 = fma(s0, b_hi, hi0);
        let s1 = vec4<f32>(subgroupBroadcast(a0, 1u));
        lo1 = fma(s1, b_lo, lo1);
        hi1 = fma(s1, b_hi, hi1);
        let s2 = vec4<f32>(subgroupBroadcast(a0, 2u));
        lo2 = fma(s2, b_lo, lo2);
        hi2 = fma(s2, b_hi, hi2);
        let s3 = vec4<f32>(subgroupBroadcast(a0, 3u));
        lo3 = fma(s3, b_lo, lo3);
        hi3 = fma(s3, b_hi, hi3);
        let s4 = vec4<f32>(subgroupBroadcast(a0, 4u));
        lo4 = fma(s4, b_lo, lo4);
        hi4 = fma(s4, b_hi, hi4);
        let s5 = vec4<f32>(subgroupBroadcast(a0, 5u));
        lo5 = fma(s5, b_lo, lo5);
        hi5 = fma(s5, b_hi, hi5);
        let s6 = vec4<f32>(subgroupBroadcast(a0, 6u));
        lo6 = fma(s6, b_lo, lo6);
        hi6 = fma(s6, b_hi, hi6);
        let s7 = vec4<f32>(subgroupBroadcast(a0, 7u));
        lo7 = fma(s7, b_lo, lo7);
        hi7 = fma(s7, b_hi, hi7);
        let s8 = vec4<f32>(subgroupBroadcast(a1, 0u));
        lo8 = fma(s8, b_lo, lo8);
        hi8 = fma(s8, b_hi, hi8);
        let s9 = vec4<f32>(subgroupBroadcast(a1, 1u));
        lo9 = fma(s9, b_lo, lo9);
        hi9 = fma(s9, b_hi, hi9);
        let s10 = vec4<f32>(subgroupBroadcast(a1, 2u));
        lo10 = fma(s10, b_lo, lo10);
        hi10 = fma(s10, b_hi, hi10);
        let s11 = vec4<f32>(subgroupBroadcast(a1, 3u));
        lo11 = fma(s11, b_lo, lo11);
        hi11 = fma(s11, b_hi, hi11);
        let s12 = vec4<f32>(subgroupBroadcast(a1, 4u));
        lo12 = fma(s12, b_lo, lo12);
        hi12 = fma(s12, b_hi, hi12);
        let s13 = vec4<f32>(subgroupBroadcast(a1, 5u));
        lo13 = fma(s13, b_lo, lo13);
        hi13 = fma(s13, b_hi, hi13);
        let s14 = vec4<f32>(subgroupBroadcast(a1, 6u));
        lo14 = fma(s14, b_lo, lo14);
        hi14 = fma(s14, b_hi, hi14);
        let s15 = vec4<f32>(subgroupBroadcast(a1, 7u));
        lo15 = fma(s15, b_lo, lo15);
        hi15 = fma(s15, b_hi, hi15);
        let s16 = vec4<f32>(subgroupBroadcast(a2, 0u));
        lo16 = fma(s16, b_lo, lo16);
        hi16 = fma(s16, b_hi, hi16);
        let s17 = vec4<f32>(subgroupBroadcast(a2, 1u));
        lo17 = fma(s17, b_lo, lo17);
        hi17 = fma(s17, b_hi, hi17);
        let s18 = vec4<f32>(subgroupBroadcast(a2, 2u));
        lo18 = fma(s18, b_lo, lo18);
        hi18 = fma(s18, b_hi, hi18);
        let s19 = vec4<f32>(subgroupBroadcast(a2, 3u));
        lo19 = fma(s19, b_lo, lo19);
        hi19 = fma(s19, b_hi, hi19);
        let s20 = vec4<f32>(subgroupBroadcast(a2, 4u));
        lo20 = fma(s20, b_lo, lo20);
        hi20 = fma(s20, b_hi, hi20);
        let s21 = vec4<f32>(subgroupBroadcast(a2, 5u));
        lo21 = fma(s21, b_lo, lo21);
        hi21 = fma(s21, b_hi, hi21);
        let s22 = vec4<f32>(subgroupBroadcast(a2, 6u));
        lo22 = fma(s22, b_lo, lo22);
        hi22 = fma(s22, b_hi, hi22);
        let s23 = vec4<f32>(subgroupBroadcast(a2, 7u));
        lo23 = fma(s23, b_lo, lo23);
        hi23 = fma(s23, b_hi, hi23);
        let s24 = vec4<f32>(subgroupBroadcast(a3, 0u));
        lo24 = fma(s24, b_lo, lo24);
        hi24 = fma(s24, b_hi, hi24);
        let s25 = vec4<f32>(subgroupBroadcast(a3, 1u));
        lo25 = fma(s25, b_lo, lo25);
        hi25 = fma(s25, b_hi, hi25);
        let s26 = vec4<f32>(subgroupBroadcast(a3, 2u));
        lo26 = fma(s26, b_lo, lo26);
        hi26 = fma(s26, b_hi, hi26);
        let s27 = vec4<f32>(subgroupBroadcast(a3, 3u));
        lo27 = fma(s27, b_lo, lo27);
        hi27 = fma(s27, b_hi, hi27);
        let s28 = vec4<f32>(subgroupBroadcast(a3, 4u));
        lo28 = fma(s28, b_lo, lo28);
        hi28 = fma(s28, b_hi, hi28);
        let s29 = vec4<f32>(subgroupBroadcast(a3, 5u));
        lo29 = fma(s29, b_lo, lo29);
        hi29 = fma(s29, b_hi, hi29);
        let s30 = vec4<f32>(subgroupBroadcast(a3, 6u));
        lo30 = fma(s30, b_lo, lo30);
        hi30 = fma(s30, b_hi, hi30);
        let s31 = vec4<f32>(subgroupBroadcast(a3, 7u));
        lo31 = fma(s31, b_lo, lo31);
        hi31 = fma(s31, b_hi, hi31);
    }
    if col0 >= params.n {
        return;
    }
    // Rows of the tile below m, one per pass, then (with a bias gradient, in the first row of
    // tiles) the row of ones from the sums. One call of `store` in loops LLVM keeps rolled (no
    // bound is a constant): every call inlines the store's epilogue (the grouped dispatch's is
    // each optimizer's update), and five copies of it, in the mixed kernel beside the lanes
    // kernel's, took lavapipe ~10 s to compile on a cold cache. Each pass picks its row's two
    // vec4s by a `switch` on the pass (the same for every lane), not by indexing an array of
    // the accumulators: lavapipe keeps such an array in per-lane memory and reads it back by
    // gathers, which cost a third of a 32×64 tile at K = 32 (small×40's step, each dispatch
    // alone: 2.50 → 1.97 ms, BENCHMARKS.md session 12); a switch per vec4 instead of per row
    // cost 5% more, one per element 30% more.
    let count = select(0u, min(row0 + 32u, params.m) - row0, row0 < params.m);
    let rows = count + select(0u, 1u, with_bias && row0 == 0u);
    for (var i = 0u; i < rows; i++) {
        var row = row0 + i;
        var lo = sum_lo;
        var hi = sum_hi;
        // past the tile's rows below m: the bias row (the default case)
        switch select(i, 32u, i >= count) {
            case 0u: { lo = lo0; hi = hi0; } case 1u: { lo = lo1; hi = hi1; }
            case 2u: { lo = lo2; hi = hi2; } case 3u: { lo = lo3; hi = hi3; }
            case 4u: { lo = lo4; hi = hi4; } case 5u: { lo = lo5; hi = hi5; }
            case 6u: { lo = lo6; hi = hi6; } case 7u: { lo = lo7; hi = hi7; }
            case 8u: { lo = lo8; hi = hi8; } case 9u: { lo = lo9; hi = hi9; }
            case 10u: { lo = lo10; hi = hi10; } case 11u: { lo = lo11; hi = hi11; }
            case 12u: { lo = lo12; hi = hi12; } case 13u: { lo = lo13; hi = hi13; }
            case 14u: { lo = lo14; hi = hi14; } case 15u: { lo = lo15; hi = hi15; }
            case 16u: { lo = lo16; hi = hi16; } case 17u: { lo = lo17; hi = hi17; }
            case 18u: { lo = lo18; hi = hi18; } case 19u: { lo = lo19; hi = hi19; }
            case 20u: { lo = lo20; hi = hi20; } case 21u: { lo = lo21; hi = hi21; }
            case 22u: { lo = lo22; hi = hi22; } case 23u: { lo = lo23; hi = hi23; }
            case 24u: { lo = lo24; hi = hi24; } case 25u: { lo = lo25; hi = hi25; }
            case 26u: { lo = lo26; hi = hi26; } case 27u: { lo = lo27; hi = hi27; }
            case 28u: { lo = lo28; hi = hi28; } case 29u: { lo = lo29; hi = hi29; }
            case 30u: { lo = lo30; hi = hi30; } case 31u: { lo = lo31; hi = hi31; }
            default: {
                row = params.m; // the bias gradient's row
            }
        }
        let width = min(8u, params.n - col0);
        for (var j = 0u; j < width; j++) {
            store(row, col0 + j, component(select(hi, lo, j < 4u), j % 4u));
        }
    }
}
