//! Element-wise sums and copies (shaders/elementwise.wgsl).

use crate::bindings::ElementwiseBindings;
use crate::params::ElementwiseParams;

use super::{ELEMENTWISE_GROUP, check_gpu, check_len, model_strides};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::tensor::Tensor;

/// `out = a + b`, all the same length.
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor, out: &Tensor) -> Result<Dispatch> {
    const OP: &str = "add";
    check_gpu(gpu, OP, &[("a", a), ("b", b), ("out", out)])?;
    check_len(OP, "b", b, a.len())?;
    check_len(OP, "out", out, a.len())?;
    let (models, strides) = model_strides(OP, out, &[("a", a, false), ("b", b, false), ("out", out, true)])?;
    let params = ElementwiseParams {
        n: a.len() as u32,
        accumulate: 0,
        a_stride: strides[0],
        b_stride: strides[1],
        output_stride: strides[2],
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    Dispatch::stacked(
        gpu,
        Kernel::Add,
        bytemuck::bytes_of(&params),
        &[
            (ElementwiseBindings::A, a),
            (ElementwiseBindings::B, b),
            (ElementwiseBindings::OUTPUT, out),
        ],
        a.len().div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

/// `out = a`, or `out += a` with `accumulate`; both the same length. This is how a
/// gradient passes through an add or a bias add.
pub fn copy(gpu: &Gpu, a: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "copy";
    check_gpu(gpu, OP, &[("a", a), ("out", out)])?;
    check_len(OP, "out", out, a.len())?;
    let (models, strides) = model_strides(OP, out, &[("a", a, false), ("out", out, true)])?;
    let params = ElementwiseParams {
        n: a.len() as u32,
        accumulate: accumulate as u32,
        a_stride: strides[0],
        b_stride: 0,
        output_stride: strides[1],
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    Dispatch::stacked(
        gpu,
        Kernel::Copy,
        bytemuck::bytes_of(&params),
        &[(ElementwiseBindings::A, a), (ElementwiseBindings::OUTPUT, out)],
        a.len().div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}
