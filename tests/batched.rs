//! Batched (stacked) training gives each model what training it alone gives: `fit_batched`
//! against `fit`, and batched cross-validation against model-by-model cross-validation, on
//! grids that mix learning rates, momenta, weight-decay forms, epoch counts, row counts
//! (uneven last batches, different batch counts per model), shapes, and forced splits.

mod common;

use common::{gpu, seeded_rng};
use rand::Rng;
use wgpu_mlp::{
    Dataset, Error, GpuDataset, GridSearchCv, KFold, Model, ParamGrid, Sgd, StratifiedKFold, TrainConfig,
    cv::{CvExecution, Folds},
    fit,
    mlp::LayerParams,
    optim::WeightDecay,
    train::{FitJob, fit_batched},
};

/// Three Gaussian blobs in 4 dimensions (classification, 3 classes).
fn blobs(n: usize, seed: u64) -> Dataset {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut features = Vec::with_capacity(n * 4);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 3;
        for j in 0..4 {
            let centre = if j == class { 2.0 } else { -1.0 };
            features.push(centre + rng.random_range(-0.8..0.8f32));
        }
        labels.push(class);
    }
    Dataset::classification("blobs", features, 4, labels, 3).unwrap()
}

/// Largest |a − b| / max(1, |b|) over every weight and bias.
fn max_relative_difference(a: &[LayerParams], b: &[LayerParams]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.weights.iter().zip(&y.weights).chain(x.bias.iter().zip(&y.bias)))
        .map(|(&p, &q)| (p as f64 - q as f64).abs() / (q as f64).abs().max(1.0))
        .fold(0.0, f64::max)
}

/// Parameters and velocities within 1e-5 relative (the stack runs the same kernels per
/// model, so in practice they agree to the bit), the same history and step count.
fn assert_same_model(what: &str, seed: u64, batched: &Model, alone: &Model) {
    let (p, q) = (batched.mlp().parameters().unwrap(), alone.mlp().parameters().unwrap());
    let diff = max_relative_difference(&p, &q);
    assert!(diff <= 1e-5, "{what} (TEST_SEED={seed}): parameters differ by {diff:e}");
    let (v, w) = (batched.mlp().velocities().unwrap(), alone.mlp().velocities().unwrap());
    let diff = max_relative_difference(&v, &w);
    assert!(diff <= 1e-5, "{what} (TEST_SEED={seed}): velocities differ by {diff:e}");
    assert_eq!(batched.history().len(), alone.history().len(), "{what}: epochs");
    for (a, b) in batched.history().iter().zip(alone.history()) {
        let diff = (a.train_loss - b.train_loss).abs() / b.train_loss.abs().max(1e-6);
        assert!(
            diff <= 1e-5,
            "{what} (TEST_SEED={seed}): epoch {} loss {} vs {}",
            a.epoch,
            a.train_loss,
            b.train_loss
        );
    }
    assert_eq!(batched.epochs_done(), alone.epochs_done(), "{what}: epochs done");
    assert_eq!(batched.mlp().steps_taken(), alone.mlp().steps_taken(), "{what}: steps");
    let (s, t) = (batched.mlp().optimizer_steps(), alone.mlp().optimizer_steps());
    assert_eq!(s.unwrap(), t.unwrap(), "{what}: optimizer steps");
    if let (Ok(s), Ok(t)) = (batched.mlp().second_moments(), alone.mlp().second_moments()) {
        let diff = max_relative_difference(&s, &t);
        assert!(
            diff <= 1e-5,
            "{what} (TEST_SEED={seed}): second moments differ by {diff:e}"
        );
    }
}

#[test]
fn fit_batched_equals_fit_for_each_job() {
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let data = GpuDataset::upload(&gpu, &blobs(90, seed)).unwrap();
    // Row lists of different lengths: 61 rows make 8 batches of 8 (the last holds 5), 40
    // rows exactly 5, 23 rows 3 (the last holds 7), 2 rows one partial batch.
    let mut rows_of = |n: usize| -> Vec<usize> { (0..n).map(|_| rng.random_range(0..90)).collect() };
    let row_lists = [rows_of(61), rows_of(40), rows_of(23), rows_of(2)];
    let base = TrainConfig {
        hidden: vec![6, 5],
        batch_size: 8,
        seed,
        ..TrainConfig::classic()
    };
    let settings = [
        (Sgd::new(0.5).momentum(0.9), 4, 0),
        (Sgd::new(0.1).weight_decay(1e-2), 2, 1),
        (
            Sgd::new(0.3)
                .momentum(0.5)
                .weight_decay(1e-3)
                .decay(WeightDecay::Coupled),
            5,
            2,
        ),
        (Sgd::new(1.0), 3, 3),
        (Sgd::new(0.2).momentum(0.95), 1, 0),
    ];
    let jobs: Vec<FitJob> = settings
        .iter()
        .enumerate()
        .map(|(i, &(sgd, epochs, rows))| FitJob {
            train_rows: &row_lists[rows],
            config: TrainConfig {
                optimizer: sgd.into(),
                epochs,
                seed: seed + i as u64,
                ..base.clone()
            },
        })
        .collect();
    let mut reported = vec![0usize; jobs.len()];
    let batched = fit_batched(&data, &jobs, &mut |job, _| reported[job] += 1).unwrap();
    assert_eq!(batched.len(), jobs.len());
    for (i, (model, job)) in batched.iter().zip(&jobs).enumerate() {
        assert_eq!(reported[i], job.config.epochs, "job {i}: one report per epoch");
        let alone = fit(&data, job.train_rows, None, &job.config).unwrap();
        assert_same_model(&format!("job {i}"), seed, model, &alone);
    }
}

#[test]
fn fit_batched_with_drop_last_and_several_shapes() {
    let gpu = gpu();
    let (seed, _) = seeded_rng();
    let data = GpuDataset::upload(&gpu, &blobs(50, seed)).unwrap();
    let rows: Vec<usize> = (0..50).collect();
    use wgpu_mlp::Activation::{Gelu, Relu, Sigmoid, Tanh};
    let config = |hidden: Vec<usize>, lr: f32, drop_last: bool, hidden_activation| TrainConfig {
        hidden,
        hidden_activation,
        optimizer: Sgd::new(lr).momentum(0.9).into(),
        epochs: 3,
        batch_size: 16,
        drop_last,
        seed,
        ..TrainConfig::classic()
    };
    let cross_entropy = |config: TrainConfig| TrainConfig {
        loss: wgpu_mlp::Loss::SoftmaxCrossEntropy,
        output_activation: wgpu_mlp::Activation::Identity,
        ..config
    };
    // Two shapes, two drop_last settings, four hidden activations and two losses
    // interleaved: eight stacks, answers in job order.
    let jobs = [
        FitJob {
            train_rows: &rows,
            config: config(vec![4], 0.5, true, Relu),
        },
        FitJob {
            train_rows: &rows[..37],
            config: config(vec![7], 0.2, false, Sigmoid),
        },
        FitJob {
            train_rows: &rows[5..],
            config: config(vec![4], 0.1, true, Relu),
        },
        FitJob {
            train_rows: &rows[..33],
            config: config(vec![4], 0.3, false, Gelu),
        },
        FitJob {
            train_rows: &rows,
            config: config(vec![7], 0.4, false, Sigmoid),
        },
        FitJob {
            train_rows: &rows[2..],
            config: config(vec![4], 0.2, false, Gelu),
        },
        FitJob {
            train_rows: &rows[..45],
            config: config(vec![7], 0.3, false, Tanh),
        },
        FitJob {
            train_rows: &rows[3..],
            config: cross_entropy(config(vec![7], 0.3, false, Relu)),
        },
        FitJob {
            train_rows: &rows,
            config: cross_entropy(config(vec![7], 0.1, false, Relu)),
        },
        // Adam and AdamW beside SGD in one stack (same shape as the two above)
        FitJob {
            train_rows: &rows[4..],
            config: TrainConfig {
                optimizer: wgpu_mlp::Adam::new(0.01).into(),
                ..cross_entropy(config(vec![7], 0.1, false, Relu))
            },
        },
        FitJob {
            train_rows: &rows[..40],
            config: TrainConfig {
                optimizer: wgpu_mlp::Adam::adamw(0.02).into(),
                ..cross_entropy(config(vec![7], 0.1, false, Relu))
            },
        },
    ];
    let batched = fit_batched(&data, &jobs, &mut |_, _| {}).unwrap();
    for (i, (model, job)) in batched.iter().zip(&jobs).enumerate() {
        assert_eq!(
            (model.mlp().sizes()[1], model.mlp().activations().0),
            (job.config.hidden[0], job.config.hidden_activation),
            "job {i}: answers in job order"
        );
        let alone = fit(&data, job.train_rows, None, &job.config).unwrap();
        assert_same_model(&format!("job {i}"), seed, model, &alone);
    }
}

/// Jobs with early stopping hold out their rows and stop as `fit` does, each where it would
/// alone (in a stack of their own); a job too small to hold rows out, or with rows out of
/// range, is refused before anything trains.
#[test]
fn fit_batched_stops_early_like_fit_and_rejects_bad_jobs() {
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    // Labels that are noise: the held-out loss soon stops improving, so early stopping acts.
    let features: Vec<f32> = (0..60 * 4).map(|_| rng.random_range(-1.0..1.0)).collect();
    let labels: Vec<usize> = (0..60).map(|_| rng.random_range(0..3)).collect();
    let noise = Dataset::classification("noise", features, 4, labels, 3).unwrap();
    let data = GpuDataset::upload(&gpu, &noise).unwrap();
    let rows: Vec<usize> = (0..60).collect();
    let good = FitJob {
        train_rows: &rows,
        config: TrainConfig::classic(),
    };
    let early = |lr: f32, patience: usize| FitJob {
        train_rows: &rows,
        config: TrainConfig {
            optimizer: Sgd::new(lr).momentum(0.9).into(),
            early_stopping: Some(patience),
            epochs: 60,
            seed,
            ..TrainConfig::classic()
        },
    };
    let jobs = [good.clone(), early(0.5, 2), early(0.1, 3)];
    let models = fit_batched(&data, &jobs, &mut |_, _| {}).unwrap();
    for (i, (job, model)) in jobs.iter().zip(&models).enumerate() {
        let alone = fit(&data, job.train_rows, None, &job.config).unwrap();
        assert_same_model(&format!("job {i}"), seed, model, &alone);
    }
    let trained: Vec<usize> = models.iter().map(|m| m.history().len()).collect();
    assert!(
        trained[1] < 60 && trained[2] < 60,
        "the early-stopping jobs stopped early: {trained:?}"
    );
    let one_row = [0];
    let too_small = FitJob {
        train_rows: &one_row,
        ..early(0.5, 2)
    };
    match fit_batched(&data, &[good.clone(), too_small], &mut |_, _| {}) {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("early stopping on one row: expected InvalidArgument, got {other:?}"),
    }
    let bad_rows = [3, 60];
    let out_of_range = FitJob {
        train_rows: &bad_rows,
        config: TrainConfig::classic(),
    };
    match fit_batched(&data, &[good, out_of_range], &mut |_, _| {}) {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("row 60 of 60: expected InvalidArgument, got {other:?}"),
    }
}

/// A model that diverges inside a stack stops the run with `Error::Diverged`, its finite
/// parameters from before the epoch attached, like `fit`.
#[test]
fn a_diverging_model_in_a_stack_is_reported() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(30, 2)).unwrap();
    let rows: Vec<usize> = (0..30).collect();
    let config = |lr: f32| TrainConfig {
        optimizer: Sgd::new(lr).momentum(0.99).into(),
        output_activation: wgpu_mlp::Activation::Identity,
        epochs: 40,
        batch_size: 5,
        ..TrainConfig::classic()
    };
    let jobs = [
        FitJob {
            train_rows: &rows,
            config: config(0.1),
        },
        FitJob {
            train_rows: &rows,
            config: config(1e6),
        },
    ];
    let alone = fit(&data, &rows, None, &jobs[1].config);
    let Err(Error::Diverged { epoch, last_good, .. }) = alone else {
        panic!("lr 1e6 should diverge alone: {:?}", alone.map(|m| m.history().len()));
    };
    match fit_batched(&data, &jobs, &mut |_, _| {}) {
        Err(Error::Diverged {
            epoch: e,
            last_good: good,
            ..
        }) => {
            assert_eq!(e, epoch, "diverges in the same epoch as alone");
            assert_eq!(good, last_good, "same last good parameters as alone");
            assert!(
                good.iter()
                    .all(|l| l.weights.iter().chain(&l.bias).all(|v| v.is_finite()))
            );
        }
        other => panic!("expected Diverged, got {:?}", other.map(|m| m.len())),
    }
}

fn search(grid: ParamGrid, folds: Folds, seed: u64, execution: CvExecution) -> GridSearchCv {
    GridSearchCv {
        grid,
        folds,
        refit: false,
        base: TrainConfig {
            seed,
            ..TrainConfig::classic()
        },
        execution,
        preprocess: Default::default(),
        scoring: None,
        class_weight: Default::default(),
        sample_weight: None,
    }
}

/// Identical fold scores, means, ranks and winner, batched or model by model.
fn assert_same_search(what: &str, data: &GpuDataset, rows: &[usize], grid: ParamGrid, folds: Folds, seed: u64) {
    let sequential = search(grid.clone(), folds.clone(), seed, CvExecution::Sequential)
        .fit(data, rows)
        .unwrap();
    let mut epochs = 0;
    let batched_search = search(grid, folds, seed, CvExecution::default());
    let batched = batched_search
        .fit_with_progress(data, rows, &mut |_| epochs += 1)
        .unwrap();
    assert_eq!(
        epochs,
        batched_search.total_epochs(),
        "{what}: one progress report per model epoch"
    );
    assert_eq!(
        batched.results, sequential.results,
        "{what} (TEST_SEED={seed})\nbatched:\n{batched}\nsequential:\n{sequential}"
    );
    assert_eq!(batched.best_index, sequential.best_index, "{what}: winner");
    assert!(sequential.jobs.is_empty());
    let models: usize = batched.jobs.iter().map(|job| job.models.len()).sum();
    assert_eq!(
        models,
        batched.results.len() * batched.results[0].fold_scores.len(),
        "{what}: every model in one run"
    );
}

#[test]
fn batched_cross_validation_equals_model_by_model() {
    let gpu = gpu();
    let (seed, _) = seeded_rng();
    let data = GpuDataset::upload(&gpu, &blobs(75, seed)).unwrap();
    let rows: Vec<usize> = (3..75).collect();
    let stratified = Folds::Stratified(StratifiedKFold {
        n_splits: 4,
        shuffle: true,
        seed,
    });
    // lr × momentum × weight decay: one stack of 8 points × 4 folds
    let grid = ParamGrid {
        lr: vec![0.05, 0.5],
        momentum: vec![0.0, 0.9],
        weight_decay: vec![0.0, 1e-3],
        hidden: vec![vec![5]],
        epochs: vec![3],
        batch_size: vec![10],
        activation: vec![wgpu_mlp::Activation::Sigmoid],
        ..ParamGrid::default()
    };
    assert_same_search(
        "lr × momentum × weight decay",
        &data,
        &rows,
        grid,
        stratified.clone(),
        seed,
    );
    // mixed epoch counts (masked updates), 7 folds of unequal sizes, uneven last batches,
    // two hidden activations (two stacks)
    let grid = ParamGrid {
        lr: vec![0.3],
        momentum: vec![0.9],
        weight_decay: vec![1e-4],
        hidden: vec![vec![4]],
        epochs: vec![1, 4, 2],
        batch_size: vec![16],
        activation: vec![wgpu_mlp::Activation::Sigmoid, wgpu_mlp::Activation::Gelu],
        ..ParamGrid::default()
    };
    let kfold = Folds::KFold(KFold {
        n_splits: 7,
        shuffle: true,
        seed,
    });
    assert_same_search("mixed epochs", &data, &rows, grid, kfold, seed);
    // optimizers and schedules searched like any hyperparameter (SGD and Adam in one stack)
    let grid = ParamGrid {
        optimizer: vec![
            wgpu_mlp::Sgd::new(0.3).momentum(0.9).into(),
            wgpu_mlp::Adam::new(0.01).into(),
        ],
        schedule: vec![
            wgpu_mlp::Schedule::Constant,
            wgpu_mlp::Schedule::StepDecay {
                step_size: 1,
                gamma: 0.5,
            },
        ],
        hidden: vec![vec![4]],
        epochs: vec![3],
        batch_size: vec![16],
        ..ParamGrid::default()
    };
    let kfold = Folds::KFold(KFold {
        n_splits: 3,
        shuffle: true,
        seed,
    });
    assert_same_search("optimizers × schedules", &data, &rows, grid, kfold, seed);
    // two shapes and two batch sizes: four stacks
    let grid = ParamGrid {
        lr: vec![0.2, 0.4],
        momentum: vec![0.9],
        weight_decay: vec![0.0],
        hidden: vec![vec![3], vec![6, 4]],
        epochs: vec![2],
        batch_size: vec![8, 13],
        activation: vec![wgpu_mlp::Activation::Sigmoid],
        ..ParamGrid::default()
    };
    assert_same_search("shapes and batch sizes", &data, &rows, grid, stratified, seed);
}

/// A group larger than the cap is split into several runs, which the report says; the
/// scores stay the same.
#[test]
fn oversized_groups_are_split_and_reported() {
    let gpu = gpu();
    let (seed, _) = seeded_rng();
    let data = GpuDataset::upload(&gpu, &blobs(45, seed)).unwrap();
    let rows: Vec<usize> = (0..45).collect();
    let grid = ParamGrid {
        lr: vec![0.1, 0.3, 0.9],
        momentum: vec![0.9],
        weight_decay: vec![0.0],
        hidden: vec![vec![4]],
        epochs: vec![2],
        batch_size: vec![8],
        activation: vec![wgpu_mlp::Activation::Sigmoid],
        ..ParamGrid::default()
    };
    let folds = Folds::KFold(KFold {
        n_splits: 3,
        shuffle: true,
        seed,
    });
    let whole = search(grid.clone(), folds.clone(), seed, CvExecution::default())
        .fit(&data, &rows)
        .unwrap();
    assert_eq!(whole.jobs.len(), 1, "9 small models fit one run");
    let split = search(grid, folds, seed, CvExecution::Batched { max_models: 4 })
        .fit(&data, &rows)
        .unwrap();
    let sizes: Vec<usize> = split.jobs.iter().map(|job| job.models.len()).collect();
    assert_eq!(sizes, [4, 4, 1]);
    assert!(split.jobs.iter().all(|job| job.group_size == 9 && job.limit == 4));
    assert_eq!(split.results, whole.results, "splitting changes no score");
    let text = split.to_string();
    assert!(text.contains("split"), "the report says the group was split:\n{text}");
}
