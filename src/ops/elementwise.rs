//! Element-wise sums and copies (shaders/elementwise.wgsl).

use super::{check_gpu, check_len, elementwise_groups, group_constants, model_strides};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader, wgsl_bindings, wgsl_struct};
use crate::device::tensor::Tensor;
use crate::error::Result;

wgsl_struct! {
    /// elementwise.wgsl: out = a + b, out (+)= a.
    struct ElementwiseParams {
        n: u32,
        accumulate: u32,
        a_stride: u32,
        b_stride: u32,
        output_stride: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

wgsl_bindings! {
    /// elementwise.wgsl.
    struct ElementwiseBindings {
        PARAMS = 0 => "read" params_buffer: "ElementwiseParams",
        A = 1 => "read" a: "array<f32>",
        B = 2 => "read" b: "array<f32>",
        OUTPUT = 3 => "read_write" output: "array<f32>",
    }
}

const SHADER: Shader = Shader {
    file: "elementwise.wgsl",
    parts: &[
        Part::Consts(group_constants),
        Part::Text(ElementwiseParams::WGSL),
        Part::Text(ElementwiseBindings::WGSL),
        Part::Text(include_str!("../../shaders/elementwise.wgsl")),
    ],
    trusted: false,
};
const ADD: Kernel = Kernel::new(&SHADER, "add");
const COPY: Kernel = Kernel::new(&SHADER, "copy");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![ADD, COPY]
}

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
        ADD,
        bytemuck::bytes_of(&params),
        &[
            (ElementwiseBindings::A, a),
            (ElementwiseBindings::B, b),
            (ElementwiseBindings::OUTPUT, out),
        ],
elementwise_groups(a.len()),
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
        COPY,
        bytemuck::bytes_of(&params),
        &[(ElementwiseBindings::A, a), (ElementwiseBindings::OUTPUT, out)],
elementwise_groups(a.len()),
        models,
    )
}
