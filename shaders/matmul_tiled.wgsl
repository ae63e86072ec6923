// Workgroup-memory tiled matmul for real GPUs. Compiled after matmul_common.wgsl
// (parameters, bindings, loads, epilogue).
//
// A 16×16 workgroup computes a 128×128 tile of C; invocation (tx, ty) an 8×8 block of it:
// rows 4·ty .. +4 and 64 + 4·ty .. +4, columns 4·tx .. +4 and 64 + 4·tx .. +4 (two 4-wide
// halves 64 apart, so a warp's workgroup-memory reads are consecutive vec4s). K is walked
// TILE_K at a time: the workgroup stages op(A)'s 128×TILE_K slice transposed ([k][row]) and
// op(B)'s TILE_K×128 slice ([k][col]) in workgroup memory as vec4s, so each k of the inner
// loop reads 4 vec4s for 64 FMAs. Global loads are vec4s where the layout and alignment allow
// (checked once per dispatch), scalar with zero fill at the edges otherwise: any shape, every
// epilogue, the bias gradient's row of ones (op(A)'s row m reads as 1). The next slice's
// global loads are issued before the current slice's products, so their latency hides behind
// the arithmetic.

const TILE_K: u32 = 16u;
// [k][row / 4] and [k][col / 4]: 32 vec4s per k.
var<workgroup> a_tile: array<vec4<f32>, 512>;
var<workgroup> b_tile: array<vec4<f32>, 512>;

// The tile and K, the same for the whole workgroup, as the uniformity analysis of WGSL
// compilers that check it (Chrome's Tint) can see: through workgroup memory and
// workgroupUniformLoad, not the private copy of the parameters each invocation makes.
var<workgroup> workgroup_tile: u32;
var<workgroup> workgroup_k: u32;

// Whether op(A) / op(B) can be read as aligned vec4s along their stored rows.
var<private> a_vec_ok: bool;
var<private> b_vec_ok: bool;

// A stored (M,K) (no TRANS_A): op(A)[row][kk .. kk+4].
fn a_run_k(row: u32, kk: u32) -> vec4<f32> {
    if a_vec_ok && row < params.m && kk + 3u < params.k {
        return a4_load((a_base + row * params.k + kk) / 4u);
    }
    var v = vec4<f32>(0.0);
    if row < params.rows {
        for (var j = 0u; j < 4u; j++) {
            if kk + j < params.k {
                v[j] = a_at(row, kk + j);
            }
        }
    }
    return v;
}

// A stored (K,M) (TRANS_A): op(A)[row .. row+4][kk].
fn a_run_rows(row: u32, kk: u32) -> vec4<f32> {
    if a_vec_ok && row + 3u < params.m && kk < params.k {
        return a4_load((a_base + kk * params.m + row) / 4u);
    }
    var v = vec4<f32>(0.0);
    if kk < params.k {
        for (var j = 0u; j < 4u; j++) {
            if row + j < params.rows {
                v[j] = a_at(row + j, kk);
            }
        }
    }
    return v;
}

// B stored (K,N) (no TRANS_B): op(B)[kk][col .. col+4].
fn b_run_cols(kk: u32, col: u32) -> vec4<f32> {
    if b_vec_ok && kk < params.k && col + 3u < params.n {
        return b4_load((b_base + kk * params.n + col) / 4u);
    }
    var v = vec4<f32>(0.0);
    if kk < params.k {
        for (var j = 0u; j < 4u; j++) {
            if col + j < params.n {
                v[j] = b_at(kk, col + j);
            }
        }
    }
    return v;
}

// B stored (N,K) (TRANS_B): op(B)[kk .. kk+4][col].
fn b_run_k(kk: u32, col: u32) -> vec4<f32> {
    if b_vec_ok && col < params.n && kk + 3u < params.k {
        return b4_load((b_base + col * params.k + kk) / 4u);
    }
    var v = vec4<f32>(0.0);
    if col < params.n {
        for (var j = 0u; j < 4u; j++) {
            if kk + j < params.k {
                v[j] = b_at(kk + j, col);
            }
        }
    }
    return v;
}

// The two runs of op(A) and two of op(B) one invocation loads per slice: 128×16 values of
// each, 512 vec4s, over 256 invocations.
struct Staged {
    a0: vec4<f32>,
    a1: vec4<f32>,
    b0: vec4<f32>,
    b1: vec4<f32>,
}

fn load_slice(tid: u32, row0: u32, col0: u32, k0: u32) -> Staged {
    var s: Staged;
    let e0 = tid;
    let e1 = tid + 256u;
    if TRANS_A {
        // (k, row quad): consecutive invocations read consecutive addresses
        s.a0 = a_run_rows(row0 + (e0 % 32u) * 4u, k0 + e0 / 32u);
        s.a1 = a_run_rows(row0 + (e1 % 32u) * 4u, k0 + e1 / 32u);
    } else {
        // (row, k quad)
        s.a0 = a_run_k(row0 + e0 / 4u, k0 + (e0 % 4u) * 4u);
        s.a1 = a_run_k(row0 + e1 / 4u, k0 + (e1 % 4u) * 4u);
    }
    if TRANS_B {
        // (col, k quad)
        s.b0 = b_run_k(k0 + (e0 % 4u) * 4u, col0 + e0 / 4u);
        s.b1 = b_run_k(k0 + (e1 % 4u) * 4u, col0 + e1 / 4u);
    } else {
        // (k, col quad)
        s.b0 = b_run_cols(k0 + e0 / 32u, col0 + (e0 % 32u) * 4u);
        s.b1 = b_run_cols(k0 + e1 / 32u, col0 + (e1 % 32u) * 4u);
    }
    return s;
}

// Writes a staged run of 4 k-values of one row (or column) into a [k][row / 4] tile.
fn scatter_k(tile: u32, e: u32, v: vec4<f32>) {
    let line = e / 4u; // row or column within the tile
    let k = (e % 4u) * 4u;
    let at = line / 4u;
    let lane = line % 4u;
    if tile == 0u {
        a_tile[k * 32u + at][lane] = v.x;
        a_tile[(k + 1u) * 32u + at][lane] = v.y;
        a_tile[(k + 2u) * 32u + at][lane] = v.z;
        a_tile[(k + 3u) * 32u + at][lane] = v.w;
    } else {
        b_tile[k * 32u + at][lane] = v.x;
        b_tile[(k + 1u) * 32u + at][lane] = v.y;
        b_tile[(k + 2u) * 32u + at][lane] = v.z;
        b_tile[(k + 3u) * 32u + at][lane] = v.w;
    }
}

fn store_slice(tid: u32, s: Staged) {
    let e0 = tid;
    let e1 = tid + 256u;
    if TRANS_A {
        // (k, row quad) is already the tile's order
        a_tile[e0] = s.a0;
        a_tile[e1] = s.a1;
    } else {
        scatter_k(0u, e0, s.a0);
        scatter_k(0u, e1, s.a1);
    }
    if TRANS_B {
        scatter_k(1u, e0, s.b0);
        scatter_k(1u, e1, s.b1);
    } else {
        b_tile[e0] = s.b0;
        b_tile[e1] = s.b1;
    }
}

// A 4×4 block of products: row i of the block in r_i, one component per column.
struct Block {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// block += a ⊗ b (a: 4 rows at one k, b: 4 columns at the same k).
fn outer(acc: Block, a: vec4<f32>, b: vec4<f32>) -> Block {
    return Block(
        fma(vec4<f32>(a.x), b, acc.r0),
        fma(vec4<f32>(a.y), b, acc.r1),
        fma(vec4<f32>(a.z), b, acc.r2),
        fma(vec4<f32>(a.w), b, acc.r3),
    );
}

// One invocation's 8×8 outputs: lo/hi the rows 4·ty.. or 64 + 4·ty.., _lo/_hi the columns
// 4·tx.. or 64 + 4·tx...
struct Blocks {
    lo_lo: Block,
    lo_hi: Block,
    hi_lo: Block,
    hi_hi: Block,
}

// acc += this invocation's share of one k: `at` indexes the k's 32 vec4s in both tiles.
fn multiply_k(acc: Blocks, at: u32, tx: u32, ty: u32) -> Blocks {
    let a_lo = a_tile[at + ty];
    let a_hi = a_tile[at + 16u + ty];
    let b_lo = b_tile[at + tx];
    let b_hi = b_tile[at + 16u + tx];
    return Blocks(outer(acc.lo_lo, a_lo, b_lo), outer(acc.lo_hi, a_lo, b_hi), outer(acc.hi_lo, a_hi, b_lo), outer(acc.hi_hi, a_hi, b_hi));
}

@compute @workgroup_size(TILED_TILE / 8u, TILED_TILE / 8u)
fn matmul_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    // The exit is the same for the whole workgroup, so every barrier below is reached by all
    // of its invocations or by none.
    let own_tile = start_tile(wid, nwg);
    if tid == 0u {
        workgroup_tile = own_tile;
        workgroup_k = params.k;
    }
    let tile = workgroupUniformLoad(&workgroup_tile);
    let k_total = workgroupUniformLoad(&workgroup_k);
    if tile == NO_TILE {
        return;
    }
    let row0 = (tile / params.tiles_n) * TILED_TILE;
    let col0 = (tile % params.tiles_n) * TILED_TILE;
    a_vec_ok = a_base % 4u == 0u && select(params.k, params.m, TRANS_A) % 4u == 0u;
    b_vec_ok = b_base % 4u == 0u && select(params.n, params.k, TRANS_B) % 4u == 0u;
    let tx = lid.x;
    let ty = lid.y;
    let zero = Block(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc = Blocks(zero, zero, zero, zero);
    var staged = load_slice(tid, row0, col0, 0u);
    for (var k0 = 0u; k0 < k_total; k0 += TILE_K) {
        workgroupBarrier(); // everyone is done reading the previous slice
        store_slice(tid, staged);
        workgroupBarrier();
        if k0 + TILE_K < params.k {
            staged = load_slice(tid, row0, col0, k0 + TILE_K);
        }
        // By hand, four k per pass: drivers need not unroll naga's loops.
        for (var kk = 0u; kk < TILE_K; kk += 4u) {
            let at = kk * 32u;
            acc = multiply_k(acc, at, tx, ty);
            acc = multiply_k(acc, at + 32u, tx, ty);
            acc = multiply_k(acc, at + 64u, tx, ty);
            acc = multiply_k(acc, at + 96u, tx, ty);
        }
    }
    // The 64 stores in a loop LLVM keeps rolled (its bound is not a constant), as in
    // matmul_vec4: unrolled, each inlined the epilogue's activation switch (23 s per layout
    // on a cold lavapipe cache). Block q of the four: rows +64 for q ≥ 2, columns +64 for
    // odd q; row (i / 4) % 4 and column i % 4 within it.
    let row_lo = row0 + 4u * ty;
    let col_lo = col0 + 4u * tx;
    let rows = array<vec4<f32>, 16>(
        acc.lo_lo.r0, acc.lo_lo.r1, acc.lo_lo.r2, acc.lo_lo.r3,
        acc.lo_hi.r0, acc.lo_hi.r1, acc.lo_hi.r2, acc.lo_hi.r3,
        acc.hi_lo.r0, acc.hi_lo.r1, acc.hi_lo.r2, acc.hi_lo.r3,
        acc.hi_hi.r0, acc.hi_hi.r1, acc.hi_hi.r2, acc.hi_hi.r3,
    );
    let count = min(64u, params.rows * 64u);
    for (var i = 0u; i < count; i++) {
        let q = i / 16u;
        let row = row_lo + select(0u, 64u, q >= 2u) + (i / 4u) % 4u;
        let col = col_lo + select(0u, 64u, (q & 1u) == 1u) + i % 4u;
        if row < params.rows && col < params.n {
            store(row, col, rows[i / 4u][i % 4u]);
        }
    }
}
