//! The benchmark workloads' training step in a browser (issue #27 item 5), timed as
//! `examples/workloads.rs` times them natively: the same networks, data and optimizer (SGD
//! 0.1, momentum 0.9, weight decay 1e-4), 10 steps per submit, the median of 3 timed runs.
//! Run by hand, not in CI (it is a measurement):
//!
//! ```sh
//! WASM_BINDGEN_TEST_TIMEOUT=900 cargo test --release --target wasm32-unknown-unknown --no-default-features --features web \
//!   --test web_bench -- --nocapture --include-ignored
//! ```
//!
//! One JSON line per workload on the console. Each run asserts what it can: the loss after
//! 200 steps is finite and below the initial one.
#![cfg(target_arch = "wasm32")]

#[allow(dead_code)] // each user takes the parts it needs
#[path = "../examples/support/workloads.rs"]
mod workloads;

use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use web_time::Instant;
use wgpu_mlp::mlp::StepKernel;
use wgpu_mlp::{Activation, Gpu, Mlp, Optimizer, Sgd};
use workloads::{SMALL, WORKLOADS, Workload};

wasm_bindgen_test_configure!(run_in_browser);

const STEPS_PER_SUBMIT: usize = 10;

fn fresh(gpu: &Gpu, workload: &Workload, models: usize, general: bool) -> Mlp {
    let data = workload.generate();
    let builder = Mlp::builder(workload.sizes)
        .parameters(data.params)
        .hidden_activation(Activation::Sigmoid)
        .output_activation(Activation::Sigmoid)
        .step_kernel(if general { StepKernel::General } else { StepKernel::Auto });
    let sgd = |lr: f32| -> Optimizer { Sgd::new(lr).momentum(0.9).weight_decay(1e-4).into() };
    let mlp = if models == 1 {
        builder.build(gpu, workload.batch, sgd(0.1)).unwrap()
    } else {
        let optimizers: Vec<Optimizer> = (0..models).map(|m| sgd(0.1 * (m + 1) as f32 / models as f32)).collect();
        builder.build_stack(gpu, workload.batch, &optimizers).unwrap()
    };
    mlp.set_batch(&data.x, &data.t).unwrap();
    mlp
}

/// `steps` steps, 10 to a submit, then the last model's loss (awaited: the GPU is done).
async fn run(mlp: &mut Mlp, steps: usize) -> f32 {
    let mut left = steps;
    while left > 0 {
        let k = left.min(STEPS_PER_SUBMIT);
        mlp.steps(k).unwrap();
        left -= k;
    }
    *mlp.losses_async().await.unwrap().last().unwrap()
}

async fn measure(workload: &Workload, models: usize, general: bool, seconds: f64) {
    let gpu = Gpu::new_async().await.unwrap();
    let mut mlp = fresh(&gpu, workload, models, general);
    let first = run(&mut mlp, 1).await;
    run(&mut mlp, 199).await;
    // A forward pass: the loss after the 200th update, as the native workloads report it.
    mlp.batch_outputs_async().await.unwrap();
    let after_200 = *mlp.losses_async().await.unwrap().last().unwrap();
    assert!(
        after_200.is_finite() && after_200 < first,
        "{}: loss {first} → {after_200}",
        workload.name
    );
    let mut mlp = fresh(&gpu, workload, models, general);
    run(&mut mlp, 20).await;
    let start = Instant::now();
    run(&mut mlp, 10).await;
    let per_step = start.elapsed().as_secs_f64() / 10.0;
    let n = 20usize.max((seconds / per_step).ceil() as usize);
    let mut reps = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        run(&mut mlp, n).await;
        reps.push(start.elapsed().as_secs_f64() / n as f64);
    }
    reps.sort_by(f64::total_cmp);
    let name = match (models, general) {
        (1, false) => workload.name.to_string(),
        (1, true) => format!("{}[general]", workload.name),
        _ => format!("{}x{models}", workload.name),
    };
    console_log!(
        "{{\"workload\":\"{name}\",\"models\":{models},\"backend\":\"{:?}\",\"loss_after_200\":{after_200},\
         \"ms_per_step\":{:.5},\"ms_per_model_step\":{:.5},\"dispatches_per_step\":{},\"timed_steps\":{n}}}",
        gpu.backend(),
        reps[1] * 1e3,
        reps[1] * 1e3 / models as f64,
        mlp.dispatches_per_step(),
    );
}

#[wasm_bindgen_test]
#[ignore = "a measurement: run with --include-ignored"]
async fn workloads_in_the_browser() {
    let [xor, mnist, _wide] = [WORKLOADS[0], WORKLOADS[1], WORKLOADS[2]];
    measure(&SMALL, 1, false, 2.0).await;
    measure(&mnist, 1, false, 2.0).await;
    measure(&xor, 1, true, 2.0).await;
    measure(&xor, 1, false, 2.0).await;
    measure(&SMALL, 40, false, 2.0).await;
}
