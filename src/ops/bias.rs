//! Bias add, forward and backward (shaders/bias.wgsl).

use crate::bindings::BiasBindings;
use crate::params::BiasParams;

use super::{ELEMENTWISE_GROUP, check_dims, check_gpu, check_len, model_strides};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::tensor::Tensor;

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
        Kernel::BiasAddForward,
        bytemuck::bytes_of(&params),
        &[
            (BiasBindings::INPUT, x),
            (BiasBindings::BIAS, bias),
            (BiasBindings::OUTPUT, y),
        ],
        (rows * cols).div_ceil(ELEMENTWISE_GROUP),
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
        Kernel::BiasAddBackward,
        bytemuck::bytes_of(&params),
        &[(BiasBindings::INPUT, d_y), (BiasBindings::OUTPUT, d_bias)],
        cols.div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}
