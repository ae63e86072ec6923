//! The training options scikit-learn's MLP has and the Python estimators rely on, as every
//! Rust user gets them: early stopping on the training loss with a tolerance, no shuffling,
//! continuing a model in memory, scikit-learn's Glorot initialisation, explicit folds, several
//! regression targets.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use wgpu_mlp::cv::Fold;
use wgpu_mlp::{
    Dataset, Error, GpuDataset, GridSearchCv, KFold, Mlp, ParamGrid, Sgd, TrainConfig,
    cv::Folds,
    fit,
    mlp::Init,
    train::{Monitor, resume_model},
};

fn blobs(n: usize, seed: u64) -> Dataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let features: Vec<f32> = labels
        .iter()
        .flat_map(|&c| {
            let centre = c as f32 * 2.0 - 2.0;
            [
                centre + rng.random_range(-1.0..1.0),
                -centre + rng.random_range(-1.0..1.0),
            ]
        })
        .collect();
    Dataset::classification("blobs", features, 2, labels, 3).unwrap()
}

fn small(epochs: usize) -> TrainConfig {
    TrainConfig {
        hidden: vec![8],
        epochs,
        batch_size: 16,
        early_stopping: None,
        seed: 3,
        ..TrainConfig::default()
    }
}

#[test]
fn training_loss_monitor_stops_when_improvements_fall_under_tol_and_holds_nothing_out() {
    let data = GpuDataset::upload(&gpu(), &blobs(90, 1)).unwrap();
    let rows: Vec<usize> = (0..90).collect();
    // A tolerance no epoch can beat: the first epoch sets the best, the next `patience`
    // epochs fail to improve on it by tol, and training stops there.
    let config = TrainConfig {
        early_stopping: Some(2),
        monitor: Monitor::TrainingLoss,
        tol: 1e3,
        ..small(50)
    };
    let model = fit(&data, &rows, None, &config).unwrap();
    assert_eq!(model.history().len(), 3);
    assert!(model.history().iter().all(|m| m.val_loss.is_none()), "no rows held out");
    // tol 0 counts any decrease: the loss keeps falling on separable blobs, so more epochs.
    let longer = fit(
        &data,
        &rows,
        None,
        &TrainConfig {
            tol: 0.0,
            ..config.clone()
        },
    )
    .unwrap();
    assert!(longer.history().len() > 3, "{}", longer.history().len());
    let bad = TrainConfig { tol: -1.0, ..config };
    assert!(matches!(
        fit(&data, &rows, None, &bad),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn resume_model_continues_a_run_bit_for_bit() {
    let data = GpuDataset::upload(&gpu(), &blobs(60, 2)).unwrap();
    let rows: Vec<usize> = (0..60).collect();
    let whole = fit(&data, &rows, None, &small(4)).unwrap();
    let half = fit(&data, &rows, None, &small(2)).unwrap();
    let resumed = resume_model(half, &data, &rows, None, &small(4), &mut |_| {}).unwrap();
    assert_eq!(resumed.epochs_done(), 4);
    assert_eq!(
        resumed.history().len(),
        2,
        "the history holds the epochs this call trained"
    );
    let bits = |m: &wgpu_mlp::Model| state_bits(m.mlp());
    assert_eq!(
        bits(&resumed),
        bits(&whole),
        "the same epochs, shuffles and optimizer state"
    );
    // another batch size rebuilds the network from the model's state and goes on
    let again = resume_model(
        resumed,
        &data,
        &rows,
        None,
        &TrainConfig {
            batch_size: 7,
            ..small(5)
        },
        &mut |_| {},
    );
    assert_eq!(again.unwrap().epochs_done(), 5);
    // a config for another network is refused, naming what differs
    let other = fit(&data, &rows, None, &small(1)).unwrap();
    let refused = resume_model(
        other,
        &data,
        &rows,
        None,
        &TrainConfig { seed: 9, ..small(2) },
        &mut |_| {},
    );
    assert!(matches!(refused, Err(Error::InvalidArgument { .. })));
}

#[test]
fn without_shuffle_an_epoch_steps_through_the_rows_in_the_order_given() {
    let gpu = gpu();
    let data = blobs(12, 3);
    let on_gpu = GpuDataset::upload(&gpu, &data).unwrap();
    let rows: Vec<usize> = (0..12).rev().collect();
    let config = TrainConfig {
        batch_size: 4,
        shuffle: false,
        optimizer: Sgd::new(0.1).into(),
        ..small(1)
    };
    let model = fit(&on_gpu, &rows, None, &config).unwrap();
    // the same network stepped by hand on batches of the rows in that order
    let mut mlp = Mlp::builder(&[2, 8, 3])
        .seed(config.seed)
        .hidden_activation(config.hidden_activation)
        .output_activation(config.output_activation)
        .loss(config.loss)
        .build(&gpu, 4, config.optimizer)
        .unwrap();
    for batch in rows.chunks(4) {
        let x: Vec<f32> = batch
            .iter()
            .flat_map(|&r| data.features[2 * r..2 * r + 2].to_vec())
            .collect();
        let t: Vec<f32> = batch
            .iter()
            .flat_map(|&r| data.targets[3 * r..3 * r + 3].to_vec())
            .collect();
        mlp.set_batch(&x, &t).unwrap();
        mlp.step().unwrap();
    }
    let (got, want) = (model.mlp().parameters().unwrap(), mlp.parameters().unwrap());
    for (g, w) in got.iter().zip(&want) {
        for (a, b) in g.weights.iter().zip(&w.weights).chain(g.bias.iter().zip(&w.bias)) {
            assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
        }
    }
}

#[test]
fn glorot_uniform_draws_weights_and_biases_within_its_bound() {
    let gpu = gpu();
    let sizes = [30, 20, 5];
    let mlp = Mlp::builder(&sizes)
        .seed(4)
        .init(Init::GlorotUniform { gain: 6.0 })
        .build(&gpu, 2, Sgd::new(0.1))
        .unwrap();
    for (layer, pair) in mlp.parameters().unwrap().iter().zip(sizes.windows(2)) {
        let bound = (6.0 / (pair[0] + pair[1]) as f32).sqrt();
        let all: Vec<f32> = layer.weights.iter().chain(&layer.bias).copied().collect();
        let largest = all.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(largest < bound && largest > 0.8 * bound, "{largest} vs bound {bound}");
        assert!(layer.bias.iter().any(|&b| b != 0.0), "biases are drawn too");
    }
    let bad = TrainConfig {
        init: Init::GlorotUniform { gain: 0.0 },
        ..small(1)
    };
    assert!(bad.validate().is_err());
}

#[test]
fn explicit_folds_score_as_the_splitter_that_made_them_and_are_checked() {
    let data = GpuDataset::upload(&gpu(), &blobs(60, 5)).unwrap();
    let rows: Vec<usize> = (0..60).collect();
    let kfold = KFold {
        n_splits: 3,
        shuffle: false,
        seed: 0,
    };
    let folds: Vec<Fold> = (0..3)
        .map(|k| {
            let (validation, train) = (0..60).partition(|i| i / 20 == k);
            Fold { train, validation }
        })
        .collect();
    let search = |folds: Folds| GridSearchCv {
        grid: ParamGrid {
            lr: vec![1e-3, 1e-2],
            ..ParamGrid::default()
        },
        folds,
        refit: false,
        base: small(3),
        ..GridSearchCv::default()
    };
    let by_splitter = search(Folds::KFold(kfold)).fit(&data, &rows).unwrap();
    let given = search(Folds::Explicit(folds.clone())).fit(&data, &rows).unwrap();
    for (a, b) in by_splitter.results.iter().zip(&given.results) {
        assert_eq!(a.fold_scores, b.fold_scores);
    }
    // one fold is a single validation split: its scores are that fold's
    let single = search(Folds::Explicit(folds[1..2].to_vec())).fit(&data, &rows).unwrap();
    for (a, b) in by_splitter.results.iter().zip(&single.results) {
        assert_eq!(b.fold_scores, a.fold_scores[1..2]);
    }
    let out_of_range = vec![
        folds[0].clone(),
        Fold {
            train: vec![0, 1],
            validation: vec![60],
        },
    ];
    for bad in [out_of_range, Vec::new()] {
        let error = search(Folds::Explicit(bad)).fit(&data, &rows).err().expect("refused");
        assert!(error.to_string().contains("Folds::Explicit"), "{error}");
    }
}

#[test]
fn several_regression_targets_train_and_predict_together() {
    let gpu = gpu();
    let n = 80;
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let features: Vec<f32> = (0..n * 2).map(|_| rng.random_range(-1.0..1.0)).collect();
    let targets: Vec<f32> = (0..n)
        .flat_map(|i| {
            [
                features[2 * i] + features[2 * i + 1],
                features[2 * i] - features[2 * i + 1],
            ]
        })
        .collect();
    let data = Dataset::multi_output_regression("two", features.clone(), 2, targets, 2).unwrap();
    let on_gpu = GpuDataset::upload(&gpu, &data).unwrap();
    let rows: Vec<usize> = (0..n).collect();
    let config = TrainConfig {
        hidden: vec![16],
        epochs: 200,
        batch_size: 16,
        optimizer: wgpu_mlp::Adam::new(1e-2).into(),
        early_stopping: None,
        ..TrainConfig::regressor()
    };
    let model = fit(&on_gpu, &rows, None, &config).unwrap();
    let predictions = model.predict(&features).unwrap();
    assert_eq!(predictions.len(), n * 2);
    let error: f32 = predictions
        .iter()
        .zip(&data.targets)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f32>()
        / (2 * n) as f32;
    assert!(error < 0.05, "mean squared error {error}");
    assert!(Dataset::multi_output_regression("bad", vec![0.0; 4], 2, vec![0.0; 3], 2).is_err());
}
