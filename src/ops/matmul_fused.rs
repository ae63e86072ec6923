//! The training step's fused matmuls, which bring a step to two dispatches per layer:
//! - the output layer's forward product with the regression loss's gradient and the Adam
//!   step count in its store (shaders/matmul_head.wgsl): no loss backward, no step counter;
//! - every layer's weight and bias gradient in ONE dispatch (up to [`GROUPS_MAX`] products,
//!   each reading its own operands) with the optimizer's update in the store
//!   (shaders/matmul_grouped.wgsl): no separate update dispatch. The input gradients of the
//!   step come before it, since they read the weights it moves.
//!
//! Both run the plain kernels' bodies (matmul.wgsl, matmul_tiled.wgsl, matmul_subgroup.wgsl)
//! with another store: the same products, so the same bits as the unfused step.

use super::activation::{PRELUDE, prelude_constants};
use super::matmul_kernels::{
    EPILOGUE_BIAS, EPILOGUE_BIAS_ACT, MatmulKernel, MatmulLayout, MatmulParams, MatmulShaders, epilogue_constants,
    kernel_in, tile_constants,
};
use super::mse::MSE_RULES;
use super::optim::{ModelState, OPTIM_RULES, OptimizerState};
use super::{Activation, check_dims, check_gpu, check_len, model_strides};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
#[cfg(test)]
use crate::device::kernel::Kernel;
use crate::device::kernel::{Part, Shader, wgsl_bindings};
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::optim::OptimizerHyperparams;

/// Products one grouped weight-gradient dispatch can hold (each has its own bindings).
pub(crate) const GROUPS_MAX: usize = 4;

wgsl_bindings! {
    /// matmul_head.wgsl: the forward product's, the loss gradient's and the step counter's.
    struct HeadBindings {
        PARAMS = 0 => "read" params_buffer: "MatmulParams",
        A = 1 => "read" a: "array<f32>",
        B = 2 => "read" b: "array<f32>",
        C = 3 => "read_write" c: "array<f32>",
        A4 = 4 => "read" a4: "array<vec4<f32>>",
        B4 = 5 => "read" b4: "array<vec4<f32>>",
        BIAS = 6 => "read" bias: "array<f32>",
        TARGET = 7 => "read" target_values: "array<f32>",
        /// The loss gradient at the input of the output activation.
        D_Z = 8 => "read_write" d_z: "array<f32>",
        ACTIVE = 9 => "read" model_active: "array<u32>",
        ROW_WEIGHT = 10 => "read" row_weight: "array<f32>",
        HYPERPARAMS = 11 => "read" hyperparams: "array<OptimizerHyperparams>",
        MODEL_STATE = 12 => "read_write" model_state: "array<ModelState>",
        /// Declared for optim_rules.wgsl's update rules, which the head never calls.
        WEIGHT = 13 => "read_write" weight: "array<f32>",
        VELOCITY = 14 => "read_write" velocity: "array<f32>",
        SECOND_MOMENT = 15 => "read_write" second_moment: "array<f32>",
        GRAD_AVERAGE = 16 => "read_write" grad_average: "array<f32>",
        /// Each element's weighted loss term, in a step whose loss is read.
        LOSS_TERMS = 17 => "read_write" loss_terms: "array<f32>",
    }
}

wgsl_bindings! {
    /// matmul_grouped.wgsl: product g's operands (g = 0 unsuffixed), the flat gradient
    /// block, and the optimizer's parameters and state.
    struct GroupedBindings {
        PARAMS = 0 => "read" params_buffer: "array<MatmulParams>",
        A = 1 => "read" a: "array<f32>",
        B = 2 => "read" b: "array<f32>",
        /// The flat gradient block.
        C = 3 => "read_write" c: "array<f32>",
        A4 = 4 => "read" a4: "array<vec4<f32>>",
        B4 = 5 => "read" b4: "array<vec4<f32>>",
        ACTIVE = 9 => "read" model_active: "array<u32>",
        A_1 = 10 => "read" a_1: "array<f32>",
        A_2 = 11 => "read" a_2: "array<f32>",
        A_3 = 12 => "read" a_3: "array<f32>",
        B_1 = 13 => "read" b_1: "array<f32>",
        B_2 = 14 => "read" b_2: "array<f32>",
        B_3 = 15 => "read" b_3: "array<f32>",
        A4_1 = 16 => "read" a4_1: "array<vec4<f32>>",
        A4_2 = 17 => "read" a4_2: "array<vec4<f32>>",
        A4_3 = 18 => "read" a4_3: "array<vec4<f32>>",
        B4_1 = 19 => "read" b4_1: "array<vec4<f32>>",
        B4_2 = 20 => "read" b4_2: "array<vec4<f32>>",
        B4_3 = 21 => "read" b4_3: "array<vec4<f32>>",
        /// The flat parameter block and the optimizer's state in its layout.
        WEIGHT = 22 => "read_write" weight: "array<f32>",
        VELOCITY = 23 => "read_write" velocity: "array<f32>",
        SECOND_MOMENT = 24 => "read_write" second_moment: "array<f32>",
        GRAD_AVERAGE = 25 => "read_write" grad_average: "array<f32>",
        HYPERPARAMS = 26 => "read" hyperparams: "array<OptimizerHyperparams>",
        /// Read only (declared writable for optim_rules.wgsl's step counter, never called here).
        MODEL_STATE = 27 => "read_write" model_state: "array<ModelState>",
        /// In a step whose loss is read: the output layer's loss terms, and the loss.
        LOSS_TERMS = 28 => "read" loss_terms: "array<f32>",
        LOSS_OUT = 29 => "read_write" loss_out: "array<f32>",
    }
}

/// A fused variant of the matmul modules: `$bindings` and the store in `$store`.
macro_rules! fused_shader {
    ($name:literal, $file:literal, $bindings:ident, [$($store:expr),*]) => {
        Shader {
            file: $name,
            parts: &[
                Part::Consts(epilogue_constants),
                Part::Consts(tile_constants),
                Part::Consts(prelude_constants),
                Part::Consts(crate::optim::kernel_constants),
                Part::Text(MatmulParams::WGSL),
                Part::Text(OptimizerHyperparams::WGSL),
                Part::Text(ModelState::WGSL),
                Part::Text($bindings::WGSL),
                Part::Text(PRELUDE),
                Part::Text(OPTIM_RULES),
                Part::Text(include_str!("../../shaders/matmul_common.wgsl")),
                $(Part::Text($store),)*
                Part::Text(include_str!(concat!("../../shaders/", $file))),
            ],
            trusted: true,
        }
    };
}

const ONE: &str = include_str!("../../shaders/matmul_one.wgsl");
const HEAD_STORE: &str = include_str!("../../shaders/matmul_head.wgsl");
const GROUPED_STORE: &str = include_str!("../../shaders/matmul_grouped.wgsl");

const HEAD: MatmulShaders = MatmulShaders {
    main: fused_shader!("matmul.wgsl + head", "matmul.wgsl", HeadBindings, [MSE_RULES, ONE, HEAD_STORE]),
    tiled: fused_shader!("matmul_tiled.wgsl + head", "matmul_tiled.wgsl", HeadBindings, [MSE_RULES, ONE, HEAD_STORE]),
    subgroup: fused_shader!(
        "matmul_subgroup.wgsl + head",
        "matmul_subgroup.wgsl",
        HeadBindings,
        [MSE_RULES, ONE, HEAD_STORE]
    ),
};

const GROUPED: MatmulShaders = MatmulShaders {
    main: fused_shader!("matmul.wgsl + grouped update", "matmul.wgsl", GroupedBindings, [GROUPED_STORE]),
    tiled: fused_shader!(
        "matmul_tiled.wgsl + grouped update",
        "matmul_tiled.wgsl",
        GroupedBindings,
        [GROUPED_STORE]
    ),
    subgroup: fused_shader!(
        "matmul_subgroup.wgsl + grouped update",
        "matmul_subgroup.wgsl",
        GroupedBindings,
        [GROUPED_STORE]
    ),
};

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    let mut all: Vec<Kernel> = super::MATMUL_KERNELS
        .into_iter()
        .map(|kernel| kernel_in(&HEAD, kernel, MatmulLayout::AB))
        .collect();
    all.extend(
        super::MATMUL_KERNELS
            .into_iter()
            .filter(|&kernel| kernel != MatmulKernel::Vec4)
            .map(|kernel| kernel_in(&GROUPED, kernel, MatmulLayout::AtB)),
    );
    all
}

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
        return Err(Error::invalid(OP, "kernel", "one the adapter runs for this shape", format!("{kernel:?}")));
    }
    // Unused loss operands are bound to y (read) and y (written): never touched.
    let (target, row_weights, d_z) = match loss {
        Some(l) => {
            check_dims(OP, "target", l.target, batch, outputs)?;
            check_dims(OP, "d_z", l.d_z, batch, outputs)?;
            check_len(OP, "row_weights", l.row_weights, batch)?;
            (l.target, l.row_weights, l.d_z)
        }
        None => (x, x, y),
    };
    // Unused terms are bound to d_z: never written.
    let terms = loss.and_then(|l| l.terms).unwrap_or(d_z);
    if loss.is_some_and(|l| l.terms.is_some()) {
        check_dims(OP, "loss terms", terms, batch, outputs)?;
    }
    let (models, strides) = model_strides(
        OP,
        y,
        &[
            ("x", x, false),
            ("w", w, false),
            ("y", y, true),
            ("bias", bias, false),
            ("target", target, false),
            ("d_z", d_z, true),
            ("row_weights", row_weights, false),
            ("loss terms", terms, true),
        ],
    )?;
    check_len(OP, "active", state.active, models)?;
    if kernel == MatmulKernel::Vec4 && strides[..2].iter().any(|s| s % 4 != 0) {
        return Err(Error::invalid(OP, "model strides of x and w for Vec4", "multiples of 4", format!("{:?}", &strides[..2])));
    }
    let (tile_rows, tile_cols) = kernel.tile(gpu);
    let tiles_n = outputs.div_ceil(tile_cols);
    let tiles = batch.div_ceil(tile_rows) * tiles_n;
    let params = MatmulParams {
        m: batch as u32,
        n: outputs as u32,
        k: inputs as u32,
        tiles_n: tiles_n as u32,
        tiles: tiles as u32,
        epilogue: if activation.is_some() { EPILOGUE_BIAS_ACT } else { EPILOGUE_BIAS },
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

/// One layer's weight gradient in a grouped dispatch: `dW = xᵀ·d_y` (x (B,IN), d_y
/// (B,OUT)) and, with a bias, `db = Σ_rows d_y`, landing in the flat gradient block at
/// `weight_offset` (IN·OUT values) and `bias_offset` (OUT), where the flat parameter block
/// holds the weights and bias they update.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WeightGradient<'a> {
    pub x: &'a Tensor,
    pub d_y: &'a Tensor,
    pub weight_offset: usize,
    pub bias_offset: Option<usize>,
}

/// The flat blocks a grouped update writes: gradients and parameters (each stacked model's
/// `model_stride` further on), and the optimizer's state in their layout.
#[derive(Clone, Copy)]
pub(crate) struct FlatBlocks<'a> {
    pub grads: &'a Tensor,
    pub params: &'a Tensor,
    pub model_stride: usize,
    pub state: OptimizerState<'a>,
}

/// The loss of a step whose loss is read, summed by a grouped dispatch's last workgroup (per
/// model) from the terms [`matmul_head`] wrote: `count` terms per model into `out` (1 per
/// model), in the order of the loss kernel's reduction over `reduce_threads` invocations.
#[derive(Clone, Copy)]
pub(crate) struct GroupedLoss<'a> {
    pub terms: &'a Tensor,
    pub out: &'a Tensor,
    pub reduce_threads: u32,
}

/// Terms one workgroup's serial sum may take (a step with more keeps its loss dispatch).
pub(crate) const GROUPED_LOSS_MAX_TERMS: usize = 16384;

/// Up to [`GROUPS_MAX`] weight gradients in one dispatch with `kernel` (any but `Vec4`),
/// each element of each gradient updating its parameter by its model's optimizer as it is
/// stored. Adam's step counts must already be advanced (by [`matmul_head`]'s `count_steps`).
pub(crate) fn matmul_grouped_update(
    gpu: &Gpu,
    kernel: MatmulKernel,
    groups: &[WeightGradient<'_>],
    flat: FlatBlocks<'_>,
    loss: Option<GroupedLoss<'_>>,
) -> Result<Dispatch> {
    const OP: &str = "matmul_grouped_update";
    if groups.is_empty() || groups.len() > GROUPS_MAX {
        return Err(Error::invalid(OP, "groups", format!("1 to {GROUPS_MAX}"), groups.len()));
    }
    if kernel == MatmulKernel::Vec4 || !kernel.available(gpu) {
        return Err(Error::invalid(OP, "kernel", "one the adapter runs, not Vec4", format!("{kernel:?}")));
    }
    let models = flat.state.active.len();
    check_len(OP, "flat grads", flat.grads, models * flat.model_stride)?;
    check_len(OP, "flat params", flat.params, models * flat.model_stride)?;
    let (tile_rows, tile_cols) = kernel.tile(gpu);
    let mut params = vec![<MatmulParams as bytemuck::Zeroable>::zeroed(); GROUPS_MAX];
    let mut tile_start = 0;
    for (g, group) in groups.iter().enumerate() {
        check_gpu(gpu, OP, &[("x", group.x), ("d_y", group.d_y)])?;
        let (batch, inputs) = group.x.dims2(OP, "x")?;
        let (_, outputs) = group.d_y.dims2(OP, "d_y")?;
        check_dims(OP, "d_y", group.d_y, batch, outputs)?;
        let ends = [
            Some(group.weight_offset + inputs * outputs),
            group.bias_offset.map(|b| b + outputs),
        ];
        if ends.into_iter().flatten().any(|end| end > flat.model_stride) {
            return Err(Error::invalid(OP, "offsets", "inside one model's flat block", flat.model_stride));
        }
        let (_, strides) = model_strides(OP, group.x, &[("x", group.x, true), ("d_y", group.d_y, true)])?;
        if group.x.models() != models {
            return Err(Error::shape(OP, "x and d_y (stacked models)", models, group.x.models()));
        }
        let rows = inputs + usize::from(group.bias_offset.is_some());
        let tiles_n = outputs.div_ceil(tile_cols);
        let tiles = rows.div_ceil(tile_rows) * tiles_n;
        params[g] = MatmulParams {
            m: inputs as u32,
            n: outputs as u32,
            k: batch as u32,
            tiles_n: tiles_n as u32,
            tiles: tiles as u32,
            rows: rows as u32,
            a_stride: strides[0],
            b_stride: strides[1],
            c_stride: flat.model_stride as u32,
            gated: 1,
            groups: groups.len() as u32,
            tile_start: tile_start as u32,
            c_offset: group.weight_offset as u32,
            d_bias_offset: group.bias_offset.unwrap_or(0) as u32,
            ..bytemuck::Zeroable::zeroed()
        };
        tile_start += tiles;
    }
    if let Some(loss) = loss {
        let count = loss.terms.len();
        let threads = loss.reduce_threads;
        if loss.terms.models() != models || loss.out.models() != models || loss.out.len() != 1 {
            return Err(Error::shape(OP, "loss terms and value (stacked models)", models, loss.out.models()));
        }
        if count > GROUPED_LOSS_MAX_TERMS || !threads.is_power_of_two() || threads > 1024 {
            return Err(Error::invalid(OP, "loss", "≤ 16384 terms, ≤ 1024 threads", count));
        }
        params[0].loss_terms = count as u32;
        params[0].loss_terms_stride = loss.terms.model_stride() as u32;
        params[0].loss_stride = loss.out.model_stride() as u32;
        params[0].reduce_threads = threads;
    }
    let bindings = grouped_bindings(gpu, kernel, groups, flat, loss)?;
    let bindings: Vec<(u32, &Tensor)> = bindings.iter().map(|(b, t)| (*b, t)).collect();
    Dispatch::stacked(
        gpu,
        kernel_in(&GROUPED, kernel, MatmulLayout::AtB),
        bytemuck::cast_slice(&params),
        &bindings,
        tile_start + usize::from(loss.is_some()),
        models,
    )
}

/// The grouped dispatch's bindings: each product's operands (unused slots repeat product
/// 0's, which the shader never reads there), vec4 views for the tiled kernel, the flat blocks.
fn grouped_bindings(
    gpu: &Gpu,
    kernel: MatmulKernel,
    groups: &[WeightGradient<'_>],
    flat: FlatBlocks<'_>,
    loss: Option<GroupedLoss<'_>>,
) -> Result<Vec<(u32, Tensor)>> {
    type G = GroupedBindings;
    let a_slots = [G::A, G::A_1, G::A_2, G::A_3];
    let b_slots = [G::B, G::B_1, G::B_2, G::B_3];
    let a4_slots = [G::A4, G::A4_1, G::A4_2, G::A4_3];
    let b4_slots = [G::B4, G::B4_1, G::B4_2, G::B4_3];
    let operands: Vec<&Tensor> = groups.iter().flat_map(|g| [g.x, g.d_y]).collect();
    let stand_in = vec4_stand_in(gpu, kernel, &operands)?;
    let view = |t: &Tensor| -> Tensor {
        match &stand_in {
            Some(s) if t.span() < 4 => s.alias(),
            _ => t.alias(),
        }
    };
    let mut bindings = Vec::new();
    for slot in 0..GROUPS_MAX {
        let group = groups.get(slot).unwrap_or(&groups[0]);
        bindings.push((a_slots[slot], group.x.alias()));
        bindings.push((b_slots[slot], group.d_y.alias()));
        if kernel == MatmulKernel::Tiled {
            bindings.push((a4_slots[slot], view(group.x)));
            bindings.push((b4_slots[slot], view(group.d_y)));
        }
    }
    let state = flat.state;
    bindings.extend([
        (G::C, flat.grads.alias()),
        (G::ACTIVE, state.active.alias()),
        (G::WEIGHT, flat.params.alias()),
        (G::VELOCITY, state.velocity.alias()),
        (G::SECOND_MOMENT, state.second_moment.alias()),
        (G::GRAD_AVERAGE, state.grad_average.alias()),
        (G::HYPERPARAMS, state.hyperparams.alias()),
        (G::MODEL_STATE, state.model_state.alias()),
        // without a loss: stand-ins the shader never reads or writes
        (G::LOSS_TERMS, loss.map_or(groups[0].x, |l| l.terms).alias()),
        (G::LOSS_OUT, loss.map_or(flat.grads, |l| l.out).alias()),
    ]);
    Ok(bindings)
}

/// Storage buffers the grouped dispatch binds with `kernel` (the adapter must allow as
/// many per shader stage).
pub(crate) fn grouped_storage_buffers(kernel: MatmulKernel) -> u32 {
    let per_group = if kernel == MatmulKernel::Tiled { 4 } else { 2 };
    1 + per_group * GROUPS_MAX as u32 + 10
}

/// Storage buffers the output layer's fused dispatch binds (at most).
pub(crate) fn head_storage_buffers() -> u32 {
    14
}

/// A 4-element stand-in for operands too short for a vec4 binding (the tiled kernel never
/// reads them as vec4s; see matmul_tiled.wgsl).
fn vec4_stand_in(gpu: &Gpu, kernel: MatmulKernel, operands: &[&Tensor]) -> Result<Option<Tensor>> {
    if kernel == MatmulKernel::Tiled && operands.iter().any(|t| t.span() < 4) {
        Tensor::zeros(gpu, &[4]).map(Some)
    } else {
        Ok(None)
    }
}
