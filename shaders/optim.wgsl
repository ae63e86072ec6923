// In-place optimizer update of every parameter of every stacked model, element by element,
// each model with its own optimizer and settings (`OptimizerHyperparams`, one per model):
// SGD (kind 0), with Δ = v, or g' + μ·v with Nesterov momentum:
//   decoupled (default):  g' = g;          v ← μ·v + g';  w ← w − η·(Δ + γ·w)
//   coupled (PyTorch):    g' = g + γ·w;    v ← μ·v + g';  w ← w − η·Δ
// Adam (kind 1, PyTorch's Adam; AdamW when the decay is decoupled), at the model's step t:
//   coupled (Adam):       g' = g + λ·w
//   decoupled (AdamW):    g' = g;          w ← w − η·λ·w first
//   m ← β₁·m + (1 − β₁)·g';  s ← β₂·s + (1 − β₂)·g'²;  w ← w − (η / c₁)·m / (√s / √c₂ + ε)
//   with c = 1 − βᵗ from `optimizer_steps`, which counts t and computes c once per model.
// grad, weight, velocity (m for Adam), second_moment (models · n): model m's parameters are
// elements m·n .. (m+1)·n. A model whose `model_active` flag is 0 is left as it is (its
// epochs are over, or this step has no rows of its data): nothing of it moves.

// KIND_*, FLAG_* (FLAG_COUPLED: weight decay folded into the gradient), PER_INVOCATION, the
// workgroup sizes and the structs are declared once in src/ops/optim.rs and emitted ahead of
// this file. ModelState, per model: the step count t (a float, exact to 2^24 steps) and
// Adam's c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ after the step.

// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first.
var<private> params: OptimParams;

// Each invocation updates a run of PER_INVOCATION consecutive elements, loading a model's
// settings and flag once per run rather than once per element: on CPU adapters every
// storage load costs tens of cycles per lane, and these were half of them.

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn optimizer_update(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let total = params.n * params.models;
    let first = ((wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid) * PER_INVOCATION;
    var model = 0xffffffffu;
    var h: OptimizerHyperparams;
    var state: ModelState;
    var updating = false;
    for (var i = first; i < min(first + PER_INVOCATION, total); i++) {
        if i / params.n != model {
            model = i / params.n;
            h = hyperparams[model];
            updating = model_active[model] != 0u;
            if h.kind == KIND_ADAM {
                state = model_state[model];
            }
        }
        if !updating {
            continue;
        }
        if h.kind == KIND_ADAM {
            adam_step(i, h, state);
        } else if h.kind == KIND_RMSPROP {
            rmsprop_step(i, h);
        } else {
            sgd_step(i, h);
        }
    }
}

fn sgd_step(i: u32, h: OptimizerHyperparams) {
    let w = weight[i];
    if (h.flags & FLAG_NESTEROV) != 0u && (h.flags & FLAG_COUPLED) != 0u {
        let g = grad[i] + h.weight_decay * w;
        let v = h.momentum * velocity[i] + g;
        velocity[i] = v;
        weight[i] = w - h.lr * (g + h.momentum * v);
    } else if (h.flags & FLAG_COUPLED) != 0u {
        // the seed's order of operations, kept so results stay bit for bit the same
        let v = h.momentum * velocity[i] + grad[i] + h.weight_decay * w;
        velocity[i] = v;
        weight[i] = w - h.lr * v;
    } else {
        let g = grad[i];
        let v = h.momentum * velocity[i] + g;
        velocity[i] = v;
        if (h.flags & FLAG_NESTEROV) != 0u {
            weight[i] = w - h.lr * (g + h.momentum * v + h.weight_decay * w);
        } else {
            weight[i] = w - h.lr * (v + h.weight_decay * w);
        }
    }
}

fn adam_step(i: u32, h: OptimizerHyperparams, state: ModelState) {
    var w = weight[i];
    var g = grad[i];
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
fn rmsprop_step(i: u32, h: OptimizerHyperparams) {
    let w = weight[i];
    let g = grad[i] + h.weight_decay * w;
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

// Before each update: every active Adam model counts its step and its bias corrections.
@compute @workgroup_size(STEPS_GROUP)
fn optimizer_steps(@builtin(global_invocation_id) gid: vec3<u32>) {
    params = params_buffer;
    let model = gid.x;
    if model >= params.models || model_active[model] == 0u || hyperparams[model].kind != KIND_ADAM {
        return;
    }
    let h = hyperparams[model];
    let t = model_state[model].steps + 1.0;
    model_state[model] = ModelState(t, one_minus_power(h.momentum, t), one_minus_power(h.beta2, t), 0.0);
}
