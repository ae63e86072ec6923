// Bias add, broadcast over the rows of a batch, and its backward.
//   forward:  y (B,N) = x (B,N) + bias (N)
//   backward: d_bias (N) = Σ_rows d_y (B,N)     (d_x = d_y: the graph passes it through)


// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first.
var<private> params: BiasParams;

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn bias_add_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let i = (wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid;
    if i >= params.rows * params.cols {
        return;
    }
    let z = wid.z;
    output[z * params.output_stride + i] = input[z * params.input_stride + i] + bias[z * params.bias_stride + i % params.cols];
}

// One invocation per column walks down the rows in a fixed order (deterministic), summing
// in blocks (sum.wgsl) so large batches keep f32 accuracy.
@compute @workgroup_size(ELEMENTWISE_GROUP)
fn bias_add_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let col = (wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid;
    if col >= params.cols {
        return;
    }
    var blocked = blocked_sum_new();
    for (var row = 0u; row < params.rows; row++) {
        blocked_sum_add(&blocked, input[wid.z * params.input_stride + row * params.cols + col]);
    }
    let sum = blocked_sum_value(blocked);
    let j = wid.z * params.output_stride + col;
    if params.accumulate != 0u {
        output[j] = output[j] + sum;
    } else {
        output[j] = sum;
    }
}
