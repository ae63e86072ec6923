//! The library in a browser (issue #27): WebGPU through wgpu's `webgpu` backend, compiled for
//! wasm32 and run in headless Chromium by wasm-bindgen's test runner. `.ci/run` runs it:
//!
//! ```sh
//! CHROMEDRIVER=/usr/bin/chromedriver \
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test --target wasm32-unknown-unknown --no-default-features --features web --test web
//! ```
//!
//! (`webdriver.json` in the repository root gives Chromium its flags: headless, WebGPU on.)
//! Each check is the native one's: every matmul kernel the browser's adapter runs against the
//! f64 reference on awkward shapes with NaN-poisoned outputs (which also proves each kernel
//! passes the browser's WGSL compiler, Tint), and training steps against the f64 MLP.
//! Seeds come from `Math.random` and are printed in every assertion.
#![cfg(target_arch = "wasm32")]

#[path = "common/reference.rs"]
mod reference;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reference::*;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wgpu_mlp::mlp::StepKernel;
use wgpu_mlp::raw::{MATMUL_KERNELS, MatmulKernel, MatmulLayout, Tensor, ops};
use wgpu_mlp::{Gpu, Mlp, Sgd};

wasm_bindgen_test_configure!(run_in_browser);

async fn gpu() -> Gpu {
    match Gpu::new_async().await {
        Ok(gpu) => gpu,
        Err(e) => panic!("the browser test needs WebGPU (Chromium with --enable-unsafe-webgpu): {e}"),
    }
}

/// A fresh seed per call, from the page's `Math.random` (the browser has no OS entropy to
/// ask and no environment to replay from: the seed is in every failure message).
fn seeded_rng() -> (u64, StdRng) {
    let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
    (seed, StdRng::seed_from_u64(seed))
}

fn uniform(rng: &mut StdRng, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(low..high)).collect()
}

/// (M, K, N): ones, primes, and non-multiples of the 16, 32 and 64 tiles; the Vec4 kernel
/// takes the shapes it supports (multiples of 4 where its layout needs them), these and two
/// of its own.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (7, 13, 5),
    (17, 1, 33),
    (65, 63, 67),
    (1, 300, 257),
    (200, 37, 1),
    (4, 4, 4),
    (68, 132, 260),
];

/// Tolerance as natively (tests/matmul.rs): relative Frobenius error ≤ 1e-5 against
/// ‖|A|·|B|‖, f32's √K·6e-8 at these K with room to spare.
async fn matmul_case(gpu: &Gpu, kernel: MatmulKernel, layout: MatmulLayout, (m, k, n): (usize, usize, usize)) {
    let (seed, mut rng) = seeded_rng();
    let a = uniform(&mut rng, m * k, -1.0, 1.0);
    let b = uniform(&mut rng, k * n, -1.0, 1.0);
    let (trans_a, trans_b) = (layout == MatmulLayout::AtB, layout == MatmulLayout::ABt);
    let a_shape = if trans_a { [k, m] } else { [m, k] };
    let b_shape = if trans_b { [n, k] } else { [k, n] };
    let want = matmul_ref(&to_f64(&a), &to_f64(&b), m, k, n, trans_a, trans_b);
    let abs = |v: &[f32]| v.iter().map(|x| x.abs() as f64).collect::<Vec<_>>();
    let scale = matmul_ref(&abs(&a), &abs(&b), m, k, n, trans_a, trans_b);
    let ta = Tensor::from_slice(gpu, &a_shape, &a).unwrap();
    let tb = Tensor::from_slice(gpu, &b_shape, &b).unwrap();
    let tc = Tensor::from_slice(gpu, &[m, n], &vec![f32::NAN; m * n]).unwrap();
    let what = format!("{kernel:?} {layout:?} M={m} K={k} N={n} on {}", gpu.adapter_name());
    let dispatch = ops::matmul(gpu, kernel, layout, &ta, &tb, &tc, false).unwrap_or_else(|e| panic!("{what}: {e}"));
    gpu.run(&[&dispatch]).unwrap();
    let got = tc.to_vec_async().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_close_scaled(&what, seed, &got, &want, &scale, 1e-5);
}

/// Every kernel the adapter can run, each layout, every shape. Only the subgroup kernel may
/// be missing (it needs subgroups of at least 8, which the adapter may not promise).
#[wasm_bindgen_test]
async fn every_matmul_kernel_matches_the_f64_reference() {
    let gpu = gpu().await;
    let kernels: Vec<MatmulKernel> = MATMUL_KERNELS.into_iter().filter(|k| k.available(&gpu)).collect();
    for kernel in MATMUL_KERNELS {
        assert!(
            kernels.contains(&kernel) || kernel == MatmulKernel::Subgroup,
            "{kernel:?} is not available on {}",
            gpu.adapter_name()
        );
    }
    let info = gpu.adapter_info();
    console_log!(
        "adapter {:?} ({:?}, {:?}); kernels {kernels:?}",
        info.name,
        info.backend,
        info.device_type
    );
    for &kernel in &kernels {
        for layout in [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB] {
            let mut shapes = 0;
            for &(m, k, n) in SHAPES.iter().filter(|&&(m, k, n)| kernel.supports(layout, m, k, n)) {
                matmul_case(&gpu, kernel, layout, (m, k, n)).await;
                shapes += 1;
            }
            assert!(shapes >= 2, "{kernel:?} {layout:?} ran {shapes} shapes");
        }
    }
}

/// Ten SGD steps with momentum of a 3-layer MLP against the f64 reference, read after each
/// of the first five (one submit each) and after five more in one submit, for both step
/// kernels: the general graph (fused where the adapter binds enough buffers) and the single
/// dispatch CPU adapters get for tiny SGD nets. Tolerance as natively (tests/training.rs):
/// 1e-5, f32 round-off of ~1e-7 per step barely compounded by ten.
#[wasm_bindgen_test]
async fn training_steps_match_the_f64_reference() {
    let gpu = gpu().await;
    for kernel in [StepKernel::General, StepKernel::SingleDispatch] {
        ten_steps(&gpu, kernel).await;
    }
}

async fn ten_steps(gpu: &Gpu, kernel: StepKernel) {
    let sizes = [5, 11, 7, 3];
    let batch = 9;
    let (seed, mut rng) = seeded_rng();
    let mut mlp = Mlp::builder(&sizes)
        .seed(seed)
        .step_kernel(kernel)
        .build(gpu, batch, Sgd::new(0.5).momentum(0.9))
        .unwrap();
    let x = uniform(&mut rng, batch * sizes[0], -1.0, 1.0);
    let t = uniform(&mut rng, batch * sizes[3], 0.0, 1.0);
    mlp.set_batch(&x, &t).unwrap();
    console_log!("{kernel:?} training step: {} dispatches", mlp.dispatches_per_step());
    let mut reference = RefMlp::from_params(&sizes, SIGMOID_NET, &mlp.parameters_async().await.unwrap());
    let mut velocity = reference.zero_velocity();
    let (x64, t64) = (to_f64(&x), to_f64(&t));
    let mut last_loss = f64::NAN;
    for step in 0..10 {
        if step < 5 {
            mlp.step().unwrap();
        } else if step == 5 {
            mlp.steps(5).unwrap();
        }
        last_loss = reference.loss(&x64, &t64, batch);
        reference.sgd_step(&mut velocity, &x64, &t64, batch, (0.5, 0.9, 0.0, false));
        if step < 5 || step == 9 {
            let params = mlp.parameters_async().await.unwrap();
            for (l, layer) in params.iter().enumerate() {
                let what = format!("{kernel:?} step {step} layer {l}");
                assert_close(&format!("{what} W"), seed, &layer.weights, &reference.weights[l], 1e-5);
                assert_close(&format!("{what} b"), seed, &layer.bias, &reference.biases[l], 1e-5);
            }
        }
    }
    // The loss of the last step's forward pass (before its update) against the reference's.
    let loss = mlp.losses_async().await.unwrap();
    assert_close(&format!("{kernel:?} loss of step 9"), seed, &loss, &[last_loss], 1e-5);
}

/// A blocking read in a browser is an error that names its async twin, not a panic.
#[wasm_bindgen_test]
async fn blocking_reads_are_errors_that_name_the_async_twin() {
    let gpu = gpu().await;
    let x = Tensor::from_slice(&gpu, &[2], &[1.0, 2.0]).unwrap();
    let message = x.to_vec().unwrap_err().to_string();
    assert!(message.contains("to_vec_async"), "{message}");
    assert_eq!(x.to_vec_async().await.unwrap(), [1.0, 2.0]);
    assert!(gpu.synchronize().is_err());
    gpu.synchronize_async().await.unwrap();
}
