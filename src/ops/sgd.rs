//! The in-place SGD update of every parameter in one dispatch (shaders/optim.wgsl).

use bytemuck::{Pod, Zeroable};

use super::{ELEMENTWISE_GROUP, check_gpu, check_len};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::optim::{Sgd, WeightDecay};
use crate::tensor::Tensor;

/// Elements each invocation of the SGD kernel updates (`PER_INVOCATION` in optim.wgsl).
const SGD_PER_INVOCATION: usize = 8;

// ---------------------------------------------------------------- optimizer

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SgdParams {
    n: u32,
    models: u32,
    _pad: [u32; 2],
}

/// One model's optimizer settings as the update kernel reads them (`hyperparams`, one per
/// stacked model).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub(crate) struct SgdHyperparams {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    coupled: u32,
}

impl From<&Sgd> for SgdHyperparams {
    fn from(sgd: &Sgd) -> Self {
        SgdHyperparams {
            lr: sgd.lr,
            momentum: sgd.momentum,
            weight_decay: sgd.weight_decay,
            coupled: (sgd.decay == WeightDecay::Coupled) as u32,
        }
    }
}

/// One in-place SGD step of `weight` and `velocity` from `grad` for each of `models`
/// models laid out back to back (all three `models · n` elements), model m with the
/// settings `hyperparams[m]` (written with [`SgdHyperparams`]), and only where `active[m]`
/// (u32) is not 0.
pub(crate) fn sgd_update_stacked(
    gpu: &Gpu,
    models: usize,
    grad: &Tensor,
    weight: &Tensor,
    velocity: &Tensor,
    hyperparams: &Tensor,
    active: &Tensor,
) -> Result<Dispatch> {
    const OP: &str = "sgd_update";
    check_gpu(gpu, OP, &[("grad", grad), ("weight", weight), ("velocity", velocity)])?;
    check_len(OP, "weight", weight, grad.len())?;
    check_len(OP, "velocity", velocity, grad.len())?;
    check_len(OP, "hyperparams", hyperparams, 4 * models)?;
    check_len(OP, "active", active, models)?;
    if models == 0 || !grad.len().is_multiple_of(models) {
        return Err(Error::shape(
            OP,
            "grad",
            format!("a multiple of {models} models"),
            grad.len(),
        ));
    }
    let params = SgdParams {
        n: (grad.len() / models) as u32,
        models: models as u32,
        _pad: [0; 2],
    };
    Dispatch::new(
        gpu,
        Kernel::SgdUpdate,
        bytemuck::bytes_of(&params),
        &[(1, grad), (2, weight), (3, velocity), (4, hyperparams), (5, active)],
        grad.len().div_ceil(ELEMENTWISE_GROUP * SGD_PER_INVOCATION),
    )
}

/// One in-place [`Sgd`] step of `weight` and `velocity` from `grad` (all the same length).
/// Its settings and an always-on flag go to two small buffers that the returned dispatch
/// keeps alive.
pub fn sgd_update(gpu: &Gpu, sgd: &Sgd, grad: &Tensor, weight: &Tensor, velocity: &Tensor) -> Result<Dispatch> {
    sgd.validate()?;
    let hyperparams = Tensor::from_slice(gpu, &[4], bytemuck::cast_slice(&[SgdHyperparams::from(sgd)]))?;
    let active = Tensor::from_u32(gpu, &[1], &[1])?;
    sgd_update_stacked(gpu, 1, grad, weight, velocity, &hyperparams, &active)
}
