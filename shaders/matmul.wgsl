// Matrix multiply, the three layouts backprop needs, without materialising a transpose:
//   C (M,N) = op(A) (M,K) · op(B) (K,N)   [+ C when params.accumulate != 0]
// A is stored (M,K), or (K,M) when TRANS_A (dW = Xᵀ·dY).
// B is stored (K,N), or (N,K) when TRANS_B (dX = dY·Wᵀ).
// Workgroups are numbered linearly over a 2-D grid (x fastest) so that outputs needing more
// than 65535 workgroups still dispatch; tiles run row-major over C.

override TRANS_A: bool = false;
override TRANS_B: bool = false;

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    accumulate: u32,
    tiles_n: u32, // tiles across a row of C
    tiles: u32,   // tiles in all
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
// The same A and B seen as vec4s, for matmul_vec4 (its caller guarantees the alignment).
@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;

fn a_at(row: u32, kk: u32) -> f32 {
    if TRANS_A {
        return a[kk * params.m + row];
    }
    return a[row * params.k + kk];
}

fn b_at(kk: u32, col: u32) -> f32 {
    if TRANS_B {
        return b[col * params.k + kk];
    }
    return b[kk * params.n + col];
}

fn store(row: u32, col: u32, value: f32) {
    let i = row * params.n + col;
    if params.accumulate != 0u {
        c[i] = c[i] + value;
    } else {
        c[i] = value;
    }
}

// The oracle: one output per invocation, a plain loop over K. Every faster kernel is tested
// against this one.
@compute @workgroup_size(16, 16)
fn matmul_naive(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = wid.x + nwg.x * wid.y;
    if tile >= params.tiles {
        return;
    }
    let row = (tile / params.tiles_n) * 16u + lid.y;
    let col = (tile % params.tiles_n) * 16u + lid.x;
    if row >= params.m || col >= params.n {
        return;
    }
    var sum = 0.0;
    for (var kk = 0u; kk < params.k; kk++) {
        sum += a_at(row, kk) * b_at(kk, col);
    }
    store(row, col, sum);
}

// Register-blocked: each invocation accumulates a 4×4 block of C held in registers, the
// workgroup a 64×64 tile. The block's rows and columns are strided by 16 so that
// neighbouring invocations touch neighbouring addresses. No workgroup memory: on CPU
// adapters (lavapipe) that is what runs fastest, and it is a fair start on GPUs.
// Rows and columns past the edge are clamped for loading (so the K loop needs no bounds
// checks) and skipped at the store.
@compute @workgroup_size(16, 16)
fn matmul_blocked(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = wid.x + nwg.x * wid.y;
    if tile >= params.tiles {
        return;
    }
    let row0 = (tile / params.tiles_n) * 64u + lid.y;
    let col0 = (tile % params.tiles_n) * 64u + lid.x;
    if row0 >= params.m || col0 >= params.n {
        return;
    }
    let last_row = params.m - 1u;
    let last_col = params.n - 1u;
    let rows = vec4<u32>(
        min(row0, last_row),
        min(row0 + 16u, last_row),
        min(row0 + 32u, last_row),
        min(row0 + 48u, last_row),
    );
    let cols = vec4<u32>(
        min(col0, last_col),
        min(col0 + 16u, last_col),
        min(col0 + 32u, last_col),
        min(col0 + 48u, last_col),
    );
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < params.k; kk++) {
        let bv = vec4<f32>(b_at(kk, cols.x), b_at(kk, cols.y), b_at(kk, cols.z), b_at(kk, cols.w));
        acc0 = fma(vec4<f32>(a_at(rows.x, kk)), bv, acc0);
        acc1 = fma(vec4<f32>(a_at(rows.y, kk)), bv, acc1);
        acc2 = fma(vec4<f32>(a_at(rows.z, kk)), bv, acc2);
        acc3 = fma(vec4<f32>(a_at(rows.w, kk)), bv, acc3);
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 16u * i;
        if row < params.m {
            for (var j = 0u; j < 4u; j++) {
                let col = col0 + 16u * j;
                if col < params.n {
                    store(row, col, accs[i][j]);
                }
            }
        }
    }
}


// vec4 loads and an 8×8 register block per invocation, 64×64 per workgroup, no workgroup
// memory. On CPU adapters every storage load costs about the same whatever its width, so
// this kernel's 4 vec4 loads per k for 64 FMAs beat matmul_blocked's 8 scalar loads for 16.
// Its caller guarantees: K % 4 == 0; N % 4 == 0 unless TRANS_B; M % 4 == 0 if TRANS_A.
// K is walked in chunks of 4: a_chunk[i] holds A(row i, k..k+4), b_lo/b_hi[kk] hold
// B(k+kk, cols 0..4 / 4..8) of the block.
@compute @workgroup_size(8, 8)
fn matmul_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = wid.x + nwg.x * wid.y;
    if tile >= params.tiles {
        return;
    }
    let row0 = (tile / params.tiles_n) * 64u + lid.y * 8u;
    let col0 = (tile % params.tiles_n) * 64u + lid.x * 8u;
    if row0 >= params.m || col0 >= params.n {
        return;
    }
    let m = params.m;
    let n = params.n;
    let k4 = params.k / 4u;
    // Clamped so loads stay in bounds; the clamped outputs are never stored.
    var rows: array<u32, 8>;
    var cols: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        rows[i] = min(row0 + i, m - 1u);
        cols[i] = min(col0 + i, n - 1u);
    }
    let row_hi = min(row0 + 4u, m - 4u);
    let col_hi = min(col0 + 4u, n - 4u);

    var acc_lo: array<vec4<f32>, 8>;
    var acc_hi: array<vec4<f32>, 8>;
    for (var kc = 0u; kc < k4; kc++) {
        let k = kc * 4u;
        var a_chunk: array<vec4<f32>, 8>;
        if TRANS_A {
            for (var kk = 0u; kk < 4u; kk++) {
                let lo = a4[((k + kk) * m + row0) / 4u];
                let hi = a4[((k + kk) * m + row_hi) / 4u];
                a_chunk[0][kk] = lo.x; a_chunk[1][kk] = lo.y; a_chunk[2][kk] = lo.z; a_chunk[3][kk] = lo.w;
                a_chunk[4][kk] = hi.x; a_chunk[5][kk] = hi.y; a_chunk[6][kk] = hi.z; a_chunk[7][kk] = hi.w;
            }
        } else {
            for (var i = 0u; i < 8u; i++) {
                a_chunk[i] = a4[rows[i] * kc_stride() + kc];
            }
        }
        var b_lo: array<vec4<f32>, 4>;
        var b_hi: array<vec4<f32>, 4>;
        if TRANS_B {
            var col_chunk: array<vec4<f32>, 8>;
            for (var j = 0u; j < 8u; j++) {
                col_chunk[j] = b4[cols[j] * kc_stride() + kc];
            }
            for (var kk = 0u; kk < 4u; kk++) {
                b_lo[kk] = vec4<f32>(col_chunk[0][kk], col_chunk[1][kk], col_chunk[2][kk], col_chunk[3][kk]);
                b_hi[kk] = vec4<f32>(col_chunk[4][kk], col_chunk[5][kk], col_chunk[6][kk], col_chunk[7][kk]);
            }
        } else {
            for (var kk = 0u; kk < 4u; kk++) {
                b_lo[kk] = b4[((k + kk) * n + col0) / 4u];
                b_hi[kk] = b4[((k + kk) * n + col_hi) / 4u];
            }
        }
        for (var i = 0u; i < 8u; i++) {
            for (var kk = 0u; kk < 4u; kk++) {
                let av = vec4<f32>(a_chunk[i][kk]);
                acc_lo[i] = fma(av, b_lo[kk], acc_lo[i]);
                acc_hi[i] = fma(av, b_hi[kk], acc_hi[i]);
            }
        }
    }
    for (var i = 0u; i < 8u; i++) {
        let row = row0 + i;
        if row < m {
            for (var j = 0u; j < 4u; j++) {
                if col0 + j < n {
                    store(row, col0 + j, acc_lo[i][j]);
                }
                if col0 + 4u + j < n {
                    store(row, col0 + 4u + j, acc_hi[i][j]);
                }
            }
        }
    }
}

// vec4s per row of K elements.
fn kc_stride() -> u32 {
    return params.k / 4u;
}

