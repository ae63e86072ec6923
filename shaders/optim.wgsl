// In-place SGD update of one parameter block and its velocity, element by element:
//   decoupled (default):  v ← μ·v + g;          w ← w − η·(v + γ·w)
//   coupled (PyTorch):    g' = g + γ·w;  v ← μ·v + g';  w ← w − η·v
// With μ = 0 the velocity equals the gradient, so plain SGD is the same formula.
// grad, weight, velocity (n)

struct SgdParams {
    n: u32,
    coupled: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first.
@group(0) @binding(0) var<storage, read> params_buffer: SgdParams;
var<private> params: SgdParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;

@compute @workgroup_size(256)
fn sgd_update(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let i = (wid.x + nwg.x * wid.y) * 256u + lid;
    if i >= params.n {
        return;
    }
    let w = weight[i];
    if params.coupled != 0u {
        let v = params.momentum * velocity[i] + grad[i] + params.weight_decay * w;
        velocity[i] = v;
        weight[i] = w - params.lr * v;
    } else {
        let v = params.momentum * velocity[i] + grad[i];
        velocity[i] = v;
        weight[i] = w - params.lr * (v + params.weight_decay * w);
    }
}
