// Several weight gradients in one dispatch, each with its optimizer update in the epilogue
// (compiled after matmul_common.wgsl and optim_rules.wgsl, before a kernel file). Product g
// (g < params_buffer[0].groups) reads its own operands, op(A) = Xᵀ from a / a_1 / a_2 / a_3
// and dY from b / b_1 / ..., and owns tiles tile_start .. tile_start + tiles of the grid; its
// gradient dW (and, in the row of ones, its bias gradient) lands in the flat gradient block
// `c` at c_offset (d_bias_offset), model m's block c_stride further on. Every element of a
// gradient is stored exactly once, by the workgroup that owns its tile and has summed all of
// K, so the store can apply the optimizer's rule to the parameter at the same index of the
// flat parameter block: the update is the separate update kernel's arithmetic on the same
// gradient, to the bit. A gradient is never accumulated here (the host checks).

// This workgroup's product, its model's optimizer settings and Adam state.
var<private> group: u32;
var<private> hyper: OptimizerHyperparams;
var<private> adam_state: ModelState;

// The loss of a step whose loss is read, from the weighted terms the output layer wrote,
// summed exactly as mse.wgsl's forward sums them (the same bits): params.reduce_threads
// partial sums, partial v the blocked sum (sum.wgsl) of terms v, v + T, v + 2T, ... in order,
// then reduce.wgsl's tree (width T/2, T/4, ..., 1), halved. Every invocation of the workgroup
// after the last tile computes it and writes the same value (no barrier, no workgroup memory:
// any kernel's workgroup can run it); the host keeps it to a few thousand terms.
fn sum_loss_terms(model: u32) {
    let head = params_buffer[0];
    let first = model * head.loss_terms_stride;
    let threads = head.reduce_threads;
    var partials: array<f32, 1024>;
    for (var v = 0u; v < threads; v++) {
        var sum = blocked_sum_new();
        for (var i = v; i < head.loss_terms; i += threads) {
            blocked_sum_add(&sum, loss_terms[first + i]);
        }
        partials[v] = blocked_sum_value(sum);
    }
    for (var width = threads / 2u; width > 0u; width >>= 1u) {
        for (var v = 0u; v < width; v++) {
            partials[v] += partials[v + width];
        }
    }
    loss_out[model * head.loss_stride] = 0.5 * partials[0];
}

fn start_tile(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    let linear = wid.x + nwg.x * wid.y;
    let groups = params_buffer[0].groups;
    let last = params_buffer[groups - 1u];
    if params_buffer[0].loss_terms > 0u && linear == last.tile_start + last.tiles {
        sum_loss_terms(wid.z);
        return NO_TILE;
    }
    group = 0u;
    for (var g = 1u; g < groups; g++) {
        if linear >= params_buffer[g].tile_start {
            group = g;
        }
    }
    params = params_buffer[group];
    current_model = wid.z;
    if params.gated != 0u && model_active[current_model] == 0u {
        return NO_TILE;
    }
    let tile = linear - params.tile_start;
    if linear < params.tile_start || tile >= params.tiles {
        return NO_TILE;
    }
    a_base = current_model * params.a_stride;
    b_base = current_model * params.b_stride;
    c_base = current_model * params.c_stride + params.c_offset;
    d_bias_base = current_model * params.c_stride + params.d_bias_offset;
    hyper = hyperparams[current_model];
    adam_state = model_state[current_model];
    return tile;
}

fn a_load(i: u32) -> f32 {
    switch group {
        case 1u: { return a_1[i]; }
        case 2u: { return a_2[i]; }
        case 3u: { return a_3[i]; }
        default: { return a[i]; }
    }
}

fn b_load(i: u32) -> f32 {
    switch group {
        case 1u: { return b_1[i]; }
        case 2u: { return b_2[i]; }
        case 3u: { return b_3[i]; }
        default: { return b[i]; }
    }
}

fn a4_load(i: u32) -> vec4<f32> {
    switch group {
        case 1u: { return a4_1[i]; }
        case 2u: { return a4_2[i]; }
        case 3u: { return a4_3[i]; }
        default: { return a4[i]; }
    }
}

fn b4_load(i: u32) -> vec4<f32> {
    switch group {
        case 1u: { return b4_1[i]; }
        case 2u: { return b4_2[i]; }
        case 3u: { return b4_3[i]; }
        default: { return b4[i]; }
    }
}

fn store(row: u32, col: u32, product: f32) {
    var i = c_base + row * params.n + col;
    if row >= params.m {
        i = d_bias_base + col; // the bias gradient's row
    }
    c[i] = product;
    optimizer_step(i, product, hyper, adam_state);
}
