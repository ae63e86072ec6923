// One product per dispatch (the plain and the training-head variants): its parameters, its
// tile, and its operands read straight from their bindings.

// Whether this workgroup's model sits this step out.
fn model_skipped(model: u32) -> bool {
    return params.gated != 0u && model_active[model] == 0u;
}

fn load_params(model: u32) {
    params = params_buffer;
    current_model = model;
    a_base = model * params.a_stride;
    b_base = model * params.b_stride;
    c_base = model * params.c_stride + params.c_offset;
    bias_base = model * params.bias_stride;
    saved_base = model * params.saved_stride;
    d_bias_base = model * params.d_bias_stride + params.d_bias_offset;
}

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

fn a_load(i: u32) -> f32 {
    return a[i];
}

fn b_load(i: u32) -> f32 {
    return b[i];
}

fn a4_load(i: u32) -> vec4<f32> {
    return a4[i];
}

fn b4_load(i: u32) -> vec4<f32> {
    return b4[i];
}

// A forward product's epilogue: + bias, then the activation, as params.epilogue says.
fn forward_value(col: u32, product: f32) -> f32 {
    switch params.epilogue {
        case EPILOGUE_BIAS: {
            return product + bias[bias_base + col];
        }
        case EPILOGUE_BIAS_ACT: {
            return act_forward(params.activation, product + bias[bias_base + col]);
        }
        default: {
            return product;
        }
    }
}
