//! Mean squared error, the seed's ½ Σ (y − t)² per sample, forward and backward (shaders/mse.wgsl).

use bytemuck::{Pod, Zeroable};

use super::{Activation, ELEMENTWISE_GROUP, check_dims, check_gpu, check_grad_from_output, check_len, model_strides};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MseParams {
    rows: u32,
    cols: u32,
    /// `Activation::code` of the output layer the gradient is taken through (identity: none).
    output_activation: u32,
    prediction_stride: u32,
    target_stride: u32,
    output_stride: u32,
    weight_stride: u32,
    _pad: u32,
}

fn mse_dims(
    op: &'static str,
    gpu: &Gpu,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    out: &Tensor,
) -> Result<MseParams> {
    check_gpu(
        gpu,
        op,
        &[("y", y), ("t", t), ("row_weights", row_weights), ("output", out)],
    )?;
    let (rows, cols) = y.dims2(op, "y")?;
    check_dims(op, "t", t, rows, cols)?;
    check_len(op, "row_weights", row_weights, rows)?;
    let (_, strides) = model_strides(
        op,
        out,
        &[
            ("y", y, false),
            ("t", t, false),
            ("output", out, true),
            ("row_weights", row_weights, false),
        ],
    )?;
    Ok(MseParams {
        rows: rows as u32,
        cols: cols as u32,
        output_activation: 0,
        prediction_stride: strides[0],
        target_stride: strides[1],
        output_stride: strides[2],
        weight_stride: strides[3],
        _pad: 0,
    })
}

/// `loss = Σ_i w_i · ½ Σ_j (y_ij − t_ij)²`, one scalar, reduced deterministically. With
/// `w_i = 1/B` this is the mean over the batch. y, t (B,N); row_weights B; loss 1 element.
pub fn mse_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    const OP: &str = "mse_forward";
    let params = mse_dims(OP, gpu, y, t, row_weights, loss)?;
    check_len(OP, "loss", loss, 1)?;
    Dispatch::stacked(
        gpu,
        Kernel::MseForward,
        bytemuck::bytes_of(&params),
        &[(1, y), (2, t), (3, loss), (4, row_weights)],
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
    let mut params = mse_dims(OP, gpu, y, t, row_weights, d_y)?;
    check_grad_from_output(OP, activation)?;
    params.output_activation = activation.code();
    check_len(OP, "d_y", d_y, y.len())?;
    Dispatch::stacked(
        gpu,
        Kernel::MseBackward,
        bytemuck::bytes_of(&params),
        &[(1, y), (2, t), (3, d_y), (4, row_weights)],
        y.len().div_ceil(ELEMENTWISE_GROUP),
        d_y.models(),
    )
}
