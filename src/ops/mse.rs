//! The regression losses, forward and backward (shaders/mse.wgsl): mean squared error, the
//! seed's ½ Σ (y − t)² per sample, and Huber's loss (`huber_delta` > 0; `Loss::Huber`).

use super::activation::{PRELUDE, prelude_constants};
use super::loss_kernels::{
    LossBindings, LossParams, REDUCE, loss_bindings, loss_params, reduction_threads, write_gradient_to,
};
use super::{Activation, check_grad_from_output, check_len, elementwise_groups, group_constants};
use super::sum::{BLOCKED_SUM, sum_constants};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader};
use crate::device::tensor::Tensor;
use crate::error::Result;

/// The regression losses' element gradient (shaders/mse_rules.wgsl), which the training
/// step's output layer computes in its epilogue too (`matmul_head`).
pub(super) const MSE_RULES: &str = include_str!("../../shaders/mse_rules.wgsl");

const SHADER: Shader = Shader {
    file: "mse.wgsl",
    parts: &[
        Part::Consts(sum_constants),
        Part::Consts(group_constants),
        Part::Consts(prelude_constants),
        Part::Text(LossParams::WGSL),
        Part::Text(LossBindings::WGSL),
        Part::Text(PRELUDE),
        Part::Text(REDUCE),
        Part::Text(BLOCKED_SUM),
        Part::Text(MSE_RULES),
        Part::Text(include_str!("../../shaders/mse.wgsl")),
    ],
    trusted: false,
};
const FORWARD: Kernel = Kernel::new(&SHADER, "mse_forward").with_adapter_constants(reduction_threads);
const BACKWARD: Kernel = Kernel::new(&SHADER, "mse_backward");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![FORWARD, BACKWARD]
}

/// `loss = Σ_i w_i · ½ Σ_j (y_ij − t_ij)²`, one scalar, reduced deterministically. With
/// `w_i = 1/B` this is the mean over the batch. y, t (B,N); row_weights B; loss 1 element.
pub fn mse_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    regression_forward(gpu, 0.0, y, t, row_weights, loss)
}

/// [`mse_forward`], or Huber's loss with `huber_delta` > 0.
pub(super) fn regression_forward(
    gpu: &Gpu,
    huber_delta: f32,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    loss: &Tensor,
) -> Result<Dispatch> {
    const OP: &str = "mse_forward";
    let mut params = loss_params(OP, gpu, y, t, row_weights, loss)?;
    params.huber_delta = huber_delta;
    check_len(OP, "loss", loss, 1)?;
    let mut bindings = loss_bindings(y, t, loss, row_weights).to_vec();
    let unused_gradient = Tensor::scratch(gpu)?;
    bindings.push((LossBindings::GRADIENT, &unused_gradient)); // never written
    Dispatch::stacked(gpu, FORWARD, bytemuck::bytes_of(&params), &bindings, 1, loss.models())
}

/// The loss ([`regression_forward`]) and its gradient through the output layer's
/// `activation` ([`regression_backward`]) in one dispatch, the same bits as the two.
#[allow(clippy::too_many_arguments)] // the two kernels' operands together
pub(super) fn regression_forward_with_gradient(
    gpu: &Gpu,
    huber_delta: f32,
    activation: Activation,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    loss: &Tensor,
    d_y: &Tensor,
) -> Result<Dispatch> {
    const OP: &str = "mse_forward_with_gradient";
    let mut params = loss_params(OP, gpu, y, t, row_weights, loss)?;
    check_grad_from_output(OP, activation)?;
    check_len(OP, "loss", loss, 1)?;
    write_gradient_to(OP, &mut params, y, loss, d_y)?;
    params.huber_delta = huber_delta;
    params.mode = activation.code();
    let mut bindings = loss_bindings(y, t, loss, row_weights).to_vec();
    bindings.push((LossBindings::GRADIENT, d_y));
    Dispatch::stacked(gpu, FORWARD, bytemuck::bytes_of(&params), &bindings, 1, loss.models())
}

/// `d_y = w_i · (y − t)` (`(y − t)/B` with `w_i = 1/B`). y, t, d_y (B,N); row_weights B.
pub fn mse_backward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    regression_backward(gpu, 0.0, Activation::Identity, y, t, row_weights, d_y)
}

/// [`mse_backward`] through the output layer `y = act(z)` in one dispatch:
/// `d_z = w_i · (y − t) ⊙ act'(y)`, for an activation whose slope follows from its output.
pub fn mse_backward_through(
    gpu: &Gpu,
    activation: Activation,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    d_z: &Tensor,
) -> Result<Dispatch> {
    regression_backward(gpu, 0.0, activation, y, t, row_weights, d_z)
}

/// [`mse_backward_through`], or Huber's gradient `clamp(y − t, −δ, δ)` with `huber_delta` > 0.
pub(super) fn regression_backward(
    gpu: &Gpu,
    huber_delta: f32,
    activation: Activation,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    d_y: &Tensor,
) -> Result<Dispatch> {
    const OP: &str = "mse_backward";
    let mut params = loss_params(OP, gpu, y, t, row_weights, d_y)?;
    params.huber_delta = huber_delta;
    check_grad_from_output(OP, activation)?;
    params.mode = activation.code();
    check_len(OP, "d_y", d_y, y.len())?;
    Dispatch::stacked(
        gpu,
        BACKWARD,
        bytemuck::bytes_of(&params),
        &loss_bindings(y, t, d_y, row_weights),
elementwise_groups(y.len()),
        d_y.models(),
    )
}
