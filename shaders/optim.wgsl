// In-place SGD update of every parameter of every stacked model, element by element, with
// each model's own hyperparameters:
//   decoupled (default):  v ← μ·v + g;          w ← w − η·(v + γ·w)
//   coupled (PyTorch):    g' = g + γ·w;  v ← μ·v + g';  w ← w − η·v
// With μ = 0 the velocity equals the gradient, so plain SGD is the same formula.
// grad, weight, velocity (models · n): model m's parameters are elements m·n .. (m+1)·n.
// A model whose `model_active` flag is 0 is left as it is (its epochs are over, or this
// step has no rows of its data): neither its weights nor its velocity move.
struct SgdParams {
    n: u32, // parameters per model
    models: u32,
    _pad0: u32,
    _pad1: u32,
}

struct Hyperparams {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    coupled: u32,
}

// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first.
@group(0) @binding(0) var<storage, read> params_buffer: SgdParams;
var<private> params: SgdParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(4) var<storage, read> hyperparams: array<Hyperparams>; // (models)
@group(0) @binding(5) var<storage, read> model_active: array<u32>;        // (models)

// Each invocation updates a run of PER_INVOCATION consecutive elements, loading a model's
// settings and flag once per run rather than once per element: on CPU adapters every
// storage load costs tens of cycles per lane, and these were half of them.
const PER_INVOCATION: u32 = 8u;

@compute @workgroup_size(256)
fn sgd_update(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let total = params.n * params.models;
    let first = ((wid.x + nwg.x * wid.y) * 256u + lid) * PER_INVOCATION;
    var model = 0xffffffffu;
    var h: Hyperparams;
    var updating = false;
    for (var i = first; i < min(first + PER_INVOCATION, total); i++) {
        if i / params.n != model {
            model = i / params.n;
            h = hyperparams[model];
            updating = model_active[model] != 0u;
        }
        if !updating {
            continue;
        }
        let w = weight[i];
        if h.coupled != 0u {
            let v = h.momentum * velocity[i] + grad[i] + h.weight_decay * w;
            velocity[i] = v;
            weight[i] = w - h.lr * v;
        } else {
            let v = h.momentum * velocity[i] + grad[i];
            velocity[i] = v;
            weight[i] = w - h.lr * (v + h.weight_decay * w);
        }
    }
}
