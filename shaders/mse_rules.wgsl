// The regression losses' gradient for one element, shared by mse.wgsl and the training
// step's output layer (matmul_head.wgsl), which computes it in its forward epilogue:
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
