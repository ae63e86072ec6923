// Logistic sigmoid and its backward from the saved output.
//   forward:  y = 1 / (1 + exp(-x))                  x, y (n)
//   backward: d_x = d_y ⊙ y ⊙ (1 − y)                d_y, y, d_x (n)   [+ d_x when accumulate]

struct SigmoidParams {
    n: u32,
    accumulate: u32,
    // Batched (stacked) models: the grid's z is the model; each binding's model m starts
    // m · stride elements in (0 for an operand all models share).
    input_stride: u32,
    saved_stride: u32,
    output_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first.
@group(0) @binding(0) var<storage, read> params_buffer: SigmoidParams;
var<private> params: SigmoidParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> saved_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256)
fn sigmoid_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let i = (wid.x + nwg.x * wid.y) * 256u + lid;
    if i >= params.n {
        return;
    }
    output[wid.z * params.output_stride + i] = 1.0 / (1.0 + exp(-input[wid.z * params.input_stride + i]));
}

@compute @workgroup_size(256)
fn sigmoid_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let i = (wid.x + nwg.x * wid.y) * 256u + lid;
    if i >= params.n {
        return;
    }
    let y = saved_output[wid.z * params.saved_stride + i];
    let d_x = input[wid.z * params.input_stride + i] * y * (1.0 - y);
    let j = wid.z * params.output_stride + i;
    if params.accumulate != 0u {
        output[j] = output[j] + d_x;
    } else {
        output[j] = d_x;
    }
}
