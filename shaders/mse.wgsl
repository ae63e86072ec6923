// The regression losses over a batch: half the squared error summed over outputs, or Huber's
// (params.huber_delta = δ > 0), each row weighted (w_i = 1/B for a full batch; 0 for the
// padding rows of a partial one):
//   forward:  loss (1) = Σ_i w_i · Σ_j h(y_ij − t_ij)      y, t (B,N), row_weight (B)
//             h(d) = ½ d², or for Huber ½ d² where |d| ≤ δ and δ(|d| − ½δ) past it
//   backward: d_y (B,N) = w_i · h'(y − t) (d, or clamp(d, −δ, δ)), times act'(y) for the
//             output activation params.mode (prelude.wgsl): the gradient at the input of the
//             output layer's activation, in the same dispatch
//   mse_forward with params.write_gradient also writes that gradient into `gradient` (one
//   dispatch for both, for outputs small enough for one workgroup)
// The forward reduction runs in ONE workgroup in a fixed order (reduce.wgsl), with no
// atomics, so the same inputs give the same bits on every run.


// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `params` first.
var<private> params: LossParams;

@compute @workgroup_size(REDUCE_THREADS)
fn mse_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    params = params_buffer;
    let yb = wid.z * params.prediction_stride;
    let tb = wid.z * params.target_stride;
    let wb = wid.z * params.weight_stride;
    let n = params.rows * params.cols;
    // Each invocation sums a fixed stride of elements (sum.wgsl)...
    var sum = blocked_sum_new();
    // Element i's row, kept without a division per element: i advances by REDUCE_THREADS,
    // its row by whole rows and its column by the remainder.
    var row = lid / params.cols;
    var col = lid % params.cols;
    let row_step = REDUCE_THREADS / params.cols;
    let col_step = REDUCE_THREADS % params.cols;
    for (var i = lid; i < n; i += REDUCE_THREADS) {
        let diff = prediction[yb + i] - target_values[tb + i];
        if params.write_gradient != 0u {
            // mse_backward's arithmetic, in the pass that reads y and t anyway
            gradient[wid.z * params.gradient_stride + i] = element_gradient(prediction[yb + i], diff, row_weight[wb + row]);
        }
        let twice = regression_twice_loss(diff, row_weight[wb + row], params.huber_delta);
        blocked_sum_add(&sum, twice);
        row += row_step;
        col += col_step;
        if col >= params.cols {
            col -= params.cols;
            row += 1u;
        }
    }
    // ...then a fixed-shape tree combines the partial sums.
    let total = workgroup_sum(lid, blocked_sum_value(sum));
    if lid == 0u {
        output[wid.z * params.output_stride] = 0.5 * total;
    }
}

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn mse_backward(
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
    let y = prediction[z * params.prediction_stride + i];
    let diff = y - target_values[z * params.target_stride + i];
    output[z * params.output_stride + i] = element_gradient(y, diff, row_weight[z * params.weight_stride + i / params.cols]);
}

// w · h'(diff) · act'(y) with this dispatch's δ and output activation (mse_rules.wgsl).
fn element_gradient(y: f32, diff: f32, w: f32) -> f32 {
    return regression_gradient(y, diff, w, params.huber_delta, params.mode);
}
