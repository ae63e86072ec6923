// Which stacked models train on a step: the trainer's plan, not the data loader, decides
// whether a model's optimizer moves.
//   model_active[m] = step < plan[m].steps      (m < models)
// A model whose epochs are over (0 steps) or whose rows ran out before the longest model's
// sits the step out: its matmuls and its update are skipped. The bindings are declared in
// src/ops/step_plan.rs, with ModelPlan (per model: its row count and how many batches of this
// epoch it trains) and STEP_PLAN_GROUP.

var<private> params: StepPlanParams;

@compute @workgroup_size(STEP_PLAN_GROUP)
fn models_to_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    params = params_buffer;
    let m = gid.x;
    if m >= params.models {
        return;
    }
    model_active[m] = select(0u, 1u, params.step < plan[m].steps);
}
