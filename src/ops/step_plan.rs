//! Which stacked models train on a step (shaders/step_plan.wgsl): the trainer's plan, each
//! model's batches this epoch, decides whether its matmuls and its update run.

use super::check_len;
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader, wgsl_bindings, wgsl_consts, wgsl_struct};
use crate::device::tensor::Tensor;
use crate::error::Result;

wgsl_struct! {
    /// step_plan.wgsl and data.wgsl: per model, its row count and how many batches of this
    /// epoch it trains (the trainer writes one per model, `Batches::set_rows`).
    struct ModelPlan {
        rows: u32,
        steps: u32,
    }
}

wgsl_struct! {
    /// step_plan.wgsl: which of `models` stacked models train on batch `step`.
    struct StepPlanParams {
        step: u32,
        models: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

wgsl_bindings! {
    /// step_plan.wgsl.
    struct StepPlanBindings {
        PARAMS = 0 => "read" params_buffer: "StepPlanParams",
        PLAN = 1 => "read" plan: "array<ModelPlan>",
        ACTIVE = 2 => "read_write" model_active: "array<u32>",
    }
}

wgsl_consts! {
    fn step_plan_constants;
    /// Invocations per workgroup of `models_to_step`.
    const STEP_PLAN_GROUP: u32 = 64;
}

const SHADER: Shader = Shader {
    file: "step_plan.wgsl",
    parts: &[
        Part::Consts(step_plan_constants),
        Part::Text(ModelPlan::WGSL),
        Part::Text(StepPlanParams::WGSL),
        Part::Text(StepPlanBindings::WGSL),
        Part::Text(include_str!("../../shaders/step_plan.wgsl")),
    ],
    trusted: false,
};
const MODELS_TO_STEP: Kernel = Kernel::new(&SHADER, "models_to_step");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![MODELS_TO_STEP]
}

/// `active[m] = step < plan[2m + 1]` for every model m: whether model m trains on batch
/// `step` (0-based) of this epoch. `plan` holds u32 pairs (rows, steps) per model, `active`
/// one u32 per model.
pub(crate) fn models_to_step(gpu: &Gpu, plan: &Tensor, active: &Tensor, step: usize) -> Result<Dispatch> {
    const OP: &str = "models_to_step";
    let models = active.len();
    check_len(OP, "plan", plan, models * size_of::<ModelPlan>() / 4)?;
    let params = StepPlanParams {
        step: step as u32,
        models: models as u32,
        _pad0: 0,
        _pad1: 0,
    };
    Dispatch::new(
        gpu,
        MODELS_TO_STEP,
        bytemuck::bytes_of(&params),
        &[(StepPlanBindings::PLAN, plan), (StepPlanBindings::ACTIVE, active)],
        models.div_ceil(STEP_PLAN_GROUP as usize),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Model 0 trains 3 batches, model 1 two (its rows ran out), model 2 none (its epochs
    /// are over), and 70 more models (past one workgroup) 0..69 batches: each is active on
    /// exactly its first `steps` batches.
    #[test]
    fn each_model_trains_its_planned_steps() {
        let gpu = crate::ops::stacked_tests::gpu();
        let steps: Vec<u32> = [3, 2, 0].into_iter().chain(0..70).collect();
        let plan: Vec<u32> = steps.iter().flat_map(|&s| [10, s]).collect();
        let plan = Tensor::from_u32(&gpu, &[plan.len()], &plan).unwrap();
        let active = Tensor::from_u32(&gpu, &[steps.len()], &vec![7; steps.len()]).unwrap();
        for step in 0..72 {
            gpu.run(&[&models_to_step(&gpu, &plan, &active, step).unwrap()])
                .unwrap();
            let got: Vec<u32> = active.to_vec().unwrap().iter().map(|v| v.to_bits()).collect();
            let want: Vec<u32> = steps.iter().map(|&s| u32::from((step as u32) < s)).collect();
            assert_eq!(got, want, "step {step}");
        }
    }
}
