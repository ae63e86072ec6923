//! The whole training step of a tiny net in one dispatch (shaders/tiny.wgsl): forward, MSE,
//! backward and the SGD update, for nets so small that launches, not arithmetic, are the
//! cost. The network (`Mlp`) lays a net out in [`TinyParams`] and decides when it fits.

use super::activation::{PRELUDE, prelude_constants};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader, wgsl_bindings, wgsl_consts, wgsl_struct};
use crate::device::tensor::Tensor;
use crate::error::Result;

wgsl_consts! {
    pub(crate) fn tiny_constants;
    /// The widest layer the step takes (its δ buffers hold this many values per row).
    const TINY_MAX_WIDTH: u32 = 64;
    /// The most layers it takes (`TinyParams::dims`).
    const TINY_MAX_LAYERS: u32 = 8;
}

wgsl_struct! {
    /// tiny.wgsl: the net's layout in the flat parameter block and in scratch.
    struct TinyParams {
        layers: u32,
        batch: u32,
        coupled: u32,
        hidden_activation: u32,
        output_activation: u32,
        lr: f32,
        momentum: f32,
        weight_decay: f32,
        /// Where the two δ buffers start in scratch.
        delta_offset: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
        /// Per layer: in, out, weight offset, bias offset (`TINY_MAX_LAYERS` of them).
        dims: [[u32; 4]; 8],
        /// Start of h_{l+1} in scratch, four per row: `act_offset[l / 4][l % 4]`.
        act_offset: [[u32; 4]; 2],
    }
}

wgsl_bindings! {
    /// tiny.wgsl: the whole step of a tiny net in one dispatch.
    struct TinyBindings {
        PARAMS = 0 => "read" params_buffer: "TinyParams",
        X = 1 => "read" x: "array<f32>",
        T = 2 => "read" t: "array<f32>",
        WEIGHTS = 3 => "read_write" weights: "array<f32>",
        VELOCITY = 4 => "read_write" velocity: "array<f32>",
        SCRATCH = 5 => "read_write" scratch: "array<f32>",
        LOSS = 6 => "read_write" loss: "array<f32>",
        ROW_WEIGHT = 7 => "read" row_weight: "array<f32>",
    }
}

const SHADER: Shader = Shader {
    file: "tiny.wgsl",
    parts: &[
        Part::Consts(tiny_constants),
        Part::Consts(prelude_constants),
        Part::Text(TinyParams::WGSL),
        Part::Text(TinyBindings::WGSL),
        Part::Text(PRELUDE),
        Part::Text(include_str!("../../shaders/tiny.wgsl")),
    ],
    trusted: false,
};
const TINY_STEP: Kernel = Kernel::new(&SHADER, "tiny_step");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![TINY_STEP]
}

/// The step of the net `params` lays out, over the `tensors` bound by [`TinyBindings`].
pub(crate) fn tiny_step(gpu: &Gpu, params: &TinyParams, tensors: &[(u32, &Tensor)]) -> Result<Dispatch> {
    Dispatch::new(gpu, TINY_STEP, bytemuck::bytes_of(params), tensors, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_arrays_hold_the_declared_limits() {
        let params = <TinyParams as bytemuck::Zeroable>::zeroed();
        assert_eq!(params.dims.len(), TINY_MAX_LAYERS as usize);
        assert_eq!(params.act_offset.len() * 4, TINY_MAX_LAYERS as usize);
    }

    
}
