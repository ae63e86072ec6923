//! Fold invariants, grid search on the GPU (determinism, choosing the better point, refit),
//! and the mini-batch machinery: gathers, partial batches, evaluation.

mod common;

use common::*;
use rand::Rng;
use wgpu_mlp::{
    Dataset, GpuDataset, GridSearchCv, KFold, ParamGrid, Sgd, StratifiedKFold, TrainConfig,
    cv::{CvExecution, Folds},
    fit,
};

fn check_partition(folds: &[wgpu_mlp::cv::Fold], n: usize) {
    let mut validated = vec![0; n];
    for fold in folds {
        for &i in &fold.validation {
            validated[i] += 1;
        }
        let mut all: Vec<usize> = fold.train.iter().chain(&fold.validation).copied().collect();
        all.sort();
        assert_eq!(
            all,
            (0..n).collect::<Vec<_>>(),
            "train and validation are disjoint and cover all"
        );
    }
    assert!(validated.iter().all(|&c| c == 1), "every sample validated exactly once");
    let sizes: Vec<usize> = folds.iter().map(|f| f.validation.len()).collect();
    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(hi - lo <= 1, "fold sizes {sizes:?}");
}

#[test]
fn kfold_invariants() {
    for (n, k) in [(10, 2), (11, 3), (97, 5), (5, 5)] {
        for shuffle in [false, true] {
            let folds = KFold {
                n_splits: k,
                shuffle,
                seed: 9,
            }
            .split(n)
            .unwrap();
            assert_eq!(folds.len(), k);
            check_partition(&folds, n);
        }
    }
    let kfold = |n_splits| KFold {
        n_splits,
        shuffle: false,
        seed: 0,
    };
    assert!(kfold(1).split(10).is_err());
    assert!(kfold(11).split(10).is_err());
    // Without shuffling, folds are consecutive, larger ones first (as in scikit-learn).
    assert_eq!(kfold(3).split(7).unwrap()[0].validation, vec![0, 1, 2]);
}

#[test]
fn stratified_kfold_keeps_class_shares() {
    let (_, mut rng) = seeded_rng();
    let labels: Vec<usize> = (0..203).map(|_| rng.random_range(0..4usize)).collect();
    let labels: Vec<usize> = labels
        .iter()
        .map(|&l| if l == 3 { 2 } else { l })
        .chain([3; 7])
        .collect();
    let n = labels.len();
    for shuffle in [false, true] {
        let folds = StratifiedKFold {
            n_splits: 5,
            shuffle,
            seed: 4,
        }
        .split(&labels)
        .unwrap();
        check_partition(&folds, n);
        for class in 0..4 {
            let counts: Vec<usize> = folds
                .iter()
                .map(|f| f.validation.iter().filter(|&&i| labels[i] == class).count())
                .collect();
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "class {class} per fold {counts:?}");
        }
    }
    let small = [0, 0, 0, 0, 0, 1, 1];
    let err = StratifiedKFold {
        n_splits: 3,
        shuffle: false,
        seed: 0,
    }
    .split(&small)
    .unwrap_err();
    assert!(err.to_string().contains("class 1"), "{err}");
}

/// Two well-separated blobs per class in 4-D: a linear problem any working net solves.
fn blobs(n: usize, seed: u64) -> Dataset {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let class = i % 3;
        for j in 0..4 {
            let centre = if j == class { 2.0 } else { -1.0 };
            features.push(centre + rng.random_range(-0.5..0.5f32));
        }
        labels.push(class);
    }
    Dataset::classification("blobs", features, 4, labels, 3).unwrap()
}

fn search(lrs: Vec<f32>, seed: u64) -> GridSearchCv {
    GridSearchCv {
        grid: ParamGrid {
            lr: lrs,
            momentum: vec![0.9],
            weight_decay: vec![0.0],
            hidden: vec![vec![5]],
            epochs: vec![8],
            batch_size: vec![16],
            activation: vec![wgpu_mlp::Activation::Sigmoid],
            ..ParamGrid::default()
        },
        folds: Folds::Stratified(StratifiedKFold {
            n_splits: 3,
            shuffle: true,
            seed,
        }),
        refit: true,
        base: TrainConfig {
            seed,
            ..TrainConfig::classic()
        },
        execution: CvExecution::default(),
        preprocess: Default::default(),
        scoring: None,
        class_weight: Default::default(),
        sample_weight: None,
    }
}

#[test]
fn grid_search_picks_the_better_point_and_is_deterministic() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(150, 1)).unwrap();
    let rows: Vec<usize> = (0..150).collect();
    let search = search(vec![1e-4, 1.0], 5);
    let mut epochs_seen = 0;
    let report = search
        .fit_with_progress(&data, &rows, &mut |_| epochs_seen += 1)
        .unwrap();
    assert_eq!(epochs_seen, search.total_epochs());
    assert_eq!(report.best_params().lr, 1.0, "\n{report}");
    assert_eq!(report.results[1].rank, 1);
    assert!(report.results[1].mean > 0.9, "\n{report}");
    assert_eq!(report.results[0].fold_scores.len(), 3);
    let again = search.fit(&data, &rows).unwrap();
    assert_eq!(report.results, again.results, "same seed, same results");
    // The refit trained on all rows: it is exactly `fit` on all rows with the winner.
    let winner = &report.results[report.best_index].params;
    let config = TrainConfig {
        seed: 5,
        optimizer: Sgd::new(winner.lr).momentum(winner.momentum).into(),
        hidden: winner.hidden.clone(),
        epochs: winner.epochs,
        batch_size: winner.batch_size,
        ..TrainConfig::classic()
    };
    let direct = fit(&data, &rows, None, &config).unwrap();
    let refit = report.best_model.as_ref().unwrap();
    assert_eq!(refit.mlp().parameters().unwrap(), direct.mlp().parameters().unwrap());
}

/// A partial batch holds one real row and three padding rows: the step must equal one SGD
/// step on that sample alone.
#[test]
fn partial_batch_padding_contributes_nothing() {
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let data = blobs(10, seed);
    let gpu_data = GpuDataset::upload(&gpu, &data).unwrap();
    let row = rng.random_range(0..10usize);
    let config = TrainConfig {
        hidden: vec![6],
        optimizer: Sgd::new(0.5).into(),
        epochs: 1,
        batch_size: 4,
        seed,
        ..TrainConfig::classic()
    };
    let model = fit(&gpu_data, &[row], None, &config).unwrap();
    let init = wgpu_mlp::mlp::init_params(&[4, 6, 3], seed);
    let mut reference = RefMlp::from_params(&[4, 6, 3], SIGMOID_NET, &init);
    let x = to_f64(&data.features[row * 4..row * 4 + 4]);
    let t = to_f64(&data.targets[row * 3..row * 3 + 3]);
    let mut velocity = reference.zero_velocity();
    reference.sgd_step(&mut velocity, &x, &t, 1, (0.5, 0.0, 0.0, false));
    let params = model.mlp().parameters().unwrap();
    for (l, layer) in params.iter().enumerate() {
        assert_close(
            "W after a 1-row batch",
            seed,
            &layer.weights,
            &reference.weights[l],
            1e-5,
        );
        assert_close("b after a 1-row batch", seed, &layer.bias, &reference.biases[l], 1e-5);
    }
}

/// Evaluation over rows that do not fill the last batch: every row scored exactly once.
#[test]
fn evaluation_scores_every_row_once() {
    let gpu = gpu();
    let (seed, _) = seeded_rng();
    let data = blobs(23, seed);
    let gpu_data = GpuDataset::upload(&gpu, &data).unwrap();
    let config = TrainConfig {
        hidden: vec![5],
        epochs: 2,
        batch_size: 8,
        seed,
        ..TrainConfig::classic()
    };
    let rows: Vec<usize> = (0..23).rev().collect();
    let model = fit(&gpu_data, &rows, Some(&rows[..7]), &config).unwrap();
    assert_eq!(model.history().len(), 2);
    assert!(model.history()[1].val_accuracy.is_some());
    let reference = RefMlp::from_params(&[4, 5, 3], SIGMOID_NET, &model.mlp().parameters().unwrap());
    let x: Vec<f64> = rows
        .iter()
        .flat_map(|&r| to_f64(&data.features[r * 4..r * 4 + 4]))
        .collect();
    let t: Vec<f64> = rows
        .iter()
        .flat_map(|&r| to_f64(&data.targets[r * 3..r * 3 + 3]))
        .collect();
    let outputs = reference.forward(&x, 23).pop().unwrap();
    assert_close(
        "predictions",
        seed,
        &model.predict_rows(&gpu_data, &rows).unwrap(),
        &outputs,
        1e-5,
    );
    let scores = model.evaluate(&gpu_data, &rows).unwrap();
    assert_close(
        "loss over all rows",
        seed,
        &[scores.loss],
        &[reference.loss(&x, &t, 23)],
        1e-5,
    );
    let labels = data.labels.as_ref().unwrap();
    let correct = rows
        .iter()
        .enumerate()
        .filter(|&(i, &r)| {
            let row = &outputs[i * 3..i * 3 + 3];
            let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            best == labels[r]
        })
        .count();
    assert_eq!(scores.accuracy, Some(correct as f32 / 23.0));
}

/// A row index past the data set is an error before anything trains, with either splitter
/// and either execution (it used to panic in the stratified splitter and train on clamped
/// gathers with KFold).
#[test]
fn grid_search_refuses_rows_out_of_range() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(30, 2)).unwrap();
    let mut rows: Vec<usize> = (0..30).collect();
    rows[7] = 30;
    for folds in [
        Folds::Stratified(StratifiedKFold {
            n_splits: 3,
            shuffle: true,
            seed: 1,
        }),
        Folds::KFold(KFold {
            n_splits: 3,
            shuffle: false,
            seed: 0,
        }),
    ] {
        for execution in [CvExecution::default(), CvExecution::Sequential] {
            let mut s = search(vec![0.5], 1);
            s.folds = folds.clone();
            s.execution = execution;
            let mut epochs = 0;
            let err = s
                .fit_with_progress(&data, &rows, &mut |_| epochs += 1)
                .err()
                .expect("an error");
            assert!(matches!(err, wgpu_mlp::Error::InvalidArgument { .. }), "{err}");
            assert!(err.to_string().contains("30"), "{err}");
            assert_eq!(epochs, 0, "nothing trains");
        }
    }
}

/// A `base` value the grid would override without a word is refused, naming the field and
/// the fix; base values at their default or among the grid's values are fine; early stopping
/// (fold models have no validation rows) is refused.
#[test]
fn grid_search_refuses_base_values_the_grid_overrides() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(30, 3)).unwrap();
    let rows: Vec<usize> = (0..30).collect();
    type Change = Box<dyn Fn(&mut TrainConfig)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "optimizer lr",
            Box::new(|c| c.optimizer = Sgd::new(0.3).momentum(0.9).into()),
        ),
        ("optimizer momentum", Box::new(|c| c.optimizer = Sgd::new(0.5).into())),
        (
            "optimizer weight_decay",
            Box::new(|c| c.optimizer = Sgd::new(0.5).momentum(0.9).weight_decay(1e-3).into()),
        ),
        ("hidden", Box::new(|c| c.hidden = vec![9])),
        ("epochs", Box::new(|c| c.epochs = 3)),
        ("batch_size", Box::new(|c| c.batch_size = 7)),
        (
            "hidden_activation",
            Box::new(|c| c.hidden_activation = wgpu_mlp::Activation::Tanh),
        ),
    ];
    for (field, set) in cases {
        let mut s = search(vec![0.5], 1);
        set(&mut s.base);
        let err = s.fit(&data, &rows).err().expect("an error");
        assert!(matches!(err, wgpu_mlp::Error::InvalidArgument { .. }), "{field}: {err}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    // A base value that is one of the grid's is not overridden by surprise.
    let mut s = search(vec![0.5, 0.3], 1);
    s.base.optimizer = Sgd::new(0.3).momentum(0.9).into();
    s.base.hidden = vec![5];
    s.refit = false;
    assert!(s.fit(&data, &rows).is_ok());
}

/// `cv_results` in scikit-learn's shape, as CSV and JSON: the columns, one row per grid
/// point in grid order, and the values of `report.results`.
#[test]
fn cv_results_as_csv_and_json() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(45, 4)).unwrap();
    let rows: Vec<usize> = (0..45).collect();
    let mut s = search(vec![0.5, 0.1], 2);
    s.refit = false;
    let report = s.fit(&data, &rows).unwrap();
    let text = report.cv_results_csv();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "mean_fit_time",
            "param_lr",
            "param_momentum",
            "param_weight_decay",
            "param_hidden",
            "param_epochs",
            "param_batch_size",
            "param_activation",
            "param_optimizer",
            "param_schedule",
            "params",
            "split0_test_score",
            "split1_test_score",
            "split2_test_score",
            "mean_test_score",
            "std_test_score",
            "rank_test_score",
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), report.results.len());
    for (record, result) in records.iter().zip(&report.results) {
        let number = |i: usize| record[i].parse::<f64>().unwrap();
        assert!(number(0) > 0.0, "a fit takes time");
        assert_eq!(number(1) as f32, result.params.lr);
        assert_eq!(&record[4], "5");
        assert_eq!(&record[7], result.params.activation.name());
        assert_eq!(&record[8], "sgd");
        assert_eq!(&record[9], "constant");
        assert!(
            record[10].contains(&format!("\"lr\": {}", result.params.lr)),
            "{}",
            &record[10]
        );
        for k in 0..3 {
            assert_eq!(number(11 + k) as f32, result.fold_scores[k]);
        }
        assert_eq!(number(14) as f32, result.mean);
        assert_eq!(number(15) as f32, result.std);
        assert_eq!(record[16].parse::<usize>().unwrap(), result.rank);
    }
    let json = report.cv_results_json();
    let ranks: Vec<String> = report.results.iter().map(|r| r.rank.to_string()).collect();
    assert!(json.trim_start().starts_with('{') && json.trim_end().ends_with('}'));
    assert!(
        json.contains(&format!("\"rank_test_score\": [{}]", ranks.join(", "))),
        "{json}"
    );
    assert!(
        json.contains("\"params\": [{\"optimizer\": \"sgd\", \"lr\": 0.5,"),
        "{json}"
    );
    assert!(
        json.contains("\"param_activation\": [\"sigmoid\", \"sigmoid\"]"),
        "{json}"
    );
    // Written by extension; a folder that does not exist is an Io error, not a panic.
    let path = std::env::temp_dir().join(format!("wgpu-mlp-cv-{}.json", std::process::id()));
    report.write_cv_results(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), json);
    let _ = std::fs::remove_file(&path);
    let err = report.write_cv_results("/nonexistent-folder/cv.csv").unwrap_err();
    assert!(matches!(err, wgpu_mlp::Error::Io { .. }), "{err}");
}

/// A base with early stopping: each fold model holds out 10% of its training rows and stops
/// on them, on its own inside a stack (the others train on), giving the scores it gives
/// trained alone; the refit does the same on all rows.
#[test]
fn grid_search_with_early_stopping_holds_out_and_stops() {
    let gpu = gpu();
    // labels that are noise: the hold-out loss turns up once the nets start memorising
    let (_, mut rng) = seeded_rng();
    let features = uniform(&mut rng, 60 * 4, -1.0, 1.0);
    let labels: Vec<usize> = (0..60).map(|i| (i * 7 + i / 5) % 3).collect();
    let noise = Dataset::classification("noise", features, 4, labels, 3).unwrap();
    let data = GpuDataset::upload(&gpu, &noise).unwrap();
    let rows: Vec<usize> = (0..60).collect();
    let search = GridSearchCv {
        grid: ParamGrid {
            lr: vec![1e-2, 3e-2],
            ..ParamGrid::default()
        },
        folds: Folds::Stratified(StratifiedKFold {
            n_splits: 3,
            shuffle: true,
            seed: 5,
        }),
        base: TrainConfig {
            epochs: 300,
            hidden: vec![8],
            early_stopping: Some(3),
            ..TrainConfig::classifier()
        },
        ..GridSearchCv::default()
    };
    let report = search.fit(&data, &rows).unwrap();
    assert!(!report.jobs.is_empty(), "trained stacked");
    let alone = GridSearchCv {
        execution: CvExecution::Sequential,
        ..search.clone()
    }
    .fit(&data, &rows)
    .unwrap();
    assert!(alone.jobs.is_empty(), "trained model by model");
    assert_eq!(report.results, alone.results, "stacked early stopping = alone");
    assert_eq!(report.results.len(), 2);
    let model = report.best_model.as_ref().unwrap();
    assert!(
        model.epochs_done() < 300,
        "stopped early after {} epochs",
        model.epochs_done()
    );
    assert!(
        model.history().iter().all(|m| m.val_loss.is_some()),
        "watched its hold-out"
    );
    // the same search again: the same report (hold-outs drawn from the seed)
    let again = search.fit(&data, &rows).unwrap();
    assert_eq!(again.results, report.results);
}

/// Shards' scores go through their files bit for bit, merge to the whole search's results,
/// and a merge refuses another search's shards and a doubled model.
#[test]
fn shards_round_trip_through_files_and_merge_only_their_own_search() {
    use wgpu_mlp::cv::{Shard, ShardScores};
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(90, 2)).unwrap();
    let rows: Vec<usize> = (0..90).collect();
    let search = search(vec![0.1, 0.5, 1.0], 4);
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-cv-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shards: Vec<ShardScores> = (0..2)
        .map(|i| {
            let scores = search.fit_shard(&data, &rows, Shard { index: i, count: 2 }).unwrap();
            let path = dir.join(format!("shard-{i}.csv"));
            scores.write(&path).unwrap();
            let read = ShardScores::read(&path).unwrap();
            assert_eq!(read, scores, "shard {i} through its file");
            read
        })
        .collect();
    assert_eq!(shards[0].models.len() + shards[1].models.len(), 9, "3 points × 3 folds");
    let merged = search.merge_shards(&data, &rows, &shards).unwrap();
    let whole = search.fit(&data, &rows).unwrap();
    assert_eq!(merged.results, whole.results);
    assert_eq!(
        merged.best_model.unwrap().mlp().parameters().unwrap(),
        whole.best_model.unwrap().mlp().parameters().unwrap()
    );
    let other = search.clone().n_splits(4);
    assert!(
        other.merge_shards(&data, &rows, &shards).is_err(),
        "another search's shards"
    );
    let doubled = [shards[0].clone(), shards[0].clone(), shards[1].clone()];
    assert!(search.merge_shards(&data, &rows, &doubled).is_err(), "a model twice");
    std::fs::write(dir.join("bad.csv"), "point,fold\n").unwrap();
    assert!(matches!(
        ShardScores::read(dir.join("bad.csv")),
        Err(wgpu_mlp::Error::Data { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

/// Successive halving keeps the full grid's clear winner (learning rates far too small lose
/// at any epoch count) for fewer model-epochs: 8 points × 2 epochs, 4 × 4, 2 × 8, against
/// 8 × 8; the last round has at most `factor` candidates and its winner is refit.
#[test]
fn halving_keeps_the_grid_winner_for_fewer_model_epochs() {
    use wgpu_mlp::HalvingGridSearchCv;
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(120, 3)).unwrap();
    let rows: Vec<usize> = (0..120).collect();
    let mut grid_search = search(vec![1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.1, 1.0], 6);
    grid_search.grid.epochs = vec![8];
    let full = grid_search.fit(&data, &rows).unwrap();
    let halving = HalvingGridSearchCv::new(grid_search.clone(), 2);
    let report = halving.fit(&data, &rows).unwrap();
    let shape: Vec<(usize, usize)> = report.rounds.iter().map(|r| (r.results.len(), r.epochs)).collect();
    assert_eq!(shape, [(8, 2), (4, 4), (2, 8)]);
    assert_eq!(report.model_epochs, (16 + 16 + 16) * 3);
    assert!(report.model_epochs < 8 * 8 * 3, "fewer model-epochs than the grid's");
    assert_eq!(report.best_params, *full.best_params(), "the grid's winner");
    let last = &report.rounds[2].results;
    assert_eq!(last.iter().find(|r| r.rank == 1).unwrap().params, report.best_params);
    assert!(report.best_model.is_some());
    assert!(
        HalvingGridSearchCv::new(grid_search, 1).fit(&data, &rows).is_err(),
        "factor 1"
    );
}

/// Early stopping inside a stack, scored by loss (a regression): every fold model's
/// held-out loss, a continuous number, is the one it gets trained alone, to the bit, though
/// the models of the stack stop at different epochs.
#[test]
fn stacked_early_stopping_gives_each_model_its_lone_loss() {
    let gpu = gpu();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
    let n = 120;
    let features: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
    let targets: Vec<f32> = (0..n)
        .map(|i| features[i * 3] - 0.5 * features[i * 3 + 1] + rng.random_range(-0.1..0.1))
        .collect();
    let data = Dataset::regression("linear", features, 3, targets).unwrap();
    let data = GpuDataset::upload(&gpu, &data).unwrap();
    let rows: Vec<usize> = (0..n).collect();
    let search = GridSearchCv {
        grid: ParamGrid {
            lr: vec![3e-3, 3e-2, 0.3],
            ..ParamGrid::default()
        },
        folds: Folds::KFold(KFold {
            n_splits: 3,
            shuffle: true,
            seed: 2,
        }),
        base: TrainConfig {
            hidden: vec![8],
            epochs: 80,
            batch_size: 16,
            early_stopping: Some(3),
            ..TrainConfig::regressor()
        },
        refit: false,
        ..GridSearchCv::default()
    };
    let mut epochs = std::collections::HashMap::new();
    let stacked = search
        .fit_with_progress(&data, &rows, &mut |p| {
            *epochs.entry((p.point, p.fold)).or_insert(0) += 1
        })
        .unwrap();
    let alone = GridSearchCv {
        execution: CvExecution::Sequential,
        ..search.clone()
    }
    .fit(&data, &rows)
    .unwrap();
    assert_eq!(stacked.jobs.len(), 1, "one stack of 9 models");
    let (fewest, most) = (epochs.values().min().unwrap(), epochs.values().max().unwrap());
    assert!(
        fewest < most && *fewest < 80,
        "models stopped at different epochs: {epochs:?}"
    );
    for (s, a) in stacked.results.iter().zip(&alone.results) {
        let bits = |r: &wgpu_mlp::cv::CvResult| r.fold_scores.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(s), bits(a), "lr {}: held-out losses", s.params.lr);
    }
}
