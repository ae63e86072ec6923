//! A training step's output layer in one dispatch (shaders/matmul_head.wgsl, declared in
//! `matmul_fused.rs`): the forward product, the regression loss's gradient (and, in a step
//! whose loss is read, each element's loss term) and the Adam step count.

use super::matmul::{check_vec4_strides, vec4_stand_in};
use super::matmul_fused::{HEAD, HeadBindings};
use super::matmul_kernels::{EPILOGUE_BIAS, EPILOGUE_BIAS_ACT, MatmulKernel, MatmulLayout, MatmulParams, kernel_in};
use super::optim::OptimizerState;
use super::{Activation, check_dims, check_gpu, check_len, model_strides};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};

/// The regression loss whose gradient the output layer's store computes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLoss<'a> {
    /// Targets (B, N), stacked like the output.
    pub target: &'a Tensor,
    /// Per row (B): the loss weights.
    pub row_weights: &'a Tensor,
    /// Where the gradient at the input of `activation` goes (B, N).
    pub d_z: &'a Tensor,
    /// Huber's δ, or 0 for the squared error.
    pub huber_delta: f32,
    /// In a step whose loss is read: where each element's weighted loss term goes (B, N),
    /// for [`matmul_grouped_update`] to sum.
    pub terms: Option<&'a Tensor>,
}

/// A training step's output layer in one dispatch: `y = act(x·W + b)` (b, and the
/// activation, as `activation`: `None` for a linear output), and in the same store the
/// regression loss gradient (when `loss` is given) and, with `count_steps`, each active Adam
/// model's step count and bias corrections. x (B,K), w (K,N), bias (N), y (B,N).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_head(
    gpu: &Gpu,
    kernel: MatmulKernel,
    (x, w, bias, y): (&Tensor, &Tensor, &Tensor, &Tensor),
    activation: Option<Activation>,
    loss: Option<HeadLoss<'_>>,
    state: OptimizerState<'_>,
    count_steps: bool,
) -> Result<Dispatch> {
    const OP: &str = "matmul_head";
    check_gpu(gpu, OP, &[("x", x), ("w", w), ("bias", bias), ("y", y)])?;
    let (batch, inputs) = x.dims2(OP, "x")?;
    let (_, outputs) = w.dims2(OP, "w")?;
    check_dims(OP, "w", w, inputs, outputs)?;
    check_dims(OP, "y", y, batch, outputs)?;
    check_len(OP, "bias", bias, outputs)?;
    if !kernel.available(gpu) || !kernel.supports(MatmulLayout::AB, batch, inputs, outputs) {
        return Err(Error::invalid(
            OP,
            "kernel",
            "one the adapter runs for this shape",
            format!("{kernel:?}"),
        ));
    }
    let scratch = [Tensor::scratch(gpu)?, Tensor::scratch(gpu)?];
    let [target, row_weights, d_z, terms] = loss_operands(loss, x, &scratch, (batch, outputs))?;
    let (models, strides) = model_strides(
        OP,
        y,
        &[
            ("x", x, false),
            ("w", w, false),
            ("y", y, true),
            ("bias", bias, false),
            ("target", target, false),
            ("d_z", d_z, loss.is_some()),
            ("row_weights", row_weights, false),
            ("loss terms", terms, loss.is_some_and(|l| l.terms.is_some())),
        ],
    )?;
    check_len(OP, "active", state.active, models)?;
    check_vec4_strides(OP, kernel, &strides[..2])?;
    let (tiles_n, tiles) = kernel.grid(gpu, batch, outputs, false);
    let params = MatmulParams {
        m: batch as u32,
        n: outputs as u32,
        k: inputs as u32,
        tiles_n: tiles_n as u32,
        tiles: tiles as u32,
        epilogue: if activation.is_some() {
            EPILOGUE_BIAS_ACT
        } else {
            EPILOGUE_BIAS
        },
        rows: batch as u32,
        a_stride: strides[0],
        b_stride: strides[1],
        c_stride: strides[2],
        bias_stride: strides[3],
        saved_stride: strides[4],
        d_bias_stride: strides[5],
        row_weight_stride: strides[6],
        gated: 1,
        activation: activation.unwrap_or(Activation::Identity).code(),
        loss_gradient: loss.is_some() as u32,
        huber_delta: loss.map_or(0.0, |l| l.huber_delta),
        count_steps: count_steps as u32,
        write_loss_terms: loss.is_some_and(|l| l.terms.is_some()) as u32,
        loss_terms_stride: strides[7],
        ..bytemuck::Zeroable::zeroed()
    };
    let bindings = head_bindings(gpu, kernel, [x, w, y, bias, target, d_z, row_weights, terms], state)?;
    let bindings: Vec<(u32, &Tensor)> = bindings.iter().map(|(b, t)| (*b, t)).collect();
    Dispatch::stacked(
        gpu,
        kernel_in(&HEAD, kernel, MatmulLayout::AB),
        bytemuck::bytes_of(&params),
        &bindings,
        tiles,
        models,
    )
}

/// The loss's operands — target, row weights, d_z and loss terms — after checking them against
/// the (B, N) output; unused ones are bound to x (read) and the scratch buffers (written),
/// never touched.
fn loss_operands<'a>(
    loss: Option<HeadLoss<'a>>,
    x: &'a Tensor,
    scratch: &'a [Tensor; 2],
    (batch, outputs): (usize, usize),
) -> Result<[&'a Tensor; 4]> {
    const OP: &str = "matmul_head";
    let Some(l) = loss else {
        return Ok([x, x, &scratch[0], &scratch[1]]);
    };
    check_dims(OP, "target", l.target, batch, outputs)?;
    check_dims(OP, "d_z", l.d_z, batch, outputs)?;
    check_len(OP, "row_weights", l.row_weights, batch)?;
    if let Some(terms) = l.terms {
        check_dims(OP, "loss terms", terms, batch, outputs)?;
    }
    Ok([l.target, l.row_weights, l.d_z, l.terms.unwrap_or(&scratch[1])])
}

/// The head's bindings: x, w (vec4 views for the kernels that read them), y, bias, target,
/// d_z, the row weights and the loss terms, then the step counter's.
fn head_bindings(
    gpu: &Gpu,
    kernel: MatmulKernel,
    [x, w, y, bias, target, d_z, row_weights, terms]: [&Tensor; 8],
    state: OptimizerState<'_>,
) -> Result<Vec<(u32, Tensor)>> {
    type H = HeadBindings;
    let stand_in = vec4_stand_in(gpu, kernel, &[x, w])?;
    let view = |t: &Tensor| -> Tensor {
        match &stand_in {
            Some(s) if t.span() < 4 => s.alias(),
            _ => t.alias(),
        }
    };
    let mut bindings: Vec<(u32, Tensor)> = match kernel {
        MatmulKernel::Vec4 => vec![(H::A4, x.alias()), (H::B4, w.alias())],
        MatmulKernel::Tiled => vec![(H::A, x.alias()), (H::B, w.alias()), (H::A4, view(x)), (H::B4, view(w))],
        MatmulKernel::Naive | MatmulKernel::Lanes | MatmulKernel::LanesDown | MatmulKernel::Subgroup => {
            vec![(H::A, x.alias()), (H::B, w.alias())]
        }
    };
    bindings.extend([
        (H::C, y.alias()),
        (H::BIAS, bias.alias()),
        (H::TARGET, target.alias()),
        (H::D_Z, d_z.alias()),
        (H::ACTIVE, state.active.alias()),
        (H::ROW_WEIGHT, row_weights.alias()),
        (H::HYPERPARAMS, state.hyperparams.alias()),
        (H::MODEL_STATE, state.model_state.alias()),
        (H::LOSS_TERMS, terms.alias()),
    ]);
    Ok(bindings)
}
