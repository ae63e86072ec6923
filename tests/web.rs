//! The library in a browser (issue #27): WebGPU through wgpu's `webgpu` backend, compiled for
//! wasm32 and run in headless Chromium by wasm-bindgen's test runner. `.ci/run` runs it:
//!
//! ```sh
//! cargo test --release --target wasm32-unknown-unknown --no-default-features --features web --test web
//! ```
//!
//! (`.cargo/config.toml` names the runner and its timeout; `webdriver.json` in the repository
//! root gives Chromium its flags: headless, WebGPU on.)
//! Each check is the native one's: every matmul kernel the browser's adapter runs against the
//! f64 reference on awkward shapes with NaN-poisoned outputs (which also proves each kernel
//! passes the browser's WGSL compiler, Tint), training steps against the f64 MLP, `fit_async`
//! and a stacked `GridSearchCv::fit_async` on digits.
//! Seeds come from `Math.random` and are printed in every assertion.
#![cfg(target_arch = "wasm32")]

#[path = "common/reference.rs"]
mod reference;
#[allow(dead_code)] // each user takes the parts it needs
#[path = "../examples/support/workloads.rs"]
mod workloads;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reference::*;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wgpu_mlp::cv::{CvExecution, Folds};
use wgpu_mlp::data::{CsvOptions, Scaler, Scaling, stratified_split};
use wgpu_mlp::mlp::{LayerParams, StepKernel};
use wgpu_mlp::raw::{MATMUL_KERNELS, MatmulKernel, MatmulLayout, Tensor, ops};
use wgpu_mlp::train::fit_async;
use wgpu_mlp::{
    Adam, Dataset, Gpu, GpuDataset, GridSearchCv, Mlp, Model, ParamGrid, Sgd, StratifiedKFold, TrainConfig,
};

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
        "adapter {:?} ({:?}, {:?}), subgroups {} (sizes {}..{}); kernels {kernels:?}",
        info.name,
        info.backend,
        info.device_type,
        gpu.has_subgroups(),
        info.subgroup_min_size,
        info.subgroup_max_size
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

/// The digits-sized benchmark workload (64-64-10, batch 32, examples/support/workloads.rs)
/// for 200 steps of SGD with momentum and weight decay, against the f64 MLP from the same
/// start: the run the native tests check against PyTorch's losses, here in the browser.
/// Tolerance 1e-5 relative for the parameters and for the loss after the 200th update:
/// measured 3.7e-7 for the parameters (f32 round-off accumulating over 200 steps).
#[wasm_bindgen_test]
async fn the_small_workload_trains_as_the_f64_reference_for_200_steps() {
    let gpu = gpu().await;
    let workload = workloads::SMALL;
    let data = workload.generate();
    let mut mlp = Mlp::builder(workload.sizes)
        .parameters(data.params.clone())
        .step_kernel(StepKernel::General)
        .build(&gpu, workload.batch, Sgd::new(0.1).momentum(0.9).weight_decay(1e-4))
        .unwrap();
    mlp.set_batch(&data.x, &data.t).unwrap();
    let mut reference = RefMlp::from_params(workload.sizes, SIGMOID_NET, &data.params);
    let mut velocity = reference.zero_velocity();
    let (x, t) = (to_f64(&data.x), to_f64(&data.t));
    for _ in 0..20 {
        mlp.steps(10).unwrap();
    }
    for _ in 0..200 {
        reference.sgd_step(&mut velocity, &x, &t, workload.batch, (0.1, 0.9, 1e-4, false));
    }
    for (l, layer) in mlp.parameters_async().await.unwrap().iter().enumerate() {
        assert_close(
            &format!("small, layer {l} W after 200 steps"),
            0,
            &layer.weights,
            &reference.weights[l],
            1e-5,
        );
        assert_close(
            &format!("small, layer {l} b after 200 steps"),
            0,
            &layer.bias,
            &reference.biases[l],
            1e-5,
        );
    }
    mlp.batch_outputs_async().await.unwrap(); // a forward pass: the loss after the 200th update
    let loss = mlp.losses_async().await.unwrap();
    let want = reference.loss(&x, &t, workload.batch);
    console_log!("small after 200 steps: loss {} (f64 reference {want})", loss[0]);
    assert_close("small, loss after 200 steps", 0, &loss, &[want], 1e-5);
}

/// A stack of three models trained as one job (the cross-validated search's form, whose
/// weight and bias gradients interleave in one block) equals the three trained one by one, to
/// the bit, after ten steps: what the stacked search computes in a browser.
#[wasm_bindgen_test]
async fn a_stack_equals_its_models_trained_one_by_one() {
    let gpu = gpu().await;
    let sizes = [6, 9, 4];
    let batch = 7;
    let (seed, mut rng) = seeded_rng();
    let x = uniform(&mut rng, batch * sizes[0], -1.0, 1.0);
    let t = uniform(&mut rng, batch * sizes[2], 0.0, 1.0);
    let optimizers: Vec<Sgd> = (1..=3).map(|m| Sgd::new(0.1 * m as f32).momentum(0.9)).collect();
    let builder = Mlp::builder(&sizes).seed(seed).step_kernel(StepKernel::General);
    let mut stack = builder.clone().build_stack(&gpu, batch, &optimizers).unwrap();
    stack.set_batch(&x, &t).unwrap();
    stack.steps(10).unwrap();
    let stacked = stack.stacked_parameters_async().await.unwrap();
    for (m, &sgd) in optimizers.iter().enumerate() {
        let mut alone = builder.clone().build(&gpu, batch, sgd).unwrap();
        alone.set_batch(&x, &t).unwrap();
        alone.steps(10).unwrap();
        let bits = |layers: &[LayerParams]| -> Vec<u32> {
            layers
                .iter()
                .flat_map(|l| l.weights.iter().chain(&l.bias))
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(
            bits(&stacked[m]),
            bits(&alone.parameters_async().await.unwrap()),
            "model {m} of the stack (seed {seed})"
        );
    }
}

/// `GridSearchCv::fit_async` on digits: 2 learning rates × 3 stratified folds trained as one
/// stacked job, scored equal to the bit to the same search model by model (what the native
/// tests check), and its refitted winner ≥ 90% on the rows the search never saw.
#[wasm_bindgen_test]
async fn a_cross_validated_search_runs_stacked_in_the_browser() {
    let gpu = gpu().await;
    let Digits {
        data,
        labels,
        train,
        test,
        on_gpu,
    } = digits(&gpu);
    let search = GridSearchCv {
        grid: ParamGrid {
            lr: vec![3e-3, 1e-2],
            hidden: vec![vec![32]],
            epochs: vec![8],
            batch_size: vec![32],
            ..ParamGrid::default()
        },
        folds: Folds::Stratified(StratifiedKFold {
            n_splits: 3,
            shuffle: true,
            seed: 0,
        }),
        base: TrainConfig {
            optimizer: Adam::new(1e-3).into(),
            early_stopping: None,
            ..TrainConfig::classifier()
        },
        ..GridSearchCv::default()
    };
    let stacked = search.fit_async(&on_gpu, &train).await.unwrap();
    assert!(matches!(stacked.execution, CvExecution::Batched { .. }));
    let one_by_one = GridSearchCv {
        execution: CvExecution::Sequential,
        refit: false,
        ..search.clone()
    }
    .fit_async(&on_gpu, &train)
    .await
    .unwrap();
    let bits = |report: &wgpu_mlp::cv::CvReport| -> Vec<u32> {
        report
            .results
            .iter()
            .flat_map(|r| r.fold_scores.iter().map(|s| s.to_bits()))
            .collect()
    };
    assert_eq!(bits(&stacked), bits(&one_by_one), "stacked and one-by-one fold scores");
    let model = stacked.best_model.as_ref().unwrap();
    let predicted = model
        .predict_class_async(&data.features_of(&test).unwrap())
        .await
        .unwrap();
    let accuracy = share_right(&test, &predicted, &labels);
    console_log!(
        "search in the browser: best {}, test accuracy {accuracy:.4}",
        stacked.best_params()
    );
    assert!(accuracy >= 0.9, "test accuracy {accuracy}");
}

/// In a browser every adapter's matmul kernels are chosen by measurement: a model's products
/// met for the first time are noted while it is built, `Gpu::tune_kernels_async` measures
/// them, and a model built again finds every product measured.
#[wasm_bindgen_test]
async fn kernel_choice_is_measured_in_the_browser() {
    let gpu = gpu().await;
    let build = || {
        Mlp::builder(&[64, 64, 10])
            .step_kernel(StepKernel::General)
            .build(&gpu, 32, Sgd::new(0.1))
            .unwrap()
    };
    drop(build());
    let measured = gpu.tune_kernels_async().await.unwrap();
    console_log!("kernel tuning: {measured} products measured");
    assert!(
        measured >= 3,
        "forward, input-gradient and weight-gradient products: {measured} measured"
    );
    drop(build());
    assert_eq!(
        gpu.tune_kernels_async().await.unwrap(),
        0,
        "a rebuilt model met an unmeasured product"
    );
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

const DIGITS: &[u8] = include_bytes!("../data/digits.csv.gz");

/// The digits data standardised by its training four fifths (stratified), on the GPU.
struct Digits {
    data: Dataset,
    labels: Vec<usize>,
    train: Vec<usize>,
    test: Vec<usize>,
    on_gpu: GpuDataset,
}

fn digits(gpu: &Gpu) -> Digits {
    let mut data = Dataset::from_csv_bytes(DIGITS, "digits.csv.gz", &CsvOptions::default()).unwrap();
    let labels = data.labels.clone().unwrap();
    let (train, test) = stratified_split(&labels, 0.2, 0).unwrap();
    Scaler::fit(Scaling::Standardize, &data, &train)
        .unwrap()
        .transform(&mut data)
        .unwrap();
    let on_gpu = GpuDataset::upload(gpu, &data).unwrap();
    Digits {
        data,
        labels,
        train,
        test,
        on_gpu,
    }
}

/// The share of `rows` whose predicted class is their label.
fn share_right(rows: &[usize], predicted: &[usize], labels: &[usize]) -> f64 {
    let right = rows.iter().zip(predicted).filter(|&(&r, &p)| labels[r] == p).count();
    right as f64 / rows.len() as f64
}

/// `fit_async` and `predict_class_async` on the main job's data, parsed from the CSV's bytes:
/// one model of the main job's winning settings (20 epochs of Adam at 1e-2, 64 hidden units),
/// scored on a stratified fifth it never saw. Natively this model scores ~98%; ≥ 90% leaves
/// room for the browser's rounding and shuffles while still failing a model that did not learn
/// (10% is chance).
#[wasm_bindgen_test]
async fn fit_async_learns_digits() {
    let gpu = gpu().await;
    let Digits {
        data,
        labels,
        train,
        test,
        on_gpu,
    } = digits(&gpu);
    let config = TrainConfig {
        hidden: vec![64],
        epochs: 20,
        batch_size: 32,
        optimizer: Adam::new(1e-2).into(),
        early_stopping: None,
        ..TrainConfig::classifier()
    };
    let model = fit_async(&on_gpu, &train, None, &config).await.unwrap();
    assert_eq!(model.epochs_done(), 20);
    let predicted = model
        .predict_class_async(&data.features_of(&test).unwrap())
        .await
        .unwrap();
    let accuracy = share_right(&test, &predicted, &labels);
    console_log!("digits in the browser: test accuracy {accuracy:.4}");
    assert!(accuracy >= 0.9, "test accuracy {accuracy}");

    // Saved as bytes (the download a page offers) and loaded back: the same outputs, to the bit.
    let bytes = model.to_bytes_async().await.unwrap();
    let loaded = Model::from_bytes(&gpu, &bytes, "digits model").unwrap();
    let x = data.features_of(&test).unwrap();
    let before = model.predict_async(&x).await.unwrap();
    let after = loaded.predict_async(&x).await.unwrap();
    assert!(
        before.iter().zip(&after).all(|(a, b)| a.to_bits() == b.to_bits()),
        "a model saved and loaded in the browser predicts differently"
    );

    // For .ci/browser-model-to-cli.sh: the model file, the rows and what the browser
    // predicts for them, in the form `wgpu-mlp predict --proba` writes, for the native CLI to
    // be checked against.
    console_log!("BROWSER_MODEL {}", base64(&bytes));
    let probabilities = model.predict_proba_async(&x).await.unwrap();
    for (i, row) in x.chunks(64).enumerate() {
        let values: Vec<String> = row.iter().map(f32::to_string).collect();
        console_log!("BROWSER_ROW {}", values.join(","));
        let p: Vec<String> = probabilities[i * 10..(i + 1) * 10].iter().map(f32::to_string).collect();
        console_log!("BROWSER_PREDICTION {},{}", predicted[i], p.join(","));
    }
}

/// RFC 4648 base64 with padding (what `base64 -d` reads).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |w, (i, &b)| w | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(ALPHABET[(word >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    text
}
