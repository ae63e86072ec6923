// The optimizers' per-element rules, shared by the update kernel (optim.wgsl) and the weight
// gradient kernels that apply the update in their epilogue (matmul_grouped.wgsl): each takes
// the element's index into the flat parameter block and its gradient g, and reads and writes
// `weight`, `velocity`, `second_moment` and `grad_average` at that index. The formulas are in
// optim.wgsl's header. The same arithmetic in both places, so a fused update equals the
// separate one to the bit.

// One element's update by its model's optimizer; `state` is read by Adam only.
fn optimizer_step(i: u32, g: f32, h: OptimizerHyperparams, state: ModelState) {
    if h.kind == KIND_ADAM {
        adam_step(i, g, h, state);
    } else if h.kind == KIND_RMSPROP {
        rmsprop_step(i, g, h);
    } else {
        sgd_step(i, g, h);
    }
}

fn sgd_step(i: u32, g_in: f32, h: OptimizerHyperparams) {
    let w = weight[i];
    if (h.flags & FLAG_NESTEROV) != 0u && (h.flags & FLAG_COUPLED) != 0u {
        let g = g_in + h.weight_decay * w;
        let v = h.momentum * velocity[i] + g;
        velocity[i] = v;
        weight[i] = w - h.lr * (g + h.momentum * v);
    } else if (h.flags & FLAG_COUPLED) != 0u {
        // the seed's order of operations, kept so results stay bit for bit the same
        let v = h.momentum * velocity[i] + g_in + h.weight_decay * w;
        velocity[i] = v;
        weight[i] = w - h.lr * v;
    } else {
        let g = g_in;
        let v = h.momentum * velocity[i] + g;
        velocity[i] = v;
        if (h.flags & FLAG_NESTEROV) != 0u {
            weight[i] = w - h.lr * (g + h.momentum * v + h.weight_decay * w);
        } else {
            weight[i] = w - h.lr * (v + h.weight_decay * w);
        }
    }
}

fn adam_step(i: u32, g_in: f32, h: OptimizerHyperparams, state: ModelState) {
    var w = weight[i];
    var g = g_in;
    if (h.flags & FLAG_COUPLED) != 0u {
        g += h.weight_decay * w;
    } else {
        w -= h.lr * h.weight_decay * w;
    }
    let m = h.momentum * velocity[i] + (1.0 - h.momentum) * g;
    let s = h.beta2 * second_moment[i] + (1.0 - h.beta2) * g * g;
    velocity[i] = m;
    second_moment[i] = s;
    weight[i] = w - (h.lr / state.correction1) * m / (sqrt(s) / sqrt(state.correction2) + h.eps);
}

// RMSprop (kind 2, PyTorch's): v = second_moment, the momentum buffer b = velocity, and when
// centered the gradient average ḡ = grad_average.
//   g' = g + λ·w;  v ← α·v + (1 − α)·g'²;  centered: ḡ ← α·ḡ + (1 − α)·g', ṽ = v − ḡ²
//   momentum: b ← μ·b + g' / (√ṽ + ε), w ← w − η·b;  else w ← w − η·g' / (√ṽ + ε)
fn rmsprop_step(i: u32, g_in: f32, h: OptimizerHyperparams) {
    let w = weight[i];
    let g = g_in + h.weight_decay * w;
    let alpha = h.beta2;
    let v = alpha * second_moment[i] + (1.0 - alpha) * g * g;
    second_moment[i] = v;
    var variance = v;
    if (h.flags & FLAG_CENTERED) != 0u {
        let mean = alpha * grad_average[i] + (1.0 - alpha) * g;
        grad_average[i] = mean;
        variance = v - mean * mean;
    }
    let step = g / (sqrt(variance) + h.eps);
    if h.momentum > 0.0 {
        let b = h.momentum * velocity[i] + step;
        velocity[i] = b;
        weight[i] = w - h.lr * b;
    } else {
        weight[i] = w - h.lr * step;
    }
}

// 1 − βᵗ to full f32 precision for small t as for large, where 1 − pow(β, t) would cancel:
// −expm1(t · ln β), ln β = ln(1 − d) with d = 1 − β exact (Sterbenz) for β ≥ 0.5, both by
// their series where the plain formulas lose digits.
fn one_minus_power(beta: f32, t: f32) -> f32 {
    let d = 1.0 - beta;
    if d > 0.5 {
        return 1.0 - pow(beta, t); // βᵗ ≤ ½: nothing cancels
    }
    var ln_beta = 0.0;
    var d_power = d;
    for (var k = 1u; k <= 48u; k++) {
        ln_beta -= d_power / f32(k);
        d_power *= d;
    }
    let x = t * ln_beta;
    if x < -0.5 {
        return 1.0 - exp(x); // eˣ < 0.61: at most a bit lost
    }
    var sum = 0.0;
    var term = x;
    for (var k = 2u; k <= 14u; k++) {
        sum += term;
        term *= x / f32(k);
    }
    return -sum;
}

// An Adam model's step count and bias corrections, advanced once per step before its update
// (by `optimizer_steps`, or by the training step's output layer when the update is fused).
fn count_step(model: u32) {
    let h = hyperparams[model];
    if h.kind != KIND_ADAM {
        return;
    }
    let t = model_state[model].steps + 1.0;
    model_state[model] = ModelState(t, one_minus_power(h.momentum, t), one_minus_power(h.beta2, t), 0.0);
}
