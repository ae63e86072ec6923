//! Mean squared error, the seed's ½ Σ (y − t)² per sample, forward and backward (shaders/mse.wgsl).

use super::loss::{loss_bindings, loss_params};
use super::{Activation, ELEMENTWISE_GROUP, check_grad_from_output, check_len};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::tensor::Tensor;

/// `loss = Σ_i w_i · ½ Σ_j (y_ij − t_ij)²`, one scalar, reduced deterministically. With
/// `w_i = 1/B` this is the mean over the batch. y, t (B,N); row_weights B; loss 1 element.
pub fn mse_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    const OP: &str = "mse_forward";
    let params = loss_params(OP, gpu, y, t, row_weights, loss)?;
    check_len(OP, "loss", loss, 1)?;
    Dispatch::stacked(
        gpu,
        Kernel::MseForward,
        bytemuck::bytes_of(&params),
        &loss_bindings(y, t, loss, row_weights),
        1,
        loss.models(),
    )
}

/// `d_y = w_i · (y − t)` (`(y − t)/B` with `w_i = 1/B`). y, t, d_y (B,N); row_weights B.
pub fn mse_backward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    mse_backward_inner(gpu, y, t, row_weights, d_y, Activation::Identity)
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
    mse_backward_inner(gpu, y, t, row_weights, d_z, activation)
}

fn mse_backward_inner(
    gpu: &Gpu,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    d_y: &Tensor,
    activation: Activation,
) -> Result<Dispatch> {
    const OP: &str = "mse_backward";
    let mut params = loss_params(OP, gpu, y, t, row_weights, d_y)?;
    check_grad_from_output(OP, activation)?;
    params.mode = activation.code();
    check_len(OP, "d_y", d_y, y.len())?;
    Dispatch::stacked(
        gpu,
        Kernel::MseBackward,
        bytemuck::bytes_of(&params),
        &loss_bindings(y, t, d_y, row_weights),
        y.len().div_ceil(ELEMENTWISE_GROUP),
        d_y.models(),
    )
}
