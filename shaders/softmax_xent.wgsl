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
// every run. With params.write_gradient the forward also writes the backward's d_y into
// `gradient` (one dispatch for both, for batch-sized outputs).



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
    // Each invocation sums a fixed stride of rows (sum.wgsl)...
    var sum = blocked_sum_new();
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
        if params.write_gradient != 0u {
            // xent_backward's arithmetic, in the pass that reads the row anyway
            let out_start = wid.z * params.gradient_stride + r * params.cols;
            let w = row_weight[wb + r];
            let g = row_gradient_setup(start, tb + r * params.cols);
            for (var j = 0u; j < params.cols; j++) {
                gradient[out_start + j] = gradient_element(prediction[start + j], target_values[tb + r * params.cols + j], w, g);
            }
        }
        blocked_sum_add(&sum, row_weight[wb + r] * row_loss);
    }
    // ...then a fixed-shape tree combines the partial sums (reduce.wgsl).
    let total = workgroup_sum(lid, blocked_sum_value(sum));
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
    let g = row_gradient_setup(start, t_start);
    for (var j = 0u; j < params.cols; j++) {
        output[out_start + j] = gradient_element(prediction[start + j], target_values[t_start + j], w, g);
    }
}

// What a row's gradient needs beyond its elements: for softmax the row's (max, log_sum) and
// Σ_j t_ij; nothing for the sigmoid kind.
fn row_gradient_setup(start: u32, t_start: u32) -> vec3<f32> {
    if params.mode == KIND_SIGMOID {
        return vec3<f32>(0.0);
    }
    let stats = row_max_and_log_sum(start);
    var t_sum = 0.0;
    for (var j = 0u; j < params.cols; j++) {
        t_sum += target_values[t_start + j];
    }
    return vec3<f32>(stats, t_sum);
}

// w · dE/dy for one element: w · (σ(y) − t), or w · (softmax(y) · Σt − t) from the setup.
fn gradient_element(y: f32, t: f32, w: f32, g: vec3<f32>) -> f32 {
    if params.mode == KIND_SIGMOID {
        // σ(y) without overflow for either sign
        let e = exp(-abs(y));
        let p = select(e / (1.0 + e), 1.0 / (1.0 + e), y >= 0.0);
        return w * (p - t);
    }
    let p = exp(y - g.x - g.y);
    return w * (p * g.z - t);
}
