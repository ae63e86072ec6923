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


// What happens to each product before it is stored, the fusions that save whole dispatches
// (EPILOGUE_* in src/ops/matmul.rs, emitted ahead of this file):
//   EPILOGUE_NONE       the product
//   EPILOGUE_BIAS       + bias[col]                     a linear layer
//   EPILOGUE_BIAS_ACT   act(· + bias[col])              a whole dense layer
//   EPILOGUE_ACT_GRAD   · act'(y), y = saved (M,N)      dX through an activation

// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first. The
// bindings (a, b, c, their vec4 views a4 and b4, the epilogue's bias and saved, d_bias,
// model_active) are declared once in src/ops/matmul.rs (`MatmulBindings`).
var<private> params: MatmulParams;

// Where this workgroup's model starts in each binding.
var<private> a_base: u32;
var<private> b_base: u32;
var<private> c_base: u32;
var<private> bias_base: u32;
var<private> saved_base: u32;
var<private> d_bias_base: u32;

// Whether this workgroup's model sits this step out.
fn model_skipped(model: u32) -> bool {
    return params.gated != 0u && model_active[model] == 0u;
}

fn load_params(model: u32) {
    params = params_buffer;
    a_base = model * params.a_stride;
    b_base = model * params.b_stride;
    c_base = model * params.c_stride;
    bias_base = model * params.bias_stride;
    saved_base = model * params.saved_stride;
    d_bias_base = model * params.d_bias_stride;
}

// No tile for this workgroup: its model sits the step out, or it is past the last tile.
const NO_TILE: u32 = 0xffffffffu;

// Every matmul kernel's start: its model's parameters loaded, and the tile of C this
// workgroup computes (tiles are numbered over a 2-D grid, x fastest), or NO_TILE.
fn start_tile(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    load_params(wid.z);
    if model_skipped(wid.z) {
        return NO_TILE;
    }
    let tile = wid.x + nwg.x * wid.y;
    if tile >= params.tiles {
        return NO_TILE;
    }
    return tile;
}

fn a_at(row: u32, kk: u32) -> f32 {
    if row >= params.m {
        return 1.0; // the row of ones (row == m < rows)
    }
    if TRANS_A {
        return a[a_base + kk * params.m + row];
    }
    return a[a_base + row * params.k + kk];
}

fn b_at(kk: u32, col: u32) -> f32 {
    if TRANS_B {
        return b[b_base + col * params.k + kk];
    }
    return b[b_base + kk * params.n + col];
}

fn store(row: u32, col: u32, product: f32) {
    if row >= params.m {
        let j = d_bias_base + col;
        if params.accumulate != 0u {
            d_bias[j] = d_bias[j] + product;
        } else {
            d_bias[j] = product;
        }
        return;
    }
    let i = c_base + row * params.n + col;
    var value = product;
    switch params.epilogue {
        case EPILOGUE_BIAS: {
            value += bias[bias_base + col];
        }
        case EPILOGUE_BIAS_ACT: {
            value = act_forward(params.activation, value + bias[bias_base + col]);
        }
        case EPILOGUE_ACT_GRAD: {
            value *= act_grad(params.activation, saved[saved_base + row * params.n + col]);
        }
        default: {}
    }
    if params.accumulate != 0u {
        c[i] = c[i] + value;
    } else {
        c[i] = value;
    }
}
