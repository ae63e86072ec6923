//! The in-place optimizer update of every parameter of every stacked model in one dispatch
//! (shaders/optim.wgsl): SGD (momentum, Nesterov, both weight-decay forms), Adam and AdamW,
//! each model with its own settings. Adam adds one tiny dispatch before the update that
//! counts each model's steps and its bias corrections.

use crate::bindings::OptimBindings;
use crate::params::{OptimParams, OptimizerHyperparams};

use super::{ELEMENTWISE_GROUP, check_gpu, check_len};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::optim::{Optimizer, Sgd, WeightDecay};
use crate::tensor::Tensor;

/// Elements each invocation of the update kernel updates (`PER_INVOCATION` in optim.wgsl).
const PER_INVOCATION: usize = 8;
/// Models per workgroup of `optimizer_steps`.
const STEPS_GROUP: usize = 64;
/// f32 words of a model's state (`ModelState` in optim.wgsl): steps, c₁, c₂, padding.
pub(crate) const MODEL_STATE_WORDS: usize = 4;

/// f32 words of one model's [`OptimizerHyperparams`].
pub(crate) const HYPERPARAM_WORDS: usize = 8;

const FLAG_COUPLED: u32 = 1;
const FLAG_NESTEROV: u32 = 2;

impl From<&Optimizer> for OptimizerHyperparams {
    fn from(optimizer: &Optimizer) -> Self {
        match *optimizer {
            Optimizer::Sgd(sgd) => OptimizerHyperparams {
                kind: 0,
                flags: if sgd.decay == WeightDecay::Coupled {
                    FLAG_COUPLED
                } else {
                    0
                } | if sgd.nesterov { FLAG_NESTEROV } else { 0 },
                lr: sgd.lr,
                momentum: sgd.momentum,
                beta2: 0.0,
                eps: 0.0,
                weight_decay: sgd.weight_decay,
                _pad0: 0.0,
            },
            Optimizer::Adam(adam) => OptimizerHyperparams {
                kind: 1,
                flags: if adam.decoupled { 0 } else { FLAG_COUPLED },
                lr: adam.lr,
                momentum: adam.beta1,
                beta2: adam.beta2,
                eps: adam.eps,
                weight_decay: adam.weight_decay,
                _pad0: 0.0,
            },
        }
    }
}

/// The optimizer's state and settings: `velocity` (SGD's v, Adam's m) and `second_moment`
/// (Adam's s; any small stand-in when no model uses Adam) as long as the weights,
/// `model_state` ([`MODEL_STATE_WORDS`] per model: its step count and bias corrections),
/// `hyperparams` (one [`OptimizerHyperparams`] per model) and `active` (u32 per model).
#[derive(Clone, Copy)]
pub(crate) struct OptimizerState<'a> {
    pub velocity: &'a Tensor,
    pub second_moment: &'a Tensor,
    pub model_state: &'a Tensor,
    pub hyperparams: &'a Tensor,
    pub active: &'a Tensor,
}

/// One in-place step of every model's parameters: `weight` and its state from `grad` (all
/// `models · n` elements, model m's back to back), model m with the settings
/// `hyperparams[m]` (written with [`OptimizerHyperparams`]) and only where `active[m]` (u32)
/// is not 0. With `count_steps` (any Adam model) a first dispatch counts the steps.
pub(crate) fn optimizer_update_stacked(
    gpu: &Gpu,
    models: usize,
    grad: &Tensor,
    weight: &Tensor,
    state: OptimizerState<'_>,
    count_steps: bool,
) -> Result<Vec<Dispatch>> {
    const OP: &str = "optimizer_update";
    let OptimizerState {
        velocity,
        second_moment,
        model_state,
        hyperparams,
        active,
    } = state;
    check_gpu(gpu, OP, &[("grad", grad), ("weight", weight), ("velocity", velocity)])?;
    check_len(OP, "weight", weight, grad.len())?;
    check_len(OP, "velocity", velocity, grad.len())?;
    if count_steps {
        check_len(OP, "second_moment", second_moment, grad.len())?;
    }
    check_len(OP, "hyperparams", hyperparams, HYPERPARAM_WORDS * models)?;
    check_len(OP, "active", active, models)?;
    check_len(OP, "model_state", model_state, MODEL_STATE_WORDS * models)?;
    if models == 0 || !grad.len().is_multiple_of(models) {
        return Err(Error::shape(
            OP,
            "grad",
            format!("a multiple of {models} models"),
            grad.len(),
        ));
    }
    let params = OptimParams {
        n: (grad.len() / models) as u32,
        models: models as u32,
        _pad0: 0,
        _pad1: 0,
    };
    type O = OptimBindings;
    let bindings = [
        (O::GRAD, grad),
        (O::WEIGHT, weight),
        (O::VELOCITY, velocity),
        (O::HYPERPARAMS, hyperparams),
        (O::ACTIVE, active),
        (O::SECOND_MOMENT, second_moment),
        (O::MODEL_STATE, model_state),
    ];
    let mut dispatches = Vec::with_capacity(2);
    if count_steps {
        dispatches.push(Dispatch::new(
            gpu,
            Kernel::OptimizerSteps,
            bytemuck::bytes_of(&params),
            &[
                (O::HYPERPARAMS, hyperparams),
                (O::ACTIVE, active),
                (O::MODEL_STATE, model_state),
            ],
            models.div_ceil(STEPS_GROUP),
        )?);
    }
    dispatches.push(Dispatch::new(
        gpu,
        Kernel::OptimizerUpdate,
        bytemuck::bytes_of(&params),
        &bindings,
        grad.len().div_ceil(ELEMENTWISE_GROUP * PER_INVOCATION),
    )?);
    Ok(dispatches)
}

/// One in-place step of `optimizer` on `weight` from `grad`, its state in `velocity` (SGD's
/// v, Adam's m), `second_moment` (Adam's s; ignored by SGD) — all as long as `weight` — and
/// `model_state` (4 zeros to start: the step count and Adam's bias
/// corrections). Its settings go to small buffers that the returned dispatches keep alive;
/// run them in order, once per step.
pub fn optimizer_update(
    gpu: &Gpu,
    optimizer: &Optimizer,
    grad: &Tensor,
    weight: &Tensor,
    velocity: &Tensor,
    second_moment: &Tensor,
    model_state: &Tensor,
) -> Result<Vec<Dispatch>> {
    optimizer.validate()?;
    let hyperparams = [OptimizerHyperparams::from(optimizer)];
    let hyperparams = Tensor::from_slice(gpu, &[HYPERPARAM_WORDS], bytemuck::cast_slice(&hyperparams))?;
    let active = Tensor::from_u32(gpu, &[1], &[1])?;
    let state = OptimizerState {
        velocity,
        second_moment,
        model_state,
        hyperparams: &hyperparams,
        active: &active,
    };
    let count_steps = optimizer.needs_second_moment();
    optimizer_update_stacked(gpu, 1, grad, weight, state, count_steps)
}

/// One in-place [`Sgd`] step of `weight` and `velocity` from `grad` (all the same length).
pub fn sgd_update(gpu: &Gpu, sgd: &Sgd, grad: &Tensor, weight: &Tensor, velocity: &Tensor) -> Result<Dispatch> {
    let model_state = Tensor::zeros(gpu, &[MODEL_STATE_WORDS])?;
    let optimizer = Optimizer::Sgd(*sgd);
    let mut dispatches = optimizer_update(gpu, &optimizer, grad, weight, velocity, velocity, &model_state)?;
    dispatches
        .pop()
        .ok_or_else(|| Error::invalid("sgd_update", "dispatches", "one", 0))
}
