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
        optimizer_step(i, grad[i], h, state);
    }
}

// Before each update: every active Adam model counts its step and its bias corrections.
@compute @workgroup_size(STEPS_GROUP)
fn optimizer_steps(@builtin(global_invocation_id) gid: vec3<u32>) {
    params = params_buffer;
    let model = gid.x;
    if model >= params.models || model_active[model] == 0u {
        return;
    }
    count_step(model);
}
