//! Bias add, forward and backward (shaders/bias.wgsl).

use super::{check_dims, check_gpu, check_len, elementwise_groups, group_constants, model_strides};
use super::sum::{BLOCKED_SUM, sum_constants};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader, wgsl_bindings, wgsl_struct};
use crate::device::tensor::Tensor;
use crate::error::Result;

wgsl_struct! {
    /// bias.wgsl: y = x + bias, and d_bias = Σ_rows d_y.
    struct BiasParams {
        rows: u32,
        cols: u32,
        accumulate: u32,
        input_stride: u32,
        bias_stride: u32,
        output_stride: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

wgsl_bindings! {
    /// bias.wgsl.
    struct BiasBindings {
        PARAMS = 0 => "read" params_buffer: "BiasParams",
        INPUT = 1 => "read" input: "array<f32>",
        BIAS = 2 => "read" bias: "array<f32>",
        OUTPUT = 3 => "read_write" output: "array<f32>",
    }
}

const SHADER: Shader = Shader {
    file: "bias.wgsl",
    parts: &[
        Part::Consts(sum_constants),
        Part::Consts(group_constants),
        Part::Text(BiasParams::WGSL),
        Part::Text(BiasBindings::WGSL),
        Part::Text(BLOCKED_SUM),
        Part::Text(include_str!("../../shaders/bias.wgsl")),
    ],
    trusted: false,
};
const FORWARD: Kernel = Kernel::new(&SHADER, "bias_add_forward");
const BACKWARD: Kernel = Kernel::new(&SHADER, "bias_add_backward");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![FORWARD, BACKWARD]
}

/// `y = x + bias`, bias broadcast over the rows. x, y (B,N); bias N elements.
pub fn bias_add_forward(gpu: &Gpu, x: &Tensor, bias: &Tensor, y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "bias_add_forward";
    check_gpu(gpu, OP, &[("x", x), ("bias", bias), ("y", y)])?;
    let (rows, cols) = x.dims2(OP, "x")?;
    check_len(OP, "bias", bias, cols)?;
    check_dims(OP, "y", y, rows, cols)?;
    let (models, strides) = model_strides(OP, y, &[("x", x, false), ("bias", bias, false), ("y", y, true)])?;
    let params = BiasParams {
        rows: rows as u32,
        cols: cols as u32,
        accumulate: 0,
        input_stride: strides[0],
        bias_stride: strides[1],
        output_stride: strides[2],
        _pad0: 0,
        _pad1: 0,
    };
    Dispatch::stacked(
        gpu,
        FORWARD,
        bytemuck::bytes_of(&params),
        &[
            (BiasBindings::INPUT, x),
            (BiasBindings::BIAS, bias),
            (BiasBindings::OUTPUT, y),
        ],
elementwise_groups(rows * cols),
        models,
    )
}

/// `d_bias = Σ_rows d_y` (or `+=` with `accumulate`). d_y (B,N); d_bias N elements.
/// The input gradient of a bias add is `d_y` itself.
pub fn bias_add_backward(gpu: &Gpu, d_y: &Tensor, d_bias: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "bias_add_backward";
    check_gpu(gpu, OP, &[("d_y", d_y), ("d_bias", d_bias)])?;
    let (rows, cols) = d_y.dims2(OP, "d_y")?;
    check_len(OP, "d_bias", d_bias, cols)?;
    let (models, strides) = model_strides(OP, d_bias, &[("d_y", d_y, false), ("d_bias", d_bias, true)])?;
    let params = BiasParams {
        rows: rows as u32,
        cols: cols as u32,
        accumulate: accumulate as u32,
        input_stride: strides[0],
        bias_stride: 0,
        output_stride: strides[1],
        _pad0: 0,
        _pad1: 0,
    };
    Dispatch::stacked(
        gpu,
        BACKWARD,
        bytemuck::bytes_of(&params),
        &[(BiasBindings::INPUT, d_y), (BiasBindings::OUTPUT, d_bias)],
elementwise_groups(cols),
        models,
    )
}
