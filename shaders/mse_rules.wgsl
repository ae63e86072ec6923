// The regression losses' per-element rules: a new one is a mode here (and in src/ops/loss.rs).
//
// Twice one element's loss, weighted: w·diff² (squared error), or w·δ(2|diff| − δ) past
// Huber's δ (δ > 0).
fn regression_twice_loss(diff: f32, w: f32, huber_delta: f32) -> f32 {
    if huber_delta > 0.0 && abs(diff) > huber_delta {
        return w * (huber_delta * (2.0 * abs(diff) - huber_delta));
    }
    return w * diff * diff;
}

// The gradient for one element, shared by mse.wgsl and the training step's output layer
// (matmul_head.wgsl), which computes it in its forward epilogue:
// w · h'(y − t) · act'(y), h' = d (squared error) or clamp(d, −δ, δ) (Huber, δ > 0), times the
// slope of the output activation `activation` (prelude.wgsl; × 1 for identity): the gradient
// at the input of that activation.
fn regression_gradient(y: f32, diff: f32, w: f32, huber_delta: f32, activation: u32) -> f32 {
    var slope = diff;
    if huber_delta > 0.0 {
        slope = clamp(diff, -huber_delta, huber_delta); // Huber's slope
    }
    var d = w * slope;
    d *= act_grad(activation, y); // the output activation; × 1 for identity
    return d;
}
