//! Element-wise activations, forward and backward (shaders/activation.wgsl).

use bytemuck::{Pod, Zeroable};

use super::{ELEMENTWISE_GROUP, check_gpu, check_len, model_strides};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SigmoidParams {
    n: u32,
    accumulate: u32,
    input_stride: u32,
    saved_stride: u32,
    output_stride: u32,
    _pad: [u32; 3],
}

/// `y = σ(x)` element-wise; x and y have the same element count.
pub fn sigmoid_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "sigmoid_forward";
    check_gpu(gpu, OP, &[("x", x), ("y", y)])?;
    check_len(OP, "y", y, x.len())?;
    let (models, strides) = model_strides(OP, y, &[("x", x, false), ("y", y, true)])?;
    let params = SigmoidParams {
        n: x.len() as u32,
        accumulate: 0,
        input_stride: strides[0],
        saved_stride: 0,
        output_stride: strides[1],
        _pad: [0; 3],
    };
    Dispatch::stacked(
        gpu,
        Kernel::SigmoidForward,
        bytemuck::bytes_of(&params),
        &[(1, x), (3, y)],
        x.len().div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

/// `d_x = d_y ⊙ y ⊙ (1 − y)` from the saved forward output `y` (or `+=` with `accumulate`).
pub fn sigmoid_backward(gpu: &Gpu, d_y: &Tensor, y: &Tensor, d_x: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "sigmoid_backward";
    check_gpu(gpu, OP, &[("d_y", d_y), ("y", y), ("d_x", d_x)])?;
    check_len(OP, "y", y, d_y.len())?;
    check_len(OP, "d_x", d_x, d_y.len())?;
    let (models, strides) = model_strides(OP, d_x, &[("d_y", d_y, false), ("y", y, false), ("d_x", d_x, true)])?;
    let params = SigmoidParams {
        n: d_y.len() as u32,
        accumulate: accumulate as u32,
        input_stride: strides[0],
        saved_stride: strides[1],
        output_stride: strides[2],
        _pad: [0; 3],
    };
    Dispatch::stacked(
        gpu,
        Kernel::SigmoidBackward,
        bytemuck::bytes_of(&params),
        &[(1, d_y), (2, y), (3, d_x)],
        d_y.len().div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}
