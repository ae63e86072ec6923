//! The training step's fused matmuls, which bring a step to two dispatches per layer:
//! - the output layer's forward product with the regression loss's gradient and the Adam
//!   step count in its store (shaders/matmul_head.wgsl): no loss backward, no step counter;
//! - every layer's weight and bias gradient in ONE dispatch (up to [`GROUPS_MAX`] products,
//!   each reading its own operands) with the optimizer's update in the store
//!   (shaders/matmul_grouped.wgsl): no separate update dispatch. The input gradients of the
//!   step come before it, since they read the weights it moves.
//!
//! Both run the plain kernels' bodies (matmul.wgsl, matmul_tiled.wgsl, matmul_subgroup.wgsl)
//! with another store: the same products, so the same bits as the unfused step. This file
//! declares their bindings and modules; the builders are `matmul_head.rs` and
//! `matmul_grouped.rs`, beside their shaders.

use super::activation::{PRELUDE, prelude_constants};
#[cfg(test)]
use super::matmul_kernels::{MatmulLayout, kernel_in};
use super::matmul_kernels::{MatmulKernel, MatmulParams, MatmulShaders, epilogue_constants, tile_constants};
use super::mse::MSE_RULES;
use super::optim::{ModelState, OPTIM_RULES};
use super::sum::{BLOCKED_SUM, sum_constants};
use crate::device::kernel::{Kernel, Part, Shader, wgsl_bindings, wgsl_consts};
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

wgsl_consts! {
    pub(super) fn mixed_constants;
    /// `MatmulParams::mixed_kernel`: the lanes kernel, lanes across the columns.
    const MIXED_LANES: u32 = 0;
    /// The lanes kernel, lanes down the rows.
    const MIXED_LANES_DOWN: u32 = 1;
    /// The subgroup kernel.
    const MIXED_SUBGROUP: u32 = 2;
}

/// A fused variant of the matmul modules: `$bindings` and the store in `$store`.
macro_rules! fused_shader {
    ($name:literal, $file:literal, $bindings:ident, [$($store:expr),*]) => {
        Shader {
            file: $name,
            parts: &[
                Part::Consts(sum_constants),
                Part::Consts(epilogue_constants),
                Part::Consts(tile_constants),
                Part::Consts(prelude_constants),
                Part::Consts(crate::optim::kernel_constants),
                Part::Consts(mixed_constants),
                Part::Text(MatmulParams::WGSL),
                Part::Text(OptimizerHyperparams::WGSL),
                Part::Text(ModelState::WGSL),
                Part::Text($bindings::WGSL),
                Part::Text(PRELUDE),
                Part::Text(OPTIM_RULES),
                Part::Text(BLOCKED_SUM),
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

pub(super) const HEAD: MatmulShaders = MatmulShaders {
    main: fused_shader!("matmul.wgsl + head", "matmul.wgsl", HeadBindings, [MSE_RULES, ONE, HEAD_STORE]),
    tiled: fused_shader!("matmul_tiled.wgsl + head", "matmul_tiled.wgsl", HeadBindings, [MSE_RULES, ONE, HEAD_STORE]),
    subgroup: fused_shader!(
        "matmul_subgroup.wgsl + head",
        "matmul_subgroup.wgsl",
        HeadBindings,
        [MSE_RULES, ONE, HEAD_STORE]
    ),
};

pub(super) const GROUPED: MatmulShaders = MatmulShaders {
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

/// The grouped weight gradients with each product's own kernel (on CPU adapters with
/// subgroups): the lanes and subgroup kernels' bodies and an entry point that picks one per
/// workgroup (matmul_mixed.wgsl).
const GROUPED_MIXED: Shader = fused_shader!(
    "matmul_mixed.wgsl + grouped update",
    "matmul_mixed.wgsl",
    GroupedBindings,
    [
        GROUPED_STORE,
        include_str!("../../shaders/matmul.wgsl"),
        include_str!("../../shaders/matmul_subgroup.wgsl")
    ]
);

/// The grouped weight gradients' mixed entry point (weight gradients: op(A) = Xᵀ).
pub(super) const GROUPED_MIXED_KERNEL: Kernel =
    Kernel::new(&GROUPED_MIXED, "matmul_grouped_mixed").with_constants(&[("TRANS_A", 1.0), ("TRANS_B", 0.0)]);

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
    all.push(GROUPED_MIXED_KERNEL);
    all
}

/// Storage buffers the grouped dispatch binds with `kernel` (the adapter must allow as
/// many per shader stage); the mixed entry point binds as many as the scalar kernels.
pub(crate) fn grouped_storage_buffers(kernel: MatmulKernel) -> u32 {
    let per_group = if kernel == MatmulKernel::Tiled { 4 } else { 2 };
    1 + per_group * GROUPS_MAX as u32 + 10
}

/// Storage buffers the output layer's fused dispatch binds (at most).
pub(crate) fn head_storage_buffers() -> u32 {
    14
}
