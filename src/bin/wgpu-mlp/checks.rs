//! `fit`'s checks around the search: the output paths before training, batch sizes clipped to
//! the data, the test file's layout, and warnings about a refit model that did not converge or
//! learned less than a trivial baseline.

use wgpu_mlp::data::FeatureKind;
use wgpu_mlp::{Dataset, Model, Optimizer, ParamGrid, TrainConfig};

use super::messages::{note, warn};

/// Makes sure `path` can be written before minutes of training: its missing folders are
/// created, and a probe file is written and removed beside it.
pub fn prepare_output(path: &str, option: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("{option}: an empty file name"));
    }
    let path = std::path::Path::new(path);
    if path.exists() && !path.is_dir() && !path.is_file() {
        return Err(format!(
            "{option} {}: is not a regular file (a device or a pipe): give a file name",
            path.display()
        ));
    }
    if path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/') {
        return Err(format!("{option} {}: is a folder; give a file name", path.display()));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{option} {}: cannot create its folder: {e}", path.display()))?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().to_string());
    let probe = dir.join(format!(".{name}.probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| format!("{option} {}: cannot write there: {e}", path.display()))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

/// Where `path` points, for comparing files: the canonical path where it exists, else its
/// canonical folder joined with its name.
fn resolved(path: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(path);
    if let Ok(found) = std::fs::canonicalize(path) {
        return Some(found);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(path.file_name()?))
}

/// Refuses outputs that would overwrite an input or each other: `(option, path)` pairs.
pub fn distinct_files(outputs: &[(&str, &str)], inputs: &[(&str, &str)]) -> Result<(), String> {
    for (i, &(option, out)) in outputs.iter().enumerate() {
        let Some(target) = resolved(out) else { continue };
        let clash = inputs
            .iter()
            .chain(&outputs[..i])
            .find(|(_, other)| *other != "-" && resolved(other).as_ref() == Some(&target));
        if let Some((other_option, other)) = clash {
            return Err(format!(
                "{option} {out} is the same file as {other_option} {other}: writing it would destroy that file; choose another name"
            ));
        }
    }
    Ok(())
}

/// Every class needs a row in each of `folds` stratified folds: refused otherwise, naming the
/// class and the options that help.
pub fn enough_rows_per_class(data: &Dataset, train: &[usize], folds: usize) -> Result<(), String> {
    if folds < 2 {
        return Err(format!("--folds: expected 2 or more, got {folds}"));
    }
    let (Some(labels), Some(names)) = (&data.labels, &data.class_names) else {
        return Ok(());
    };
    let mut counts = vec![0usize; names.len()];
    train.iter().for_each(|&r| counts[labels[r]] += 1);
    match counts.iter().enumerate().find(|&(_, &n)| n < folds) {
        Some((class, &n)) => {
            // A lone "class" on the first row of a headerless file is its header's label name.
            let header_like = n <= 1
                && labels.first() == Some(&class)
                && data.schema.as_ref().is_some_and(|s| s.feature_names.is_none());
            Err(format!(
                "class {:?} has {n} training row(s), fewer than the {folds} cross-validation folds need: \
                 lower --folds, give more rows of it, or remove it from the file{}",
                names[class],
                if header_like {
                    " (or is line 1 a header? then pass --header)"
                } else {
                    ""
                }
            ))
        }
        None => Ok(()),
    }
}

/// The `--test-data` file, read as DATA was; it must have DATA's columns.
pub fn read_test_file(
    file: &str,
    csv: &wgpu_mlp::data::CsvOptions,
    data: &Dataset,
) -> Result<Dataset, Box<dyn std::error::Error>> {
    // The training file's columns and kinds, by name (or position without a header).
    let mut options = csv.clone();
    if let Some(schema) = &data.schema {
        if let Some(label) = schema.label_name.clone().filter(|l| !l.is_empty()) {
            options.label_column = wgpu_mlp::data::LabelColumn::Name(label);
        }
        let refs: Vec<String> = match &schema.feature_names {
            Some(names) => names.clone(),
            None => schema.feature_columns.iter().map(|c| (c + 1).to_string()).collect(),
        };
        let kinds = data.feature_kinds();
        let pick = |categorical: bool| -> Vec<String> {
            refs.iter()
                .zip(&kinds)
                .filter(|(_, k)| matches!(k, FeatureKind::Categorical(_)) == categorical)
                .map(|(r, _)| r.clone())
                .collect()
        };
        options.categorical = pick(true);
        options.numeric = pick(false);
        options.features = Some(refs);
        options.drop = Vec::new();
    }
    let mut test = Dataset::from_csv_path(file, &options).map_err(|e| match e {
        wgpu_mlp::Error::Data { message, .. } if message.starts_with("--features") => format!(
            "--test-data {file} must be laid out as the training file: {}",
            message
                .trim_start_matches("--features ")
                .replace("no such column", "a training column it lacks")
        ),
        other => other.to_string(),
    })?;
    test.notes.iter().for_each(|n| note(format!("--test-data: {n}")));
    recode_categories(&mut test, data);
    let names = |d: &Dataset| d.schema.as_ref().and_then(|s| s.feature_names.clone());
    let same = match (names(data), names(&test)) {
        (Some(a), Some(b)) => a == b,
        (None, None) => true,
        _ => false,
    } && test.n_features == data.n_features;
    if !same {
        let describe = |d: &Dataset| match names(d) {
            Some(n) => format!("{} features ({})", n.len(), preview(&n)),
            None => format!("{} features, no header", d.n_features),
        };
        return Err(format!(
            "--test-data {file} has {} where the training file has {}: it must be laid out as the training file",
            describe(&test),
            describe(data)
        )
        .into());
    }
    Ok(test)
}

/// The test file's category codes made the training file's (a category the training file
/// does not have: -1, encoded as none).
fn recode_categories(test: &mut Dataset, data: &Dataset) {
    let (train_kinds, test_kinds) = (data.feature_kinds(), test.feature_kinds());
    let d = test.n_features;
    for (j, (train_kind, test_kind)) in train_kinds.iter().zip(&test_kinds).enumerate() {
        if let (FeatureKind::Categorical(train), FeatureKind::Categorical(own)) = (train_kind, test_kind) {
            for v in test.features.iter_mut().skip(j).step_by(d.max(1)) {
                if *v >= 0.0 {
                    let name = &own[*v as usize];
                    *v = train.iter().position(|t| t == name).map_or(-1.0, |i| i as f32);
                }
            }
        }
    }
}

fn preview(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
    format!("{}{}", shown.join(", "), if names.len() > 8 { ", ..." } else { "" })
}

/// R², RMSE and MAE of `model` on `rows` of `data`, in the targets' units.
pub fn regression_scores(model: &Model, data: &Dataset, rows: &[usize]) -> wgpu_mlp::Result<String> {
    let predicted = model.predict(&data.features_of(rows)?)?;
    let o = data.n_outputs;
    let errors: Vec<f64> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, &r)| (0..o).map(move |j| (i, r, j)))
        .map(|(i, r, j)| predicted[i * o + j] as f64 - data.targets[r * o + j] as f64)
        .collect();
    let n = errors.len().max(1) as f64;
    let rmse = (errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
    let mae = errors.iter().map(|e| e.abs()).sum::<f64>() / n;
    Ok(format!(
        "R² {:.4}, RMSE {rmse:.4}, MAE {mae:.4}",
        model.score(data, rows)?
    ))
}

/// `optimizer` with the grid's first learning rate, momentum and weight decay where it lists
/// them, so the base agrees with the grid.
pub fn with_grid_firsts(optimizer: Optimizer, grid: &ParamGrid) -> Optimizer {
    let first = |values: &[f32], current: f32| values.first().copied().unwrap_or(current);
    let lr = first(&grid.lr, optimizer.lr());
    let momentum = first(&grid.momentum, optimizer.momentum());
    let weight_decay = first(&grid.weight_decay, optimizer.weight_decay());
    optimizer.with(lr, momentum, weight_decay)
}

/// Batch sizes above the training rows clipped to them, with a note (as scikit-learn does).
pub fn clip_batch_sizes(base: &mut TrainConfig, grid: &mut ParamGrid, n_train: usize) {
    let n_train = n_train.max(1);
    let clipped = |b: usize| {
        if b > n_train {
            note(format!(
                "batch size {b} is larger than the {n_train} training rows: clipped to {n_train}"
            ));
        }
        b.min(n_train)
    };
    if grid.batch_size.is_empty() {
        base.batch_size = base.batch_size.min(n_train);
    } else {
        grid.batch_size = grid.batch_size.iter().map(|&b| clipped(b)).collect();
        grid.batch_size.dedup();
        base.batch_size = grid.batch_size[0];
    }
}

/// Warnings about the refit model: trained to the epoch limit while still improving, or
/// scoring on its own training rows below the trivial baseline.
pub fn warn_about_fit(model: &Model, config: &TrainConfig, data: &Dataset, train: &[usize]) -> wgpu_mlp::Result<()> {
    let history = model.history();
    if !history.is_empty() && history.len() >= config.epochs && still_improving(history, config.early_stopping) {
        warn(format!(
            "training stopped at the epoch limit ({} epochs) while the loss was still improving: it may not have converged; raise --epochs",
            config.epochs
        ));
    }
    let score = model.score(data, train)?;
    match &data.labels {
        Some(labels) => {
            let mut counts = std::collections::HashMap::new();
            train
                .iter()
                .for_each(|&r| *counts.entry(labels[r]).or_insert(0usize) += 1);
            let majority = counts.values().copied().max().unwrap_or(0) as f64 / train.len().max(1) as f64;
            if score < majority {
                warn(format!(
                    "the model scores {:.2}% on its own training rows, below always answering the most frequent class ({:.2}%): it did not learn; try a lower --lr or more --epochs",
                    100.0 * score,
                    100.0 * majority
                ));
            }
        }
        None if score < 0.0 => warn(format!(
            "the model's R² on its own training rows is {score:.4}, worse than predicting the mean (R² 0): it did not learn; try a lower --lr or more --epochs"
        )),
        None => {}
    }
    Ok(())
}

/// Whether the loss watched (validation with early stopping, else training) improved in the
/// last epochs: by any amount within the patience, or by more than scikit-learn's tol (1e-4)
/// over the last 10 epochs without early stopping.
fn still_improving(history: &[wgpu_mlp::train::EpochMetrics], early_stopping: Option<usize>) -> bool {
    let (losses, window): (Vec<f32>, usize) = match early_stopping {
        Some(patience) => (history.iter().filter_map(|m| m.val_loss).collect(), patience),
        None => (history.iter().map(|m| m.train_loss).collect(), 10),
    };
    if losses.len() <= window {
        return false;
    }
    let (before, last) = losses.split_at(losses.len() - window);
    let best_before = before.iter().copied().fold(f32::INFINITY, f32::min);
    let best_last = last.iter().copied().fold(f32::INFINITY, f32::min);
    match early_stopping {
        Some(_) => best_last < best_before,
        None => best_last < best_before - 1e-4 * best_before.abs().max(1e-12),
    }
}
