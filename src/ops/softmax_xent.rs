//! Cross-entropy from logits, forward and backward (shaders/softmax_xent.wgsl): softmax over
//! classes, or a sigmoid per output (binary); the f64 references are `Loss::SoftmaxCrossEntropy`
//! and `Loss::BinaryCrossEntropy` in loss.rs.

use super::loss::{loss_bindings, loss_params};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::tensor::Tensor;

/// Rows per workgroup of the backward kernel (`@workgroup_size` of `xent_backward`).
const ROWS_PER_GROUP: usize = 64;

/// `loss = Σ_i w_i · Σ_j t_ij (lse_i − y_ij)`, one scalar, reduced deterministically. With
/// `w_i = 1/B` the mean over the batch. y (logits), t (B,N); row_weights B; loss 1 element.
pub fn xent_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    forward(gpu, SOFTMAX, y, t, row_weights, loss)
}

/// `loss = Σ_i w_i · Σ_j (max(y, 0) − y t + log(1 + exp(−|y|)))`: binary cross-entropy of
/// each output from its logit. Shapes as [`xent_forward`].
pub fn bce_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    forward(gpu, SIGMOID, y, t, row_weights, loss)
}

/// `d_y = w_i · (σ(y) − t)`. Shapes as [`xent_backward`].
pub fn bce_backward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    backward(gpu, SIGMOID, y, t, row_weights, d_y)
}

/// The kinds of `softmax_xent.wgsl`.
const SOFTMAX: u32 = 0;
const SIGMOID: u32 = 1;

fn forward(gpu: &Gpu, kind: u32, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    const OP: &str = "xent_forward";
    let mut params = loss_params(OP, gpu, y, t, row_weights, loss)?;
    params.mode = kind;
    super::check_len(OP, "loss", loss, 1)?;
    Dispatch::stacked(
        gpu,
        Kernel::XentForward,
        bytemuck::bytes_of(&params),
        &loss_bindings(y, t, loss, row_weights),
        1,
        loss.models(),
    )
}

/// `d_y = w_i · (softmax(y_i) · Σ_j t_ij − t_i)` (softmax − onehot for one-hot targets).
/// y, t, d_y (B,N); row_weights B.
pub fn xent_backward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    backward(gpu, SOFTMAX, y, t, row_weights, d_y)
}

fn backward(gpu: &Gpu, kind: u32, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "xent_backward";
    let mut params = loss_params(OP, gpu, y, t, row_weights, d_y)?;
    params.mode = kind;
    super::check_len(OP, "d_y", d_y, y.len())?;
    Dispatch::stacked(
        gpu,
        Kernel::XentBackward,
        bytemuck::bytes_of(&params),
        &loss_bindings(y, t, d_y, row_weights),
        (params.rows as usize).div_ceil(ROWS_PER_GROUP),
        d_y.models(),
    )
}
