//! Which stacked models train on a step (shaders/step_plan.wgsl): the trainer's plan, each
//! model's batches this epoch, decides whether its matmuls and its update run.

use crate::bindings::StepPlanBindings;
use crate::params::StepPlanParams;

use super::check_len;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::tensor::Tensor;

/// Invocations per workgroup of `models_to_step`.
const GROUP: usize = 64;

/// `active[m] = step < plan[2m + 1]` for every model m: whether model m trains on batch
/// `step` (0-based) of this epoch. `plan` holds u32 pairs (rows, steps) per model, `active`
/// one u32 per model.
pub(crate) fn models_to_step(gpu: &Gpu, plan: &Tensor, active: &Tensor, step: usize) -> Result<Dispatch> {
    const OP: &str = "models_to_step";
    let models = active.len();
    check_len(OP, "plan", plan, 2 * models)?;
    let params = StepPlanParams {
        step: step as u32,
        models: models as u32,
        _pad0: 0,
        _pad1: 0,
    };
    Dispatch::new(
        gpu,
        Kernel::ModelsToStep,
        bytemuck::bytes_of(&params),
        &[(StepPlanBindings::PLAN, plan), (StepPlanBindings::ACTIVE, active)],
        models.div_ceil(GROUP),
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
