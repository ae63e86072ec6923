// A whole training step of a small MLP in ONE invocation: forward, MSE loss, backward and
// the SGD update, for nets so small that per-dispatch overhead, not arithmetic, is the cost
// (xor). The same mathematics as the general path, one kernel instead of 3L + 2.
//
// Layer l (0-based): W_l (in_l, out_l) and b_l (out_l) at offsets in the flat parameter
// block (velocities at the same offsets); h_0 = x (B, in_0), h_{l+1} = act(h_l·W_l + b_l),
// act = hidden_activation on hidden layers, output_activation on the last (prelude.wgsl; both
// with slopes that follow from their outputs).
// loss = Σ_r w_r · ½ Σ_j (y_rj − t_rj)²; δ_L = w_r (y − t) ⊙ act'(y);
// δ_l = (δ_{l+1} · W_lᵀ) ⊙ act'(h_l), computed before W_l is updated.

// TinyParams (per layer: in, out, weight offset, bias offset; activations h_1.. in scratch at
// act_offset[l / 4][l % 4]), TINY_MAX_WIDTH and TINY_MAX_LAYERS are declared in src/ops/tiny.rs.

var<private> p: TinyParams;

fn act_start(l: u32) -> u32 {
    // start of h_l in scratch, l >= 1
    let i = l - 1u;
    return p.act_offset[i / 4u][i % 4u];
}

// h_l[r][i]: the input itself for l = 0.
fn act(l: u32, r: u32, i: u32, width: u32) -> f32 {
    if l == 0u {
        return x[r * width + i];
    }
    return scratch[act_start(l) + r * width + i];
}

fn delta_at(which: u32, r: u32, j: u32, width: u32) -> u32 {
    return p.delta_offset + which * p.batch * TINY_MAX_WIDTH + r * width + j;
}

fn update(i: u32, g: f32) {
    let w = weights[i];
    if p.coupled != 0u {
        let v = p.momentum * velocity[i] + g + p.weight_decay * w;
        velocity[i] = v;
        weights[i] = w - p.lr * v;
    } else {
        let v = p.momentum * velocity[i] + g;
        velocity[i] = v;
        weights[i] = w - p.lr * (v + p.weight_decay * w);
    }
}

@compute @workgroup_size(1)
fn tiny_step() {
    p = params_buffer;
    let batch = p.batch;
    let last = p.layers - 1u;
    // forward
    for (var l = 0u; l < p.layers; l++) {
        let d = p.dims[l];
        for (var r = 0u; r < batch; r++) {
            for (var j = 0u; j < d.y; j++) {
                var z = weights[d.w + j];
                for (var i = 0u; i < d.x; i++) {
                    z = fma(act(l, r, i, d.x), weights[d.z + i * d.y + j], z);
                }
                z = act_forward(select(p.output_activation, p.hidden_activation, l < last), z);
                scratch[act_start(l + 1u) + r * d.y + j] = z;
            }
        }
    }
    // loss and δ of the output layer
    let out = p.dims[last].y;
    var total = 0.0;
    for (var r = 0u; r < batch; r++) {
        for (var j = 0u; j < out; j++) {
            let y = scratch[act_start(last + 1u) + r * out + j];
            let diff = y - t[r * out + j];
            total += row_weight[r] * diff * diff;
            let delta = row_weight[r] * diff * act_grad(p.output_activation, y);
            scratch[delta_at(0u, r, j, out)] = delta;
        }
    }
    loss[0] = 0.5 * total;
    // backward, last layer first; δ alternates between two buffers
    var cur = 0u;
    for (var step = 0u; step < p.layers; step++) {
        let l = last - step;
        let d = p.dims[l];
        // δ of the layer below, with the weights before their update
        if l > 0u {
            for (var r = 0u; r < batch; r++) {
                for (var i = 0u; i < d.x; i++) {
                    var s = 0.0;
                    for (var j = 0u; j < d.y; j++) {
                        s = fma(scratch[delta_at(cur, r, j, d.y)], weights[d.z + i * d.y + j], s);
                    }
                    let h = act(l, r, i, d.x);
                    scratch[delta_at(1u - cur, r, i, d.x)] = s * act_grad(p.hidden_activation, h);
                }
            }
        }
        // gradients and the update of W_l, b_l
        for (var j = 0u; j < d.y; j++) {
            var gb = 0.0;
            for (var r = 0u; r < batch; r++) {
                gb += scratch[delta_at(cur, r, j, d.y)];
            }
            update(d.w + j, gb);
            for (var i = 0u; i < d.x; i++) {
                var gw = 0.0;
                for (var r = 0u; r < batch; r++) {
                    gw = fma(act(l, r, i, d.x), scratch[delta_at(cur, r, j, d.y)], gw);
                }
                update(d.z + i * d.y + j, gw);
            }
        }
        cur = 1u - cur;
    }
}
