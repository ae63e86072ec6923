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
