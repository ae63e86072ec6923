// Matrix multiply, the three layouts backprop needs, without materialising a transpose:
//   C (M,N) = epilogue(op(A) (M,K) · op(B) (K,N))   [+ C when params.accumulate != 0]
// A is stored (M,K), or (K,M) when TRANS_A (dW = Xᵀ·dY).
// B is stored (K,N), or (N,K) when TRANS_B (dX = dY·Wᵀ).
// Workgroups are numbered linearly over a 2-D grid (x fastest) so that outputs needing more
// than 65535 workgroups still dispatch; tiles run row-major over C.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// Rows of invocations in a matmul_vec4 workgroup (each covers 8 rows of C). Small on CPU
// adapters, where a workgroup runs on one core and more of them spread over the cores.
override VEC4_WG_ROWS: u32 = 8u;
// matmul_lanes with the lanes of a workgroup running down the rows, for narrow outputs: idle
// lanes cost as much as busy ones on CPU adapters.
override LANES_DOWN_ROWS: bool = false;


// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first (its
// product's, in a grouped dispatch). The bindings are declared in Rust
// (src/ops/matmul_kernels.rs and matmul_grouped.rs), one set per module variant.
var<private> params: MatmulParams;

// Where this workgroup's model starts in each binding.
var<private> a_base: u32;
var<private> b_base: u32;
var<private> c_base: u32;
var<private> bias_base: u32;
var<private> saved_base: u32;
var<private> d_bias_base: u32;
// This workgroup's model (the grid's z).
var<private> current_model: u32;

// No tile for this workgroup: its model sits the step out, or it is past the last tile.
const NO_TILE: u32 = 0xffffffffu;

// Each kernel file reads its operands through a_at/b_at (and a4_load/b4_load), and stores
// through `store`; what those do is the module variant's, the file compiled between this one
// and the kernels': matmul_one.wgsl (one product; then matmul_store.wgsl, or matmul_head.wgsl
// for a training step's output layer) or matmul_grouped.wgsl (several weight gradients with
// the optimizer's update in the epilogue).

fn a_at(row: u32, kk: u32) -> f32 {
    if row >= params.m {
        return 1.0; // the row of ones (row == m < rows)
    }
    if TRANS_A {
        return a_load(a_base + kk * params.m + row);
    }
    return a_load(a_base + row * params.k + kk);
}

fn b_at(kk: u32, col: u32) -> f32 {
    if TRANS_B {
        return b_load(b_base + col * params.k + kk);
    }
    return b_load(b_base + kk * params.n + col);
}

// Component j of v by selects, not a dynamic index (which lavapipe lowers to memory).
fn component(v: vec4<f32>, j: u32) -> f32 {
    return select(select(v.w, v.z, j == 2u), select(v.y, v.x, j == 0u), j < 2u);
}
