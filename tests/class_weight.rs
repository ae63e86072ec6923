//! Class weights (scikit-learn's `class_weight`) and the scorers a search can rank by.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use wgpu_mlp::{
    Dataset, Error, GridSearchCv, Loss, ParamGrid, TrainConfig,
    cv::{ClassWeight, Scoring},
};

/// Two overlapping blobs, class 1 a quarter of the rows.
fn blobs() -> Dataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let n = 80;
    let labels: Vec<usize> = (0..n).map(|i| usize::from(i % 4 == 0)).collect();
    let features: Vec<f32> = labels
        .iter()
        .flat_map(|&l| [l as f32 + rng.random_range(-0.8..0.8), rng.random_range(-1.0..1.0)])
        .collect();
    Dataset::classification("blobs", features, 2, labels, 2).unwrap()
}

fn search(class_weight: ClassWeight, scoring: Option<Scoring>) -> GridSearchCv {
    GridSearchCv {
        base: TrainConfig {
            hidden: vec![8],
            epochs: 30,
            early_stopping: None,
            ..TrainConfig::classifier()
        },
        class_weight,
        scoring,
        ..GridSearchCv::new(TrainConfig::classifier(), ParamGrid::default()).n_splits(3)
    }
}

#[test]
fn a_class_weighted_zero_is_never_learned() {
    let gpu = gpu();
    let data = blobs();
    let rows: Vec<usize> = (0..data.len()).collect();
    // Class 1 weighs nothing: its rows add nothing to the loss or its gradient, so the model
    // answers class 0 everywhere.
    let mut zero = search(ClassWeight::Given(vec![1.0, 0.0]), None);
    zero.base = TrainConfig {
        epochs: 300,
        optimizer: wgpu_mlp::Adam::new(0.02).into(),
        ..zero.base
    };
    let report = zero.fit_dataset(&gpu, &data, &rows).unwrap();
    let model = report.into_best_model().unwrap();
    let classes = model.predict_class(&data.features).unwrap();
    assert!(classes.iter().all(|&c| c == 0), "{classes:?}");
    // Balanced weights and uniform ones train different models on imbalanced data.
    let balanced = search(ClassWeight::Balanced, None)
        .fit_dataset(&gpu, &data, &rows)
        .unwrap();
    let uniform = search(ClassWeight::Uniform, None)
        .fit_dataset(&gpu, &data, &rows)
        .unwrap();
    let outputs = |r: wgpu_mlp::cv::CvReport| r.into_best_model().unwrap().predict(&data.features).unwrap();
    assert_ne!(outputs(balanced), outputs(uniform));
}

#[test]
fn class_weights_need_cross_entropy_and_classes() {
    let gpu = gpu();
    let data = blobs();
    let rows: Vec<usize> = (0..data.len()).collect();
    let mut mse = search(ClassWeight::Balanced, None);
    mse.base.loss = Loss::Mse;
    let err = mse.fit_dataset(&gpu, &data, &rows).err().expect("refused");
    assert!(
        matches!(err, Error::InvalidArgument { .. }) && err.to_string().contains("cross_entropy"),
        "{err}"
    );
    let wrong = search(ClassWeight::Given(vec![1.0]), None)
        .fit_dataset(&gpu, &data, &rows)
        .err()
        .expect("refused");
    assert!(wrong.to_string().contains("one per class"), "{wrong}");
}

#[test]
fn scorers_rank_the_search() {
    let gpu = gpu();
    let data = blobs();
    let rows: Vec<usize> = (0..data.len()).collect();
    for scoring in [
        Scoring::BalancedAccuracy,
        Scoring::F1Macro,
        Scoring::NegLogLoss,
        Scoring::RocAuc,
    ] {
        let report = search(ClassWeight::Uniform, Some(scoring))
            .fit_dataset(&gpu, &data, &rows)
            .unwrap();
        assert_eq!(report.scoring, scoring);
        let folds = &report.results[0].fold_scores;
        match scoring {
            Scoring::NegLogLoss => assert!(folds.iter().all(|&s| s < 0.0 && s > -5.0), "{folds:?}"),
            _ => assert!(folds.iter().all(|&s| (0.0..=1.0).contains(&s)), "{scoring:?} {folds:?}"),
        }
    }
    // A score of values on classes is refused, naming the scores that fit.
    let err = search(ClassWeight::Uniform, Some(Scoring::R2))
        .fit_dataset(&gpu, &data, &rows)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("balanced_accuracy"), "{err}");
}

#[test]
fn rows_weighted_zero_are_never_learned() {
    let gpu = gpu();
    let data = blobs();
    let rows: Vec<usize> = (0..data.len()).collect();
    let labels = data.labels.clone().unwrap();
    // Per-row weights (scikit-learn's sample_weight): zero on every class-1 row is the same
    // as class 1 weighing zero.
    let mut zero = search(ClassWeight::Uniform, None);
    zero.sample_weight = Some(labels.iter().map(|&l| if l == 1 { 0.0 } else { 1.0 }).collect());
    zero.base = TrainConfig {
        epochs: 300,
        optimizer: wgpu_mlp::Adam::new(0.02).into(),
        ..zero.base
    };
    let model = zero.fit_dataset(&gpu, &data, &rows).unwrap().into_best_model().unwrap();
    assert!(model.predict_class(&data.features).unwrap().iter().all(|&c| c == 0));
    zero.sample_weight = Some(vec![1.0; 3]);
    let err = zero.fit_dataset(&gpu, &data, &rows).err().expect("refused");
    assert!(err.to_string().contains("one per row"), "{err}");
}
