//! Cross-entropy from logits, forward and backward (shaders/softmax_xent.wgsl): softmax over
//! classes, or a sigmoid per output (binary); the f64 references are `Loss::SoftmaxCrossEntropy`
//! and `Loss::BinaryCrossEntropy` in loss.rs.

use super::loss_kernels::{
    LossBindings, LossParams, REDUCE, loss_bindings, loss_params, reduction_threads, write_gradient_to,
};
use super::sum::{BLOCKED_SUM, sum_constants};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader};
use crate::device::tensor::Tensor;
use crate::device::kernel::wgsl_consts;
use crate::error::Result;

wgsl_consts! {
    fn xent_constants;
    /// The kinds of `softmax_xent.wgsl` (`LossParams::mode`).
    const KIND_SOFTMAX: u32 = 0;
    const KIND_SIGMOID: u32 = 1;
    /// Rows per workgroup of the backward kernel (one invocation per row).
    const XENT_ROWS_PER_GROUP: u32 = 64;
}

const SHADER: Shader = Shader {
    file: "softmax_xent.wgsl",
    parts: &[
        Part::Consts(sum_constants),
        Part::Consts(xent_constants),
        Part::Text(LossParams::WGSL),
        Part::Text(LossBindings::WGSL),
        Part::Text(REDUCE),
        Part::Text(BLOCKED_SUM),
        Part::Text(include_str!("../../shaders/softmax_xent.wgsl")),
    ],
    trusted: false,
};
const FORWARD: Kernel = Kernel::new(&SHADER, "xent_forward").with_adapter_constants(reduction_threads);
const BACKWARD: Kernel = Kernel::new(&SHADER, "xent_backward");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![FORWARD, BACKWARD]
}

/// `loss = Σ_i w_i · Σ_j t_ij (lse_i − y_ij)`, one scalar, reduced deterministically. With
/// `w_i = 1/B` the mean over the batch. y (logits), t (B,N); row_weights B; loss 1 element.
pub fn xent_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    forward(gpu, KIND_SOFTMAX, y, t, row_weights, loss)
}

/// `loss = Σ_i w_i · Σ_j (max(y, 0) − y t + log(1 + exp(−|y|)))`: binary cross-entropy of
/// each output from its logit. Shapes as [`xent_forward`].
pub fn bce_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    forward(gpu, KIND_SIGMOID, y, t, row_weights, loss)
}

/// `d_y = w_i · (σ(y) − t)`. Shapes as [`xent_backward`].
pub fn bce_backward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    backward(gpu, KIND_SIGMOID, y, t, row_weights, d_y)
}


fn forward(gpu: &Gpu, kind: u32, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    forward_maybe_with_gradient(gpu, kind, [y, t, row_weights], loss, None)
}

/// The loss ([`xent_forward`] or [`bce_forward`] by `softmax`) and its gradient ([`xent_backward`]
/// or [`bce_backward`]) into `d_y` in one dispatch, the same bits as the two.
pub(super) fn forward_with_gradient(
    gpu: &Gpu,
    softmax: bool,
    [y, t, row_weights]: [&Tensor; 3],
    loss: &Tensor,
    d_y: &Tensor,
) -> Result<Dispatch> {
    let kind = if softmax { KIND_SOFTMAX } else { KIND_SIGMOID };
    forward_maybe_with_gradient(gpu, kind, [y, t, row_weights], loss, Some(d_y))
}

fn forward_maybe_with_gradient(
    gpu: &Gpu,
    kind: u32,
    [y, t, row_weights]: [&Tensor; 3],
    loss: &Tensor,
    d_y: Option<&Tensor>,
) -> Result<Dispatch> {
    const OP: &str = "xent_forward";
    let mut params = loss_params(OP, gpu, y, t, row_weights, loss)?;
    params.mode = kind;
    super::check_len(OP, "loss", loss, 1)?;
    if let Some(d_y) = d_y {
        write_gradient_to(OP, &mut params, y, loss, d_y)?;
    }
    let mut bindings = loss_bindings(y, t, loss, row_weights).to_vec();
    let unused_gradient = Tensor::scratch(gpu)?;
    bindings.push((LossBindings::GRADIENT, d_y.unwrap_or(&unused_gradient))); // scratch: never written
    Dispatch::stacked(gpu, FORWARD, bytemuck::bytes_of(&params), &bindings, 1, loss.models())
}

/// `d_y = w_i · (softmax(y_i) · Σ_j t_ij − t_i)` (softmax − onehot for one-hot targets).
/// y, t, d_y (B,N); row_weights B.
pub fn xent_backward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    backward(gpu, KIND_SOFTMAX, y, t, row_weights, d_y)
}

fn backward(gpu: &Gpu, kind: u32, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "xent_backward";
    let mut params = loss_params(OP, gpu, y, t, row_weights, d_y)?;
    params.mode = kind;
    super::check_len(OP, "d_y", d_y, y.len())?;
    Dispatch::stacked(
        gpu,
        BACKWARD,
        bytemuck::bytes_of(&params),
        &loss_bindings(y, t, d_y, row_weights),
        (params.rows as usize).div_ceil(XENT_ROWS_PER_GROUP as usize),
        d_y.models(),
    )
}
