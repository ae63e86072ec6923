//! Whole training steps: optimizer trajectories against the f64 reference, XOR, resource
//! counts, submits per step, and the benchmark workloads' losses.

#[allow(dead_code)] // each user takes the parts it needs
#[path = "../examples/support/workloads.rs"]
mod workloads;

mod common;

use common::*;
use wgpu_mlp::{Mlp, Sgd, optim::WeightDecay};
use workloads::WORKLOADS;

/// Ten steps of a 3-layer MLP against the reference, for each (μ, γ), both decay forms and
/// both step kernels.
/// Tolerance 1e-5: f32 round-off per step is ~1e-7 relative and ten steps barely compound it.
#[test]
fn ten_optimizer_steps_match_reference() {
    let gpu = gpu();
    let sizes = [5, 11, 7, 3];
    let batch = 9;
    let kernels = [
        wgpu_mlp::mlp::StepKernel::General,
        wgpu_mlp::mlp::StepKernel::SingleDispatch,
    ];
    for (decay, kernel) in [WeightDecay::Decoupled, WeightDecay::Coupled]
        .into_iter()
        .flat_map(|d| kernels.map(|k| (d, k)))
    {
        for (momentum, weight_decay) in [(0.0, 0.0), (0.9, 0.0), (0.0, 1e-4), (0.9, 1e-4)] {
            let (seed, mut rng) = seeded_rng();
            let sgd = Sgd::new(0.5).momentum(momentum).weight_decay(weight_decay).decay(decay);
            let builder = Mlp::builder(&sizes).seed(seed).step_kernel(kernel);
            let mut mlp = builder.build(&gpu, batch, sgd).unwrap();
            let x = uniform(&mut rng, batch * sizes[0], -1.0, 1.0);
            let t = uniform(&mut rng, batch * sizes[3], 0.0, 1.0);
            mlp.set_batch(&x, &t).unwrap();
            let mut reference = RefMlp::from_params(&sizes, SIGMOID_NET, &mlp.parameters().unwrap());
            let mut velocity = reference.zero_velocity();
            let hyper = (0.5, momentum as f64, weight_decay as f64, decay == WeightDecay::Coupled);
            for step in 0..10 {
                // steps 0-4 one submit each, 5-9 in one submit of 5
                if step < 5 {
                    mlp.step().unwrap();
                } else if step == 5 {
                    mlp.steps(5).unwrap();
                }
                reference.sgd_step(&mut velocity, &to_f64(&x), &to_f64(&t), batch, hyper);
                if step < 5 || step == 9 {
                    let params = mlp.parameters().unwrap();
                    for (l, layer) in params.iter().enumerate() {
                        let what =
                            format!("{kernel:?} {decay:?} mu={momentum} wd={weight_decay} step {step} layer {l}");
                        assert_close(&format!("{what} W"), seed, &layer.weights, &reference.weights[l], 1e-5);
                        assert_close(&format!("{what} b"), seed, &layer.bias, &reference.biases[l], 1e-5);
                    }
                }
            }
        }
    }
}

#[test]
fn xor_converges() {
    let gpu = gpu();
    let x = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
    let t = [0.0, 1.0, 1.0, 0.0];
    let mut mlp = Mlp::builder(&[2, 8, 1])
        .seed(7)
        .build(&gpu, 4, Sgd::new(1.0).momentum(0.9))
        .unwrap();
    mlp.set_batch(&x, &t).unwrap();
    let initial = mlp.batch_loss().unwrap();
    mlp.steps(3000).unwrap();
    let loss = mlp.batch_loss().unwrap();
    assert!(loss < 0.01, "XOR loss {loss} after 3000 steps (initial {initial})");
    let y = mlp.batch_outputs().unwrap();
    for (yi, ti) in y.iter().zip(t) {
        assert!((yi - ti).abs() < 0.2, "XOR outputs {y:?}");
    }
}

#[test]
fn buffers_are_allocated_once() {
    // steps 10 to 1000
    assert_resources_constant(990);
}

/// Fusion: a layer's forward is one dispatch, a sigmoid's backward rides on its consumer's.
#[test]
fn dispatches_per_step_with_fusion() {
    let gpu = gpu();
    use wgpu_mlp::Activation;
    for hidden in Activation::ALL {
        for layers in 1..=4 {
            let sizes: Vec<usize> = (0..=layers).map(|l| 3 + l).collect();
            let builder = Mlp::builder(&sizes)
                .hidden_activation(hidden)
                .step_kernel(wgpu_mlp::mlp::StepKernel::General);
            let mlp = builder.build(&gpu, 2, Sgd::new(0.1)).unwrap();
            // forward L (the output layer's with the loss gradient) + dX for all but the
            // first + one grouped dW with db and the update; GELU's slope needs its input, so
            // each hidden GELU layer keeps its own forward and backward dispatch.
            let unfused = if hidden.grad_from_output() { 0 } else { 2 * (layers - 1) };
            let what = format!("{layers} layers, {hidden:?}");
            assert_eq!(mlp.dispatches_per_step(), 2 * layers + unfused, "{what}");
        }
    }
}

#[test]
fn one_submit_per_step() {
    let gpu = own_gpu();
    let mut mlp = Mlp::builder(&[4, 5, 2]).build(&gpu, 3, Sgd::new(0.1)).unwrap();
    // Without a batch there is nothing to train on: an error, not a step on zeros.
    let err = mlp.step().unwrap_err();
    assert!(err.to_string().contains("set_batch"), "{err}");
    mlp.set_batch(&[0.5; 12], &[0.25; 6]).unwrap();
    let before = gpu.stats().submits;
    mlp.step().unwrap();
    assert_eq!(gpu.stats().submits - before, 1, "one step");
    let before = gpu.stats().submits;
    mlp.steps(25).unwrap();
    assert_eq!(gpu.stats().submits - before, 1, "25 steps recorded together");
}

/// The workloads through the public API, against the f64 reference of the same spec: the
/// initial loss, and the loss after a few steps (200 for xor).
#[test]
fn workload_losses_match_reference() {
    let gpu = gpu();
    for workload in &WORKLOADS[..2] {
        let data = workload.generate();
        let sgd = Sgd::new(0.1).momentum(0.9).weight_decay(1e-4);
        let mut mlp = Mlp::builder(workload.sizes)
            .parameters(data.params.clone())
            .build(&gpu, workload.batch, sgd)
            .unwrap();
        mlp.set_batch(&data.x, &data.t).unwrap();
        let mut reference = RefMlp::from_params(workload.sizes, SIGMOID_NET, &data.params);
        let (x, t) = (to_f64(&data.x), to_f64(&data.t));
        let loss_init = mlp.batch_loss().unwrap();
        assert_close(
            &format!("{} loss_init", workload.name),
            0,
            &[loss_init],
            &[reference.loss(&x, &t, workload.batch)],
            1e-6,
        );
        let steps = if workload.name == "xor" { 200 } else { 3 };
        let mut velocity = reference.zero_velocity();
        for _ in 0..steps {
            reference.sgd_step(&mut velocity, &x, &t, workload.batch, (0.1, 0.9, 1e-4, false));
        }
        mlp.steps(steps).unwrap();
        let loss = mlp.batch_loss().unwrap();
        let want = reference.loss(&x, &t, workload.batch);
        assert_close(
            &format!("{} loss after {steps}", workload.name),
            0,
            &[loss],
            &[want],
            1e-5,
        );
    }
}

/// The single-dispatch step against the general path: ten steps of small nets (2 and 3
/// layers, every activation whose slope follows from its output, both decay forms, a batch
/// of one).
#[test]
fn single_dispatch_step_matches_general_path() {
    use wgpu_mlp::{Activation, mlp::StepKernel};
    let gpu = gpu();
    use Activation::{Identity, Relu, Sigmoid, Tanh};
    for (sizes, (hidden, output), batch, decay) in [
        (vec![2, 8, 1], (Sigmoid, Sigmoid), 4, WeightDecay::Decoupled),
        (vec![3, 7, 5, 2], (Sigmoid, Sigmoid), 5, WeightDecay::Coupled),
        (vec![4, 6, 3], (Sigmoid, Identity), 1, WeightDecay::Decoupled),
        (vec![5, 2], (Sigmoid, Identity), 9, WeightDecay::Coupled),
        (vec![3, 9, 6, 2], (Relu, Sigmoid), 6, WeightDecay::Decoupled),
        (vec![4, 5, 3], (Tanh, Relu), 3, WeightDecay::Coupled),
        (vec![2, 7, 2], (Identity, Tanh), 5, WeightDecay::Decoupled),
    ] {
        let (seed, mut rng) = seeded_rng();
        let sgd = Sgd::new(0.5).momentum(0.9).weight_decay(1e-3).decay(decay);
        let x = uniform(&mut rng, batch * sizes[0], -1.0, 1.0);
        let t = uniform(&mut rng, batch * sizes[sizes.len() - 1], 0.0, 1.0);
        let build = |kernel| {
            let mut mlp = Mlp::builder(&sizes)
                .hidden_activation(hidden)
                .output_activation(output)
                .seed(seed)
                .step_kernel(kernel)
                .build(&gpu, batch, sgd)
                .unwrap();
            mlp.set_batch(&x, &t).unwrap();
            mlp.steps(3).unwrap();
            mlp.steps(7).unwrap();
            mlp
        };
        let general = build(StepKernel::General);
        let single = build(StepKernel::SingleDispatch);
        assert!(single.uses_single_dispatch_step() && !general.uses_single_dispatch_step());
        let what = format!("{sizes:?} {hidden:?}/{output:?} batch {batch} {decay:?}");
        for (a, b) in single.parameters().unwrap().iter().zip(&general.parameters().unwrap()) {
            assert_close(&format!("{what} W"), seed, &a.weights, &to_f64(&b.weights), 1e-5);
            assert_close(&format!("{what} b"), seed, &a.bias, &to_f64(&b.bias), 1e-5);
        }
        for (a, b) in single.velocities().unwrap().iter().zip(&general.velocities().unwrap()) {
            assert_close(&format!("{what} velocity"), seed, &a.weights, &to_f64(&b.weights), 1e-5);
        }
        // The loss of the last step (before its update) agrees too, measured against the
        // size of its terms (½·mean t², the loss of zero outputs), not against itself: a
        // small loss is a difference of near-equal outputs and targets, whose relative error
        // the cancellation inflates (seen: 1.4e-5 relative on a loss of 6e-4, batch 1).
        let term_scale = 0.5 * t.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / batch as f64;
        assert_close_scaled(
            &format!("{what} loss"),
            seed,
            &[single.loss().unwrap()],
            &[general.loss().unwrap() as f64],
            &[term_scale],
            1e-5,
        );
    }
    // Nets it cannot take are refused when forced.
    let err = Mlp::builder(&[100, 2])
        .step_kernel(StepKernel::SingleDispatch)
        .build(&gpu, 4, Sgd::new(0.1));
    assert!(err.is_err());
    let gelu = Mlp::builder(&[3, 4, 2])
        .hidden_activation(Activation::Gelu)
        .step_kernel(StepKernel::SingleDispatch)
        .build(&gpu, 4, Sgd::new(0.1));
    assert!(
        gelu.is_err(),
        "GELU's slope needs its input, which the single-dispatch step does not keep"
    );
}

/// Ten steps of a 3-layer MLP with Adam, AdamW and Nesterov SGD against PyTorch's formulas
/// in f64, through the whole graph (forward, backward, one update dispatch), with ReLU and
/// cross-entropy as well as the seed's net. Tolerance relative to |w| + lr per step: 1e-5
/// for SGD, 1e-4 for Adam (see below).
#[test]
fn ten_adam_and_nesterov_steps_match_reference() {
    use wgpu_mlp::{Activation, Adam, Loss, Optimizer};
    let gpu = gpu();
    let sizes = [5, 11, 7, 3];
    let batch = 9;
    // ε = 1e-2: Adam's step m̂/(√ŝ + ε) is then a well-conditioned function of the gradient
    // (its slope at most 1/ε), so the f32 gradient's rounding (~1e-7) moves a step by at most
    // lr·1e-5. At PyTorch's ε = 1e-8 a gradient that cancels to ~ε turns that rounding into
    // an error of order lr (seen at 1.7e-4 of the scale below); tests/optim.rs checks ε =
    // 1e-8 and 1e-6 on exact gradients.
    let optimizers: [Optimizer; 4] = [
        Adam::new(1e-2).eps(1e-2).into(),
        Adam::new(1e-2).eps(1e-2).weight_decay(1e-3).into(),
        Adam::adamw(3e-3).eps(1e-2).betas(0.85, 0.995).into(),
        Sgd::new(0.2).momentum(0.9).nesterov(true).weight_decay(1e-4).into(),
    ];
    for optimizer in optimizers {
        for (hidden, output, loss) in [
            (Activation::Sigmoid, Activation::Sigmoid, Loss::Mse),
            (Activation::Relu, Activation::Identity, Loss::SoftmaxCrossEntropy),
        ] {
            let (seed, mut rng) = seeded_rng();
            let builder = Mlp::builder(&sizes)
                .hidden_activation(hidden)
                .output_activation(output)
                .loss(loss)
                .seed(seed);
            let mut mlp = builder.build(&gpu, batch, optimizer).unwrap();
            let x = uniform(&mut rng, batch * sizes[0], -1.0, 1.0);
            let t = uniform(&mut rng, batch * sizes[3], 0.0, 1.0);
            mlp.set_batch(&x, &t).unwrap();
            let mut reference = RefMlp::from_params(&sizes, (hidden, output), &mlp.parameters().unwrap());
            reference.loss_fn = loss;
            let mut state = RefOptimizerState::default();
            for step in 0..10 {
                mlp.step().unwrap();
                reference.optimizer_step(&optimizer, &mut state, &to_f64(&x), &to_f64(&t), batch);
                let what = format!("{} {hidden:?} {loss:?} step {step}", optimizer.name());
                // Each step moves a weight by up to about lr in a direction only as certain
                // as the f32 gradient: the error is measured against |w| plus lr per step
                // taken, with 1e-4 for Adam (its worst case lr·1e-5 per element, above; a
                // wrong bias correction moves weights by ~lr, an error near 1 here).
                let travel = optimizer.lr() as f64 * (step + 1) as f64;
                let scale = |values: &[f64]| values.iter().map(|w| w.abs() + travel).collect::<Vec<_>>();
                let tolerance = if optimizer.name() == "sgd" { 1e-5 } else { 1e-4 };
                for (l, layer) in mlp.parameters().unwrap().iter().enumerate() {
                    let (weights, biases) = (&reference.weights[l], &reference.biases[l]);
                    let w_what = format!("{what} layer {l} W");
                    assert_close_scaled(&w_what, seed, &layer.weights, weights, &scale(weights), tolerance);
                    let b_what = format!("{what} layer {l} b");
                    assert_close_scaled(&b_what, seed, &layer.bias, biases, &scale(biases), tolerance);
                }
            }
            let counted = if optimizer.name() == "sgd" { 0 } else { 10 };
            assert_eq!(mlp.optimizer_steps().unwrap(), [counted], "{}", optimizer.name());
        }
    }
}

/// `fit` with early stopping and no validation rows holds out `validation_fraction` of its
/// rows (stratified; on data too small for every class to spare a row, a plain split) and
/// watches them every epoch.
#[test]
fn early_stopping_holds_out_its_own_validation_rows() {
    use wgpu_mlp::{Dataset, GpuDataset, TrainConfig, fit};
    let gpu = gpu();
    for n in [10, 60] {
        let (_, mut rng) = seeded_rng();
        let features = uniform(&mut rng, n * 3, -1.0, 1.0);
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let data = GpuDataset::upload(&gpu, &Dataset::classification("d", features, 3, labels, 3).unwrap()).unwrap();
        let rows: Vec<usize> = (0..n).collect();
        let config = TrainConfig {
            hidden: vec![4],
            epochs: 5,
            ..TrainConfig::classifier()
        };
        let model = fit(&data, &rows, None, &config).unwrap();
        assert!(
            model.history().iter().all(|m| m.val_loss.is_some()),
            "{n} rows: watched a hold-out"
        );
    }
}

/// A learning rate that saturates every sigmoid (the loss stuck at a constant, all outputs
/// alike) is an `Error::Stalled` naming the settings; the same run at a sane rate trains on,
/// and a cross-validation fold that stalls is scored, not fatal.
#[test]
fn a_saturated_run_is_reported_with_its_settings() {
    use wgpu_mlp::{Activation, Dataset, Error, GpuDataset, GridSearchCv, Loss, TrainConfig, fit};
    let gpu = gpu();
    let (_, mut rng) = seeded_rng();
    let n = 60;
    let features = uniform(&mut rng, n * 4, -1.0, 1.0);
    let labels: Vec<usize> = (0..n).map(|i| usize::from(features[i * 4] > 0.0)).collect();
    let data = GpuDataset::upload(&gpu, &Dataset::classification("d", features, 4, labels, 2).unwrap()).unwrap();
    let rows: Vec<usize> = (0..n).collect();
    let config = |lr: f32| TrainConfig {
        hidden: vec![8],
        optimizer: Sgd::new(lr).into(),
        epochs: 40,
        batch_size: 10,
        hidden_activation: Activation::Sigmoid,
        output_activation: Activation::Sigmoid,
        loss: Loss::Mse,
        early_stopping: None,
        ..TrainConfig::classic()
    };
    match fit(&data, &rows, None, &config(1e4)) {
        Err(Error::Stalled { epoch, settings, .. }) => {
            assert!(epoch < 40, "caught before the run ended (epoch {epoch})");
            assert!(settings.contains("lr=10000"), "names the rate: {settings}");
        }
        other => panic!("lr 1e4 saturates every unit: expected Stalled, got {other:?}"),
    }
    let sane = fit(&data, &rows, None, &config(0.5)).unwrap();
    assert_eq!(sane.history().len(), 40);
    let search = GridSearchCv {
        base: config(1e4),
        refit: false,
        ..GridSearchCv::default()
    };
    let scored = search.fit(&data, &rows).map(|r| r.results[0].mean);
    assert!(scored.is_ok(), "stalled folds are scored: {scored:?}");
    let refit = GridSearchCv { refit: true, ..search }
        .fit(&data, &rows)
        .map(|r| r.results[0].mean);
    assert!(
        matches!(refit, Err(Error::Stalled { .. })),
        "the refit of a stalled winner fails: {refit:?}"
    );
}

/// `GpuStats::dispatches` counts what is recorded: a step of the general path records the
/// schedule's dispatches, K steps K times as many, and reading nothing records nothing.
#[test]
fn gpu_stats_count_the_dispatches_a_step_records() {
    let gpu = own_gpu();
    let mut mlp = wgpu_mlp::Mlp::builder(&[5, 7, 3])
        .step_kernel(wgpu_mlp::mlp::StepKernel::General)
        .build(&gpu, 4, wgpu_mlp::Sgd::new(0.1))
        .unwrap();
    mlp.set_batch(&[0.5; 20], &[0.0; 12]).unwrap();
    let before = gpu.stats();
    mlp.step().unwrap();
    // 2 per layer; a step reads its loss, which the grouped weight gradients sum from terms
    // the output layer writes: no dispatch of its own
    let per_step = mlp.dispatches_per_step() as u64;
    assert_eq!(per_step, 4);
    assert_eq!(gpu.stats().dispatches - before.dispatches, per_step);
    let before = gpu.stats();
    mlp.steps(5).unwrap();
    assert_eq!(gpu.stats().dispatches - before.dispatches, 5 * per_step);
    let before = gpu.stats();
    mlp.parameters().unwrap();
    assert_eq!(
        gpu.stats().dispatches,
        before.dispatches,
        "a read-back records no kernel"
    );
}

/// `steps(k)` skips the loss value of every step but the last (nothing reads it, no
/// gradient needs it): the parameters, the optimizer state and the loss are the same bits as
/// k single steps that each compute it, for a regression and a classification net.
#[test]
fn steps_that_skip_unread_losses_equal_single_steps_bit_for_bit() {
    let gpu = gpu();
    for loss in [wgpu_mlp::Loss::Mse, wgpu_mlp::Loss::SoftmaxCrossEntropy] {
        let build = || {
            let mut builder = wgpu_mlp::Mlp::builder(&[6, 9, 3])
                .seed(7)
                .loss(loss)
                .step_kernel(wgpu_mlp::mlp::StepKernel::General);
            if loss != wgpu_mlp::Loss::Mse {
                builder = builder.output_activation(wgpu_mlp::Activation::Identity);
            }
            let mlp = builder.build(&gpu, 5, wgpu_mlp::Adam::new(0.01)).unwrap();
            let x: Vec<f32> = (0..30).map(|i| (i as f32 * 0.37).sin()).collect();
            let t: Vec<f32> = (0..15).map(|i| if i % 3 == i / 5 % 3 { 1.0 } else { 0.0 }).collect();
            mlp.set_batch(&x, &t).unwrap();
            mlp
        };
        let (mut batched, mut single) = (build(), build());
        batched.steps(30).unwrap();
        for _ in 0..30 {
            single.step().unwrap();
        }
        assert_eq!(
            state_bits(&batched),
            state_bits(&single),
            "{loss:?}: parameters and state"
        );
        assert_eq!(
            batched.loss().unwrap().to_bits(),
            single.loss().unwrap().to_bits(),
            "{loss:?}: the last step's loss"
        );
    }
}
