// Element-wise sums, for gradients that meet at a fork.
//   add:        out (n) = a (n) + b (n)
//   copy:       out (n) = a (n), or out += a when accumulate (a gradient passed through)


// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first.
var<private> params: ElementwiseParams;

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let i = (wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid;
    if i >= params.n {
        return;
    }
    let z = wid.z;
    output[z * params.output_stride + i] = a[z * params.a_stride + i] + b[z * params.b_stride + i];
}

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn copy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let i = (wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid;
    if i >= params.n {
        return;
    }
    let j = wid.z * params.output_stride + i;
    let value = a[wid.z * params.a_stride + i];
    if params.accumulate != 0u {
        output[j] = output[j] + value;
    } else {
        output[j] = value;
    }
}
