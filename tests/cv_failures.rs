//! A grid point whose training diverges is a failed candidate, as with scikit-learn's
//! `error_score=np.nan`: NaN scores, ranked last, named by `warnings()`, never the winner;
//! model by model, batched, sharded and halved alike. Only a grid where every point fails
//! ends the search, with the first failure's error.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use wgpu_mlp::{
    Activation, Dataset, Error, GpuDataset, GridSearchCv, HalvingGridSearchCv, KFold, ParamGrid, StratifiedKFold,
    TrainConfig,
    cv::{CvExecution, CvReport, Folds, Shard, ShardScores},
};

/// A learning rate that makes SGD's loss non-finite in the first epoch.
const BLOWS_UP: f32 = 1e6;

/// One that makes it non-finite a few epochs in (the second, on the software adapter).
const BLOWS_UP_LATER: f32 = 30.0;

/// Two well-separated blobs per class in 4-D: a linear problem any working net solves.
fn blobs(n: usize, seed: u64) -> Dataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
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

/// A noisy linear target of 3 features.
fn linear(n: usize, seed: u64) -> Dataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let features: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
    let targets: Vec<f32> = (0..n)
        .map(|i| features[i * 3] - 0.5 * features[i * 3 + 1] + rng.random_range(-0.1..0.1))
        .collect();
    Dataset::regression("linear", features, 3, targets).unwrap()
}

/// SGD with momentum on an identity output (nothing bounds the loss), over `lrs`.
fn search(lrs: Vec<f32>, folds: Folds, execution: CvExecution) -> GridSearchCv {
    GridSearchCv {
        grid: ParamGrid {
            lr: lrs,
            momentum: vec![0.9],
            hidden: vec![vec![6]],
            epochs: vec![10],
            batch_size: vec![10],
            ..ParamGrid::default()
        },
        folds,
        refit: true,
        base: TrainConfig {
            seed: 3,
            output_activation: Activation::Identity,
            ..TrainConfig::classic()
        },
        execution,
        preprocess: Default::default(),
        scoring: None,
        class_weight: Default::default(),
        sample_weight: None,
    }
}

fn stratified() -> Folds {
    Folds::Stratified(StratifiedKFold {
        n_splits: 3,
        shuffle: true,
        seed: 1,
    })
}

fn kfold() -> Folds {
    Folds::KFold(KFold {
        n_splits: 3,
        shuffle: true,
        seed: 1,
    })
}

/// What every report with grid point `bad` (0-based) failed shows: NaN exactly on its failed
/// folds, a NaN mean and spread, the last rank, a warning naming it, and a good winner.
#[track_caller]
fn check_failed_point(report: &CvReport, bad: usize) {
    let failed = &report.results[bad];
    assert!(!failed.failures.is_empty(), "point {bad} failed:\n{report}");
    let nan_folds: Vec<usize> = (0..failed.fold_scores.len())
        .filter(|&k| failed.fold_scores[k].is_nan())
        .collect();
    let failed_folds: Vec<usize> = failed.failures.iter().map(|f| f.fold).collect();
    assert_eq!(nan_folds, failed_folds, "NaN exactly where training failed:\n{report}");
    assert!(
        failed
            .failures
            .iter()
            .all(|f| f.reason.starts_with("diverged at epoch"))
    );
    assert!(failed.mean.is_nan() && failed.std.is_nan(), "{report}");
    assert_eq!(failed.rank, report.results.len(), "ranked last:\n{report}");
    assert_ne!(report.best_index, bad, "{report}");
    let best = &report.results[report.best_index];
    assert!(best.failures.is_empty() && best.mean.is_finite(), "{report}");
    assert_eq!(best.rank, 1);
    for (p, r) in report.results.iter().enumerate().filter(|&(p, _)| p != bad) {
        assert!(
            r.failures.is_empty() && r.fold_scores.iter().all(|s| s.is_finite()),
            "point {p}"
        );
    }
    let warnings = report.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    let fold = failed.failures[0].fold + 1;
    assert!(w.contains(&format!("grid point {} (", bad + 1)), "{w}");
    assert!(w.contains(&format!("lr={}", failed.params.lr)), "{w}");
    assert!(w.contains(&format!("fold {fold}/3 diverged at epoch")), "{w}");
    assert!(w.contains("(loss "), "{w}");
    assert!(report.to_string().contains("(failed)"), "{report}");
}

/// One diverging point among good ones: the search goes on, the point fails, the winner
/// and the refit come from the good ones; batched (its stack retrained model by model)
/// and model by model give the same results and show each epoch once (the stack diverges
/// after its models showed their first epochs, which their retraining does not show again).
#[test]
fn a_diverging_point_fails_alone_batched_and_sequential() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(90, 1)).unwrap();
    let rows: Vec<usize> = (0..90).collect();
    let lrs = vec![0.5, BLOWS_UP_LATER, 0.1];
    let mut reports = Vec::new();
    for execution in [CvExecution::Sequential, CvExecution::default()] {
        let s = search(lrs.clone(), stratified(), execution);
        let mut epochs = Vec::new();
        let report = s
            .fit_with_progress(&data, &rows, &mut |p| epochs.push((p.point, p.fold, p.metrics.epoch)))
            .unwrap();
        check_failed_point(&report, 1);
        let model = report.best_model.as_ref().expect("refit");
        assert_eq!(model.epochs_done(), 10);
        let accuracy = model.evaluate(&data, &rows).unwrap().accuracy.unwrap();
        assert!(accuracy > 0.8, "the refit good point learns: {accuracy}");
        // Each epoch seen once: every good model's 10 and the refit's, fewer for the failed.
        let seen = epochs.len();
        assert!(seen < s.total_epochs() && seen > 7 * 10, "{seen} epochs seen");
        epochs.sort_unstable();
        assert!(
            epochs.windows(2).all(|w| w[0] != w[1]),
            "{execution}: an epoch shown twice"
        );
        let failed_epochs = epochs.iter().filter(|&&(p, fold, _)| p == 1 && fold.is_some()).count();
        assert!(
            failed_epochs > 0,
            "{execution}: the failed point's first epochs are shown"
        );
        reports.push((report, epochs));
    }
    let [(sequential, seq_epochs), (batched, batch_epochs)] = &reports[..] else {
        unreachable!()
    };
    assert!(sequential.jobs.is_empty());
    assert!(
        batched.jobs.iter().any(|job| job.retrained_alone),
        "the stack holding the diverging point was retrained one by one: {:?}",
        batched.jobs
    );
    assert!(batched.to_string().contains("retrained one by one"), "{batched}");
    assert_eq!(batched.results, sequential.results, "batched = model by model");
    for (b, s) in batched.results.iter().zip(&sequential.results) {
        let bits = |r: &wgpu_mlp::cv::CvResult| r.fold_scores.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        if b.failures.is_empty() {
            assert_eq!(bits(b), bits(s), "lr {}: the same scores to the bit", b.params.lr);
        }
    }
    assert_eq!(seq_epochs, batch_epochs, "progress shows each epoch once");
    assert_eq!(
        batched.best_model.as_ref().unwrap().mlp().parameters().unwrap(),
        sequential.best_model.as_ref().unwrap().mlp().parameters().unwrap()
    );
}

/// `cv_results`: NaN in the CSV (as pandas writes and reads it), null in the JSON, which
/// stays valid JSON.
#[test]
fn cv_results_mark_the_failed_point() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(60, 2)).unwrap();
    let rows: Vec<usize> = (0..60).collect();
    let mut s = search(vec![BLOWS_UP, 0.5], stratified(), CvExecution::default());
    s.refit = false;
    let report = s.fit(&data, &rows).unwrap();
    check_failed_point(&report, 0);
    assert!(report.best_model.is_none());
    let text = report.cv_results_csv();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let failed = &report.results[0];
    for k in 0..3 {
        let cell = &records[0][column(&format!("split{k}_test_score"))];
        assert_eq!(cell == "NaN", failed.fold_scores[k].is_nan(), "split{k}: {cell}");
        assert!(
            records[1][column(&format!("split{k}_test_score"))]
                .parse::<f32>()
                .unwrap()
                > 0.5
        );
    }
    assert_eq!(&records[0][column("mean_test_score")], "NaN");
    assert_eq!(&records[0][column("std_test_score")], "NaN");
    assert_eq!(&records[0][column("rank_test_score")], "2");
    assert_eq!(&records[1][column("rank_test_score")], "1");
    let json: serde_json::Value = serde_json::from_str(&report.cv_results_json()).expect("valid JSON");
    assert_eq!(json["mean_test_score"][0], serde_json::Value::Null);
    assert!(json["mean_test_score"][1].as_f64().unwrap() > 0.5);
    assert_eq!(json["rank_test_score"], serde_json::json!([2, 1]));
    for k in 0..3 {
        assert_eq!(
            json[format!("split{k}_test_score")][0].is_null(),
            failed.fold_scores[k].is_nan()
        );
    }
}

/// Scored by loss (lower is better), a failed point still ranks last; shards write its NaN
/// scores and what happened, read them back bit for bit, and merge to the whole search's
/// results.
#[test]
fn regression_shards_carry_failures_through_their_files() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &linear(60, 4)).unwrap();
    let rows: Vec<usize> = (0..60).collect();
    let s = search(vec![0.01, BLOWS_UP, 0.05], kfold(), CvExecution::default());
    let whole = s.fit(&data, &rows).unwrap();
    check_failed_point(&whole, 1);
    assert!(
        whole
            .results
            .iter()
            .all(|r| r.failures.is_empty() == r.mean.is_finite())
    );
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-cv-failures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shards: Vec<ShardScores> = (0..2)
        .map(|i| {
            let scores = s.fit_shard(&data, &rows, Shard { index: i, count: 2 }).unwrap();
            let path = dir.join(format!("shard-{i}.csv"));
            scores.write(&path).unwrap();
            let read = ShardScores::read(&path).unwrap();
            assert_eq!(read, scores, "shard {i} through its file");
            read
        })
        .collect();
    let failures: usize = shards.iter().map(|s| s.failures.len()).sum();
    assert_eq!(failures, whole.results[1].failures.len());
    let nan_scores = shards.iter().flat_map(|s| &s.models).filter(|m| m.2.is_nan()).count();
    assert_eq!(nan_scores, failures, "a NaN score per failure");
    let text: String = (0..2)
        .map(|i| std::fs::read_to_string(dir.join(format!("shard-{i}.csv"))).unwrap())
        .collect();
    assert!(text.contains(",NaN,") && text.contains("diverged at epoch"), "{text}");
    let merged = s.merge_shards(&data, &rows, &shards).unwrap();
    assert_eq!(merged.results, whole.results, "merged = whole");
    assert_eq!(merged.warnings(), whole.warnings());
    assert_eq!(
        merged.best_model.unwrap().mlp().parameters().unwrap(),
        whole.best_model.unwrap().mlp().parameters().unwrap()
    );
    // A merge of shards where every point failed names the first failure.
    let all_bad = search(vec![BLOWS_UP, 2.0 * BLOWS_UP], kfold(), CvExecution::default());
    let shards: Vec<ShardScores> = (0..2)
        .map(|i| all_bad.fit_shard(&data, &rows, Shard { index: i, count: 2 }).unwrap())
        .collect();
    match all_bad.merge_shards(&data, &rows, &shards) {
        Err(Error::InvalidArgument { got, .. }) => {
            assert!(
                got.contains("every grid point failed") && got.contains("diverged"),
                "{got}"
            )
        }
        other => panic!("expected InvalidArgument, got {:?}", other.map(|r| r.to_string())),
    }
    // A file from before failures were recorded (no failure column) still reads.
    let old = dir.join("old.csv");
    let header = "# wgpu-mlp shard 0/1 points=1 folds=1 scoring=loss grid=00000000000000ff";
    std::fs::write(&old, format!("{header}\npoint,fold,score,seconds\n0,0,0.25,1.5\n")).unwrap();
    let read = ShardScores::read(&old).unwrap();
    assert_eq!((read.models, read.failures.len()), (vec![(0, 0, 0.25, 1.5)], 0));
    std::fs::remove_dir_all(&dir).ok();
}

/// Every point failing ends the search with the first failure's error, model by model and
/// batched.
#[test]
fn every_point_failing_is_the_first_failures_error() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(60, 5)).unwrap();
    let rows: Vec<usize> = (0..60).collect();
    for execution in [CvExecution::Sequential, CvExecution::default()] {
        let s = search(vec![BLOWS_UP, 3.0 * BLOWS_UP], stratified(), execution);
        match s.fit(&data, &rows) {
            Err(Error::Diverged {
                epoch, loss, last_good, ..
            }) => {
                assert!(epoch >= 1 && !loss.is_finite(), "{execution}");
                let finite = last_good
                    .iter()
                    .all(|l| l.weights.iter().chain(&l.bias).all(|v| v.is_finite()));
                assert!(finite, "{execution}: the last good parameters are finite");
            }
            Err(other) => panic!("{execution}: expected Diverged, got {other}"),
            Ok(report) => panic!("{execution}: expected Diverged, got a report\n{report}"),
        }
    }
}

/// Halving: diverging candidates rank last in their round and go no further, the rounds
/// going on as planned (the last trains the grid's epochs); the winner is the grid
/// search's, and the warnings name the failed candidates.
#[test]
fn halving_drops_failed_candidates() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(90, 6)).unwrap();
    let rows: Vec<usize> = (0..90).collect();
    let bad = [BLOWS_UP, 2.0 * BLOWS_UP, 3.0 * BLOWS_UP];
    let mut s = search(
        vec![1e-3, bad[0], 0.5, bad[1], bad[2]],
        stratified(),
        CvExecution::default(),
    );
    s.grid.epochs = vec![8];
    let full = s.fit(&data, &rows).unwrap();
    assert_eq!(full.warnings().len(), 3, "{full}");
    assert_eq!(full.best_params().lr, 0.5, "{full}");
    let report = HalvingGridSearchCv::new(s, 2).fit(&data, &rows).unwrap();
    let first = &report.rounds[0].results;
    assert_eq!(first.len(), 5);
    for r in first {
        let failed = bad.contains(&r.params.lr);
        assert_eq!(failed, !r.failures.is_empty() && r.mean.is_nan(), "lr {}", r.params.lr);
        assert_eq!(
            failed,
            r.rank > 2,
            "failed candidates rank last: lr {} rank {}",
            r.params.lr,
            r.rank
        );
    }
    // The best 3 of 5 kept, less a failed one among them: 2 go on, then 2 at the grid's epochs.
    let shape: Vec<(usize, usize)> = report.rounds.iter().map(|r| (r.results.len(), r.epochs)).collect();
    assert_eq!(shape, [(5, 2), (2, 4), (2, 8)], "the rounds as planned");
    for round in &report.rounds[1..] {
        assert!(round.results.iter().all(|r| r.failures.is_empty()));
    }
    assert_eq!(report.best_params, *full.best_params());
    assert!(report.best_model.is_some());
    let warnings = report.warnings();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings[0].starts_with("round 1 (2 epochs): grid point (") && warnings[0].contains(&format!("lr={BLOWS_UP}")),
        "{warnings:?}"
    );
}
