//! Mixed tables through the search and the model: preprocessing fitted on each fold's
//! training rows (no leak from the held-out rows), stacked = alone, the refit reproduced by
//! hand, and the whole pipeline saved, loaded and fed raw CSV rows.

mod common;

use common::{gpu, seeded_rng};
use rand::Rng;
use rand::rngs::StdRng;
use wgpu_mlp::data::{PreprocessOptions, Preprocessor, features_from_bytes, read_features};
use wgpu_mlp::{
    Dataset, GpuDataset, GridSearchCv, KFold, Model, ParamGrid, TrainConfig,
    cv::{CvExecution, CvReport, Folds, Scoring},
    data::{Scaler, Task},
    fit,
};

fn classifier() -> TrainConfig {
    TrainConfig {
        epochs: 5,
        hidden: vec![8],
        early_stopping: None,
        batch_size: 16,
        ..TrainConfig::classifier()
    }
}

/// [`classifier`] with the regressor's loss (the only difference of the two presets).
fn regressor() -> TrainConfig {
    TrainConfig {
        loss: TrainConfig::regressor().loss,
        ..classifier()
    }
}

fn kfold() -> Folds {
    Folds::KFold(KFold {
        n_splits: 3,
        shuffle: true,
        seed: 0,
    })
}

/// `n` rows: an id (if `id`; read as an identifier and dropped), a numeric `x` with gaps, a text `color` with gaps, a numeric-looking
/// `size` (read as categories), a numeric `z`, and a `label` (cat / dog) that depends on them.
fn classification_csv(rng: &mut StdRng, n: usize, id: bool) -> String {
    let mut text = String::from(if id {
        "id,x,color,size,z,label\n"
    } else {
        "x,color,size,z,label\n"
    });
    for i in 0..n {
        let class = i % 2;
        let x = match i % 7 {
            3 => String::new(),
            _ => format!("{:.3}", class as f64 * 2.0 + rng.random_range(-1.0..1.0)),
        };
        let color = if i % 11 == 5 {
            "NA"
        } else {
            ["red", "green", "blue"][(i / 2 + class) % 3]
        };
        let z: f64 = rng.random_range(-1.0..1.0);
        let label = ["cat", "dog"][class];
        let id = if id { format!("r{i},") } else { String::new() };
        text += &format!("{id}{x},{color},{},{z:.3},{label}\n", 1 + i % 3);
    }
    text
}

/// `n` rows of a regression with targets around 1000: a text `city`, `rooms` with gaps and
/// an `area`.
fn regression_csv(rng: &mut StdRng, n: usize) -> String {
    let mut text = String::from("city,rooms,area,price\n");
    for i in 0..n {
        let city = ["north", "south", "east"][i % 3];
        let rooms = 1 + i % 5;
        let area: f64 = rng.random_range(50.0..150.0);
        let price = 1000.0 + 40.0 * (rooms as f64 - 3.0) + 2.0 * (area - 100.0) + [30.0, -30.0, 0.0][i % 3];
        let rooms = if i % 6 == 4 { "?".to_string() } else { rooms.to_string() };
        text += &format!(
            "{city},{rooms},{area:.2},{:.2}\n",
            price + rng.random_range(-10.0..10.0)
        );
    }
    text
}

fn read(text: &str, task: Task, categorical: &[&str]) -> Dataset {
    let options = wgpu_mlp::data::CsvOptions {
        task,
        categorical: categorical.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    Dataset::from_csv_bytes(text.as_bytes(), "table.csv", &options).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// What the search does to a data set before training on `rows` (by hand, from the public
/// API): the preprocessor fitted on `rows`, and for a regression its targets standardised
/// with their mean and population std on `rows`.
fn prepared(data: &Dataset, rows: &[usize], options: &PreprocessOptions) -> (Preprocessor, Option<Scaler>, Dataset) {
    let pre = Preprocessor::fit(data, rows, options).unwrap();
    let mut out = pre.transform(data).unwrap();
    let target = data.labels.is_none().then(|| {
        let t: Vec<f64> = rows.iter().map(|&r| data.targets[r] as f64).collect();
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        let std = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / t.len() as f64).sqrt();
        Scaler::from_parts(vec![mean as f32], vec![(1.0 / std) as f32]).unwrap()
    });
    if let Some(s) = &target {
        out.targets
            .iter_mut()
            .for_each(|t| *t = (*t - s.shift()[0]) * s.scale()[0]);
    }
    (pre, target, out)
}

/// A fold's score as the search computes it, for a model trained by hand.
fn fold_score(scoring: Scoring, model: &Model, data: &GpuDataset, host: &Dataset, held_out: &[usize]) -> f32 {
    let scores = model.evaluate(data, held_out).unwrap();
    match scoring {
        Scoring::Accuracy => scores.accuracy.unwrap(),
        Scoring::Loss => scores.loss,
        #[allow(unreachable_patterns)]
        _ => {
            // R² from the mean loss (½ (y − t)² per row) on the targets as trained on.
            let t: Vec<f64> = held_out.iter().map(|&r| host.targets[r] as f64).collect();
            let mean = t.iter().sum::<f64>() / t.len() as f64;
            let total: f64 = t.iter().map(|v| (v - mean).powi(2)).sum();
            (1.0 - 2.0 * scores.loss as f64 * t.len() as f64 / total) as f32
        }
    }
}

/// The (train, held-out) rows of each fold of `folds` over `rows`, as the search makes them.
fn fold_rows(folds: &Folds, data: &Dataset, rows: &[usize]) -> Vec<(Vec<usize>, Vec<usize>)> {
    let split = match folds {
        Folds::KFold(k) => k.split(rows.len()).unwrap(),
        Folds::Stratified(k) => k
            .split(
                &rows
                    .iter()
                    .map(|&r| data.labels.as_ref().unwrap()[r])
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        Folds::Explicit(folds) => folds.clone(),
    };
    let map = |p: &[usize]| p.iter().map(|&i| rows[i]).collect();
    split.iter().map(|f| (map(&f.train), map(&f.validation))).collect()
}

#[test]
fn fold_scores_come_from_preprocessing_fitted_on_each_folds_training_rows() {
    let (seed, mut rng) = seeded_rng();
    let mut data = read(&regression_csv(&mut rng, 45), Task::Regression, &[]);
    let rows: Vec<usize> = (0..data.len()).collect();
    let search = GridSearchCv::new(regressor(), ParamGrid::default())
        .folds(kfold())
        .execution(CvExecution::Sequential);
    let folds = fold_rows(&search.folds, &data, &rows);
    // Fold 0's held-out rows get areas (column 2) a global mean and std would be dominated by.
    let area = data
        .schema
        .as_ref()
        .unwrap()
        .feature_names
        .as_ref()
        .unwrap()
        .iter()
        .position(|n| n == "area");
    let area = area.unwrap();
    for &r in &folds[0].1 {
        data.features[r * data.n_features + area] = 1e4;
    }
    let report = search.fit_dataset(&gpu(), &data, &rows).unwrap();
    let got = &report.results[0].fold_scores;
    let options = &search.preprocess;
    for (k, (train, held_out)) in folds.iter().enumerate() {
        let by_hand = |fitted_on: &[usize]| {
            let (_, _, host) = prepared(&data, fitted_on, options);
            let on_gpu = GpuDataset::upload(&gpu(), &host).unwrap();
            let model = fit(&on_gpu, train, None, &search.config(&report.results[0].params)).unwrap();
            fold_score(report.scoring, &model, &on_gpu, &host, held_out)
        };
        let want = by_hand(train);
        // 1e-5 relative: the same training and evaluation; only the score's arithmetic (R²
        // from the loss) may round differently.
        assert!(
            (got[k] - want).abs() <= 1e-5 * want.abs().max(1.0),
            "seed {seed}: fold {k} scored {} by the search, {want} with preprocessing fitted on its training rows",
            got[k]
        );
        if k == 0 {
            let leaked = by_hand(&rows);
            assert!(
                (leaked - want).abs() > 1e-3 * want.abs().max(1.0),
                "seed {seed}: fitted on all rows, fold 0 would score {leaked}, not {want}: the data does not tell"
            );
        }
    }
}

/// Refit by hand as `fit_dataset` does: preprocessing fitted on all of `rows`, then `fit`.
fn refit_by_hand(search: &GridSearchCv, report: &CvReport, data: &Dataset, rows: &[usize]) -> Model {
    let (pre, target, host) = prepared(data, rows, &search.preprocess);
    let on_gpu = GpuDataset::upload(&gpu(), &host).unwrap();
    let model = fit(&on_gpu, rows, None, &search.config(report.best_params())).unwrap();
    let model = model.with_preprocessor(pre).unwrap();
    match target {
        Some(t) => model.with_target_scaler(t).unwrap(),
        None => model,
    }
}

#[test]
fn stacked_folds_score_as_alone_and_the_refit_is_fit_on_the_preprocessed_rows() {
    let (seed, mut rng) = seeded_rng();
    let data = read(&classification_csv(&mut rng, 48, true), Task::Classification, &["size"]);
    assert!(data.needs_preprocessing());
    let (train, test) = data.train_test_split(0.25, 0).unwrap();
    let grid = ParamGrid {
        lr: vec![1e-2, 3e-2],
        ..ParamGrid::default()
    };
    let base = GridSearchCv::new(classifier(), grid).n_splits(3);
    let options = PreprocessOptions {
        add_indicator: true,
        max_categories: Some(3),
        ..Default::default()
    };
    let search = GridSearchCv {
        preprocess: options,
        ..base
    };
    let batched = search.fit_dataset(&gpu(), &data, &train).unwrap();
    let sequential = search
        .clone()
        .execution(CvExecution::Sequential)
        .fit_dataset(&gpu(), &data, &train)
        .unwrap();
    assert!(!batched.jobs.is_empty(), "the default search runs stacked");
    assert_eq!(
        batched.results, sequential.results,
        "seed {seed}: stacked vs model by model"
    );
    let x = data.features_of(&test).unwrap();
    assert!(x.iter().any(|v| v.is_nan()) || data.features.iter().any(|v| v.is_nan()));
    let [a, b] = [&batched, &sequential].map(|r| r.best_model.as_ref().unwrap().predict(&x).unwrap());
    assert_eq!(bits(&a), bits(&b), "seed {seed}: refit models of the two executions");
    let hand = refit_by_hand(&search, &batched, &data, &train);
    assert_eq!(
        bits(&a),
        bits(&hand.predict(&x).unwrap()),
        "seed {seed}: refit vs by hand"
    );
}

/// A fresh path in the temporary folder for this process and test.
fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("wgpu_mlp_tables_{}_{name}", std::process::id()))
}

/// `text`'s columns reordered (last first), with an extra `note` column and the label left out.
fn reordered(text: &str, edit: impl Fn(usize, &mut Vec<String>)) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        cells.pop(); // the label
        cells.reverse();
        cells.push(if i == 0 { "note".into() } else { format!("n{i}") });
        edit(i, &mut cells);
        out += &(cells.join(",") + "\n");
    }
    out
}

#[test]
fn a_classification_pipeline_round_trips_through_its_file_and_raw_rows() {
    let (seed, mut rng) = seeded_rng();
    let text = classification_csv(&mut rng, 48, false);
    let data = read(&text, Task::Classification, &["size"]);
    let rows: Vec<usize> = (0..data.len()).collect();
    let search = GridSearchCv::new(classifier(), ParamGrid::default()).n_splits(3);
    let model = search
        .fit_dataset(&gpu(), &data, &rows)
        .unwrap()
        .into_best_model()
        .unwrap();
    assert_eq!(model.class_names(), Some(&["cat".to_string(), "dog".to_string()][..]));
    let x = data.features_of(&rows).unwrap();
    let before = model.predict(&x).unwrap();
    let path = temp_path("classifier.safetensors");
    model.save(&path).unwrap();
    let loaded = Model::load(&gpu(), &path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(
        bits(&loaded.predict(&x).unwrap()),
        bits(&before),
        "seed {seed}: loaded model"
    );
    assert_eq!(loaded.schema(), model.schema());
    assert_eq!(loaded.preprocessor(), model.preprocessor());
    assert_eq!(loaded.class_names(), model.class_names());
    // The training file's rows, reordered with an extra column, read by name.
    let csv = temp_path("new_rows.csv");
    std::fs::write(&csv, reordered(&text, |_, _| {})).unwrap();
    let new = read_features(&csv, &Default::default(), &loaded.schema(), loaded.n_features()).unwrap();
    std::fs::remove_file(&csv).ok();
    assert_eq!(new.n_rows, data.len());
    assert_eq!(new.ignored, vec!["note".to_string()]);
    assert_eq!(bits(&new.features), bits(&x), "seed {seed}: the same rows coded alike");
    assert_eq!(
        bits(&loaded.predict(&new.features).unwrap()),
        bits(&before),
        "seed {seed}"
    );
    // A colour never seen at fit: no error, all zeros for it, and a note.
    let unseen = reordered(&text, |i, cells| {
        if i == 1 {
            cells[2] = "purple".into() // row 0's color (reversed order: z, size, color, x)
        }
    });
    let odd = features_from_bytes(unseen.as_bytes(), "odd.csv", &Default::default(), &loaded.schema(), 4).unwrap();
    assert!(
        odd.notes.iter().any(|n| n.contains("color")),
        "seed {seed}: {:?}",
        odd.notes
    );
    assert_eq!(odd.features[1], -1.0, "row 0's colour code");
    let p = loaded.predict(&odd.features).unwrap();
    assert!(p.iter().all(|v| v.is_finite()));
    assert_eq!(
        bits(&p[2..]),
        bits(&before[2..]),
        "seed {seed}: the other rows are unchanged"
    );
}

#[test]
fn a_regression_pipeline_predicts_in_the_targets_units_and_round_trips() {
    let (seed, mut rng) = seeded_rng();
    let text = regression_csv(&mut rng, 45);
    let data = read(&text, Task::Regression, &[]);
    let rows: Vec<usize> = (0..data.len()).collect();
    let search = GridSearchCv::new(regressor(), ParamGrid::default()).folds(kfold());
    let report = search.fit_dataset(&gpu(), &data, &rows).unwrap();
    let model = report.best_model.as_ref().unwrap();
    let x = data.features_of(&rows).unwrap();
    let before = model.predict(&x).unwrap();
    let mean = before.iter().map(|&v| v as f64).sum::<f64>() / before.len() as f64;
    // The network trains on standardised targets (mean ≈ 1000, std ≈ 70); back in the
    // targets' units after 5 epochs, the mean prediction is within 20% of 1000.
    assert!((mean - 1000.0).abs() < 200.0, "seed {seed}: mean prediction {mean}");
    let bytes = model.to_bytes().unwrap();
    let loaded = Model::from_bytes(&gpu(), &bytes, "regressor").unwrap();
    assert_eq!(
        bits(&loaded.predict(&x).unwrap()),
        bits(&before),
        "seed {seed}: loaded model"
    );
    let new = features_from_bytes(
        reordered(&text, |_, _| {}).as_bytes(),
        "new.csv",
        &Default::default(),
        &loaded.schema(),
        loaded.n_features(),
    )
    .unwrap();
    assert_eq!(
        bits(&loaded.predict(&new.features).unwrap()),
        bits(&before),
        "seed {seed}"
    );
    // By hand: the same model and target scaling reproduce the refit's outputs.
    let hand = refit_by_hand(&search, &report, &data, &rows);
    assert_eq!(
        bits(&hand.predict(&x).unwrap()),
        bits(&before),
        "seed {seed}: refit by hand"
    );
}

/// A search on `text` (a classification table), with or without missing indicators.
fn search_on(text: &str, add_indicator: bool) -> wgpu_mlp::Result<CvReport> {
    let data = read(text, Task::Classification, &["size"]);
    let rows: Vec<usize> = (0..data.len()).collect();
    let search = GridSearchCv {
        preprocess: PreprocessOptions {
            add_indicator,
            ..Default::default()
        },
        ..GridSearchCv::new(classifier(), ParamGrid::default()).n_splits(3)
    };
    search.fit_dataset(&gpu(), &data, &rows)
}

#[test]
fn a_category_in_one_folds_held_out_rows_only() {
    // A colour that occurs once: the training rows of the fold holding it out never see it.
    let (seed, mut rng) = seeded_rng();
    let text = classification_csv(&mut rng, 48, true).replacen(",red,", ",violet,", 1);
    let report = search_on(&text, false);
    assert!(report.is_ok(), "seed {seed}: {:?}", report.err());
}

#[test]
fn a_gap_in_one_folds_held_out_rows_only_with_indicators() {
    // z has one gap (row 0): the fold holding row 0 out fits no indicator for z.
    let (seed, mut rng) = seeded_rng();
    let text = classification_csv(&mut rng, 48, true);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[1].split(',').collect();
    cells[4] = "";
    lines[1] = cells.join(",");
    let report = search_on(&(lines.join("\n") + "\n"), true);
    assert!(report.is_ok(), "seed {seed}: {:?}", report.err());
}

#[test]
fn a_model_of_a_table_with_a_dropped_column_saves_and_loads() {
    // The id column (first) is dropped, so the label is file column 5 of 6 with 4 features.
    let (seed, mut rng) = seeded_rng();
    let text = classification_csv(&mut rng, 48, true);
    let data = read(&text, Task::Classification, &["size"]);
    assert_eq!(data.schema.as_ref().unwrap().label_position, Some(5));
    let rows: Vec<usize> = (0..data.len()).collect();
    let search = GridSearchCv::new(classifier(), ParamGrid::default()).n_splits(3);
    let model = search
        .fit_dataset(&gpu(), &data, &rows)
        .unwrap()
        .into_best_model()
        .unwrap();
    let bytes = model.to_bytes();
    assert!(bytes.is_ok(), "seed {seed}: {:?}", bytes.err());
    let loaded = Model::from_bytes(&gpu(), &bytes.unwrap(), "with_id").unwrap();
    assert_eq!(loaded.schema(), model.schema());
    let new = features_from_bytes(text.as_bytes(), "same.csv", &Default::default(), &loaded.schema(), 4).unwrap();
    assert_eq!(new.ignored, vec!["id".to_string(), "label".to_string()]);
    let x = data.features_of(&rows).unwrap();
    assert_eq!(
        bits(&loaded.predict(&new.features).unwrap()),
        bits(&model.predict(&x).unwrap())
    );
}

#[test]
fn raw_rows_with_missing_cells_never_train_silently() {
    // A table with gaps uploaded without a preprocessor: the upload, or the fit, must say
    // so; a model with NaN parameters and finite losses must not come back.
    let (seed, mut rng) = seeded_rng();
    let data = read(
        &classification_csv(&mut rng, 48, false),
        Task::Classification,
        &["size"],
    );
    assert!(data.features.iter().any(|v| v.is_nan()));
    let Ok(on_gpu) = GpuDataset::upload(&gpu(), &data) else {
        return;
    };
    let rows: Vec<usize> = (0..data.len()).collect();
    if let Ok(model) = fit(&on_gpu, &rows, None, &classifier()) {
        let params = model.mlp().parameters().unwrap();
        let nan = params
            .iter()
            .flat_map(|l| l.weights.iter().chain(&l.bias))
            .filter(|v| v.is_nan())
            .count();
        assert_eq!(
            nan,
            0,
            "seed {seed}: fit on NaN features returned a model with {nan} NaN parameters (last loss {:?})",
            model.history().last().map(|m| m.train_loss)
        );
    }
}
