// Element-wise activations (act_forward / act_grad in prelude.wgsl), forward and backward.
//   forward:  y = act(x)                                x, y (n)
//   backward: d_x = d_y ⊙ act'(saved)                   d_y, saved, d_x (n)   [+ d_x when accumulate]
//             saved is y, or x for activations whose slope needs the input (GELU)


// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first.
var<private> params: ActivationParams;

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn activation_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let i = (wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid;
    if i >= params.n {
        return;
    }
    output[wid.z * params.output_stride + i] = act_forward(params.activation, input[wid.z * params.input_stride + i]);
}

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn activation_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let i = (wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid;
    if i >= params.n {
        return;
    }
    let slope = act_grad(params.activation, saved[wid.z * params.saved_stride + i]);
    let d_x = input[wid.z * params.input_stride + i] * slope;
    let j = wid.z * params.output_stride + i;
    if params.accumulate != 0u {
        output[j] = output[j] + d_x;
    } else {
        output[j] = d_x;
    }
}
