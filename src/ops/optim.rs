//! The in-place optimizer update of every parameter of every stacked model in one dispatch
//! (shaders/optim.wgsl): SGD (momentum, Nesterov, both weight-decay forms), Adam and AdamW,
//! each model with its own settings. Adam adds one tiny dispatch before the update that
//! counts each model's steps and its bias corrections.

use super::{ELEMENTWISE_GROUP, check_gpu, check_len, group_constants};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader, wgsl_bindings, wgsl_consts, wgsl_struct};
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::optim::{Optimizer, OptimizerHyperparams, Sgd};

wgsl_struct! {
    /// optim.wgsl: the update of `models` blocks of `n` parameters.
    struct OptimParams {
        n: u32,
        models: u32,
        _pad0: u32,
        _pad1: u32,
    }
}


wgsl_struct! {
    /// optim.wgsl: one model's step count t (a float, exact to 2^24 steps) and Adam's bias
    /// corrections c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ after the step.
    struct ModelState {
        steps: f32,
        correction1: f32,
        correction2: f32,
        _pad: f32,
    }
}

wgsl_bindings! {
    /// optim.wgsl.
    struct OptimBindings {
        PARAMS = 0 => "read" params_buffer: "OptimParams",
        GRAD = 1 => "read" grad: "array<f32>",
        WEIGHT = 2 => "read_write" weight: "array<f32>",
        /// SGD's velocity, Adam's first moment.
        VELOCITY = 3 => "read_write" velocity: "array<f32>",
        /// Per model: its optimizer's settings.
        HYPERPARAMS = 4 => "read" hyperparams: "array<OptimizerHyperparams>",
        ACTIVE = 5 => "read" model_active: "array<u32>",
        /// Adam only.
        SECOND_MOMENT = 6 => "read_write" second_moment: "array<f32>",
        /// Per model: its step count and bias corrections.
        MODEL_STATE = 7 => "read_write" model_state: "array<ModelState>",
        /// Centered RMSprop's gradient average (any small stand-in when no model keeps one).
        GRAD_AVERAGE = 8 => "read_write" grad_average: "array<f32>",
    }
}

wgsl_consts! {
    fn optim_constants;
    /// Elements each invocation of the update kernel updates.
    const PER_INVOCATION: u32 = 8;
    /// Models per workgroup of `optimizer_steps`.
    const STEPS_GROUP: u32 = 64;
}

/// f32 words of a model's [`ModelState`].
pub(crate) const MODEL_STATE_WORDS: usize = size_of::<ModelState>() / 4;

/// f32 words of one model's [`OptimizerHyperparams`].
pub(crate) const HYPERPARAM_WORDS: usize = size_of::<OptimizerHyperparams>() / 4;

/// The optimizers' element rules (shaders/optim_rules.wgsl), which the fused weight-gradient
/// kernels apply in their epilogue too (`matmul_grouped`).
pub(super) const OPTIM_RULES: &str = include_str!("../../shaders/optim_rules.wgsl");

const SHADER: Shader = Shader {
    file: "optim.wgsl",
    parts: &[
        Part::Consts(group_constants),
        Part::Consts(optim_constants),
        Part::Consts(crate::optim::kernel_constants),
        Part::Text(OptimParams::WGSL),
        Part::Text(OptimizerHyperparams::WGSL),
        Part::Text(ModelState::WGSL),
        Part::Text(OptimBindings::WGSL),
        Part::Text(OPTIM_RULES),
        Part::Text(include_str!("../../shaders/optim.wgsl")),
    ],
    trusted: false,
};
const UPDATE: Kernel = Kernel::new(&SHADER, "optimizer_update");
const STEPS: Kernel = Kernel::new(&SHADER, "optimizer_steps");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![UPDATE, STEPS]
}


/// The optimizer's state and settings: `velocity` (SGD's v, Adam's m) and `second_moment`
/// (Adam's s; any small stand-in when no model uses Adam) as long as the weights,
/// `model_state` ([`MODEL_STATE_WORDS`] per model: its step count and bias corrections),
/// `hyperparams` (one [`OptimizerHyperparams`] per model) and `active` (u32 per model).
#[derive(Clone, Copy)]
pub(crate) struct OptimizerState<'a> {
    pub velocity: &'a Tensor,
    pub second_moment: &'a Tensor,
    /// Centered RMSprop's ḡ as long as the weights, or a small stand-in.
    pub grad_average: &'a Tensor,
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
        grad_average,
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
    if grad_average.len() != 1 {
        check_len(OP, "grad_average", grad_average, grad.len())?;
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
        (O::GRAD_AVERAGE, grad_average),
    ];
    let mut dispatches = Vec::with_capacity(2);
    if count_steps {
        dispatches.push(Dispatch::new(
            gpu,
            STEPS,
            bytemuck::bytes_of(&params),
            &[
                (O::HYPERPARAMS, hyperparams),
                (O::ACTIVE, active),
                (O::MODEL_STATE, model_state),
            ],
            models.div_ceil(STEPS_GROUP as usize),
        )?);
    }
    dispatches.push(Dispatch::new(
        gpu,
        UPDATE,
        bytemuck::bytes_of(&params),
        &bindings,
        grad.len().div_ceil((ELEMENTWISE_GROUP * PER_INVOCATION) as usize),
    )?);
    Ok(dispatches)
}

/// One in-place step of `optimizer` on `weight` from `grad`, its state in `velocity` (SGD's
/// v, Adam's m, RMSprop's momentum buffer), `second_moment` (Adam's and RMSprop's; ignored
/// by SGD) — all as long as `weight` — and `model_state` (4 zeros to start: the step count
/// and Adam's bias corrections). Its settings, and centered RMSprop's gradient average, go
/// to buffers that the returned dispatches keep alive; run them in order, once per step.
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
    let grad_average = Tensor::zeros(gpu, &[if optimizer.needs_grad_average() { grad.len() } else { 1 }])?;
    let state = OptimizerState {
        velocity,
        second_moment,
        grad_average: &grad_average,
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
    // SGD never touches the second moment: a scratch of its own (WebGPU refuses the velocity
    // bound twice, writable).
    let unused_second_moment = Tensor::scratch(gpu)?;
    let mut dispatches = optimizer_update(
        gpu,
        &optimizer,
        grad,
        weight,
        velocity,
        &unused_second_moment,
        &model_state,
    )?;
    dispatches
        .pop()
        .ok_or_else(|| Error::invalid("sgd_update", "dispatches", "one", 0))
}
