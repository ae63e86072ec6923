//! What the loss kernels (mse.rs, softmax_xent.rs) share: the parameter block and bindings,
//! the deterministic reduction their forward kernels end with, and the operand checks.

use super::{check_dims, check_gpu, check_len, model_strides};
use crate::device::gpu::Gpu;
use crate::device::kernel::{wgsl_bindings, wgsl_struct};
use crate::device::tensor::Tensor;
use crate::error::Result;

wgsl_struct! {
    /// mse.wgsl and softmax_xent.wgsl: a loss and its gradient over (rows, cols).
    struct LossParams {
        rows: u32,
        cols: u32,
        /// MSE and Huber: `Activation::code` of the output layer the gradient goes through;
        /// cross-entropy: its kind (`KIND_SOFTMAX`, `KIND_SIGMOID`).
        mode: u32,
        prediction_stride: u32,
        target_stride: u32,
        output_stride: u32,
        weight_stride: u32,
        /// mse.wgsl: Huber's δ, or 0 for the squared error.
        huber_delta: f32,
        /// mse_forward: also write the gradient (as mse_backward would) into `gradient`.
        write_gradient: u32,
        gradient_stride: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

wgsl_bindings! {
    /// mse.wgsl and softmax_xent.wgsl (whose predictions are logits).
    struct LossBindings {
        PARAMS = 0 => "read" params_buffer: "LossParams",
        PREDICTION = 1 => "read" prediction: "array<f32>",
        TARGETS = 2 => "read" target_values: "array<f32>",
        /// The loss, or the gradient with respect to the predictions.
        OUTPUT = 3 => "read_write" output: "array<f32>",
        ROW_WEIGHT = 4 => "read" row_weight: "array<f32>",
        /// mse_forward's gradient, when it writes one (bound to OUTPUT when not).
        GRADIENT = 5 => "read_write" gradient: "array<f32>",
    }
}

/// The deterministic single-workgroup sum every loss's forward kernel ends with.
pub(super) const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");

/// Invocations of a loss's single-workgroup reduction (`REDUCE_THREADS`, reduce.wgsl): 8 on CPU adapters (each barrier
/// switches every SIMD group in and out); on GPUs the largest power of two up to 1024 the
/// device allows, since that one workgroup streams the whole batch (xl: 16.8M outputs took
/// 29.7 ms with 256 on an H100).
/// REDUCE_THREADS on `gpu`: the invocations (and so the order) of the loss kernels' sums.
pub(crate) fn reduce_threads(gpu: &Gpu) -> u32 {
    reduction_threads(gpu).first().map_or(1, |&(_, threads)| threads as u32)
}

pub(super) fn reduction_threads(gpu: &Gpu) -> Vec<(&'static str, f64)> {
    if gpu.is_software() {
        return vec![("REDUCE_THREADS", 8.0)];
    }
    let limits = gpu.limits();
    let limit = limits
        .max_compute_invocations_per_workgroup
        .min(limits.max_compute_workgroup_size_x)
        .clamp(1, 1024);
    vec![("REDUCE_THREADS", f64::from(1u32 << (31 - limit.leading_zeros())))]
}

/// Checks a loss kernel's operands — y, t (B,N), row_weights (B), on `gpu` — and lays out
/// their model strides; `out` is the loss (1) or the gradient (B,N).
pub(super) fn loss_params(
    op: &'static str,
    gpu: &Gpu,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    out: &Tensor,
) -> Result<LossParams> {
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
    Ok(LossParams {
        rows: rows as u32,
        cols: cols as u32,
        mode: 0,
        prediction_stride: strides[0],
        target_stride: strides[1],
        output_stride: strides[2],
        weight_stride: strides[3],
        huber_delta: 0.0,
        write_gradient: 0,
        gradient_stride: 0,
        _pad0: 0,
        _pad1: 0,
    })
}

/// Outputs up to which a loss computes its value and gradient in one dispatch: its one
/// workgroup writes every gradient, which beats a second launch for batch-sized outputs
/// (mnist's 128 × 10) but not for xl's 16.8M.
pub(super) const FUSED_MAX_OUTPUTS: usize = 1 << 16;

/// Makes a forward loss kernel also write its gradient into `d_y` (y's shape, stacked as the
/// loss is): the fused loss-and-gradient dispatch.
pub(super) fn write_gradient_to(
    op: &'static str,
    params: &mut LossParams,
    y: &Tensor,
    loss: &Tensor,
    d_y: &Tensor,
) -> Result<()> {
    check_len(op, "d_y", d_y, y.len())?;
    if d_y.models() != loss.models() {
        return Err(crate::error::Error::shape(
            op,
            "d_y (stacked models)",
            loss.models(),
            d_y.models(),
        ));
    }
    params.write_gradient = 1;
    params.gradient_stride = d_y.model_stride() as u32;
    Ok(())
}

/// The bindings every loss kernel takes: predictions (or logits) y, targets t, the loss or
/// gradient output, and the per-row weights.
pub(super) fn loss_bindings<'a>(
    y: &'a Tensor,
    t: &'a Tensor,
    output: &'a Tensor,
    row_weights: &'a Tensor,
) -> [(u32, &'a Tensor); 4] {
    [
        (LossBindings::PREDICTION, y),
        (LossBindings::TARGETS, t),
        (LossBindings::OUTPUT, output),
        (LossBindings::ROW_WEIGHT, row_weights),
    ]
}
