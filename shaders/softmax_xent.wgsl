// Cross-entropy from logits, each row weighted (w_i = 1/B for a full batch; 0 for the padding
// rows of a partial one), in two kinds:
// softmax (kind 0) over classes, the targets t class probabilities (one-hot for labels), as
// PyTorch's CrossEntropyLoss with probability targets:
//   forward:  loss (1) = Σ_i w_i · Σ_j t_ij (lse_i − y_ij),  lse_i = log Σ_j exp(y_ij)
//   backward: d_y (B,N) = w_i · (softmax(y_i) · Σ_j t_ij − t_i)   (softmax − onehot)
// sigmoid (kind 1), each output its own binary target, as PyTorch's BCEWithLogitsLoss summed
// over outputs:
//   forward:  loss (1) = Σ_i w_i · Σ_j (max(y, 0) − y t + log1p(exp(−|y|)))
//   backward: d_y (B,N) = w_i · (σ(y) − t)
// Neither exp overflows: lse subtracts the row maximum, the sigmoid form takes exp(−|y|). The
// forward reduction runs in ONE workgroup in a fixed order, with no atomics: the same bits
// every run.



// Parameters come in a storage buffer, not a uniform one (lavapipe recompiles on uniform
// changes). Each entry point copies them into `params` first.
var<private> params: LossParams;

// log(1 + e) for e in [0, 1] to full relative precision where e is small (log(1 + e) would be
// 0 once 1 + e rounds to 1, at logits past 17): its series below 0.1 (eight terms: the rest
// is under 1e-9 relative). Kahan's log(u)·e/(u − 1) is no help here: the shader compiler may
// reassociate (1 + e) − 1 into e.
fn log1p_small(e: f32) -> f32 {
    if e < 0.1 {
        return e * (1.0 - e * (0.5 - e * (1.0 / 3.0 - e * (0.25 - e * (0.2 - e * (1.0 / 6.0 - e * (1.0 / 7.0 - e * 0.125)))))));
    }
    return log(1.0 + e);
}

// Invocations in the reduction (a power of two, at most 1024), as MSE_THREADS in mse.wgsl.

// The row's maximum and log Σ exp(y − max): lse = max + log_sum.
fn row_max_and_log_sum(start: u32) -> vec2<f32> {
    var top = prediction[start];
    for (var j = 1u; j < params.cols; j++) {
        top = max(top, prediction[start + j]);
    }
    var sum = 0.0;
    for (var j = 0u; j < params.cols; j++) {
        sum += exp(prediction[start + j] - top);
    }
    return vec2<f32>(top, log(sum));
}

@compute @workgroup_size(REDUCE_THREADS)
fn xent_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    params = params_buffer;
    let yb = wid.z * params.prediction_stride;
    let tb = wid.z * params.target_stride;
    let wb = wid.z * params.weight_stride;
    // Each invocation sums a fixed stride of rows (Kahan-compensated)...
    var sum = 0.0;
    var carry = 0.0;
    for (var r = lid; r < params.rows; r += REDUCE_THREADS) {
        let start = yb + r * params.cols;
        var row_loss = 0.0;
        if params.mode == KIND_SIGMOID {
            for (var j = 0u; j < params.cols; j++) {
                let y = prediction[start + j];
                row_loss += max(y, 0.0) - y * target_values[tb + r * params.cols + j] + log1p_small(exp(-abs(y)));
            }
        } else {
            let stats = row_max_and_log_sum(start);
            for (var j = 0u; j < params.cols; j++) {
                // lse − y = (max − y) + log_sum: both terms ≥ 0 for the largest logit
                row_loss += target_values[tb + r * params.cols + j] * ((stats.x - prediction[start + j]) + stats.y);
            }
        }
        let term = row_weight[wb + r] * row_loss - carry;
        let next = sum + term;
        carry = (next - sum) - term;
        sum = next;
    }
    // ...then a fixed-shape tree combines the partial sums (reduce.wgsl).
    let total = workgroup_sum(lid, sum);
    if lid == 0u {
        output[wid.z * params.output_stride] = total;
    }
}

// One invocation per row: its softmax needs the whole row.
@compute @workgroup_size(XENT_ROWS_PER_GROUP)
fn xent_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    params = params_buffer;
    let r = (wid.x + nwg.x * wid.y) * XENT_ROWS_PER_GROUP + lid;
    if r >= params.rows {
        return;
    }
    let start = wid.z * params.prediction_stride + r * params.cols;
    let t_start = wid.z * params.target_stride + r * params.cols;
    let out_start = wid.z * params.output_stride + r * params.cols;
    let w = row_weight[wid.z * params.weight_stride + r];
    if params.mode == KIND_SIGMOID {
        for (var j = 0u; j < params.cols; j++) {
            let y = prediction[start + j];
            // σ(y) without overflow for either sign
            let e = exp(-abs(y));
            let p = select(e / (1.0 + e), 1.0 / (1.0 + e), y >= 0.0);
            output[out_start + j] = w * (p - target_values[t_start + j]);
        }
        return;
    }
    let stats = row_max_and_log_sum(start);
    var t_sum = 0.0;
    for (var j = 0u; j < params.cols; j++) {
        t_sum += target_values[t_start + j];
    }
    for (var j = 0u; j < params.cols; j++) {
        let p = exp(prediction[start + j] - stats.x - stats.y);
        output[out_start + j] = w * (p * t_sum - target_values[t_start + j]);
    }
}
