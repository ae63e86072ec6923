//! The steps of `wgpu-mlp fit` after its options are read: the path checks, what the run
//! works on, the search with its progress, its report, and the test score.

use clap::ArgMatches;
use wgpu_mlp::{Dataset, Gpu, GridSearchCv, cv::ShardScores};

use super::checks;
use super::curves::Curves;
use super::messages::warn;
use super::progress::Progress;
use super::say;

/// What the run works on: the adapter, the data and its split, the columns, the classes.
pub(super) fn describe(
    args: &ArgMatches,
    gpu: &Gpu,
    path: &str,
    data: &Dataset,
    (train, test, test_data): (&[usize], &[usize], Option<&Dataset>),
) {
    say!(
        "adapter: {} ({:?}, {:?})",
        gpu.adapter_name(),
        gpu.backend(),
        gpu.device_type()
    );
    let split = match (test_data, args.get_one::<String>("test-data")) {
        (Some(t), Some(file)) => format!("all train; test: {file}, {} samples", t.len()),
        _ => format!("{} train / {} test", train.len(), test.len()),
    };
    say!(
        "{path}: {} samples, {} features, {} outputs; {split}",
        data.len(),
        data.n_features,
        data.n_outputs
    );
    say!("{}", super::table::columns(data));
    if let Some(names) = &data.class_names {
        say!("classes (in output order): {}", names.join(", "));
    }
}

/// Refuses output paths that are folders, devices or the inputs, before any work.
pub(super) fn check_paths(args: &ArgMatches, path: &str, output: &str) -> super::Outcome {
    let mut outputs = vec![("-o/--output", output)];
    outputs.extend(
        args.get_one::<String>("cv-results")
            .map(|f| ("--cv-results", f.as_str())),
    );
    outputs.extend(args.get_one::<String>("plots").map(|d| ("--plots", d.as_str())));
    let mut inputs = vec![("DATA", path)];
    inputs.extend(args.get_one::<String>("test-data").map(|f| ("--test-data", f.as_str())));
    checks::distinct_files(&outputs, &inputs)?;
    checks::prepare_output(output, "-o/--output")?;
    if let Some(file) = args.get_one::<String>("cv-results") {
        checks::prepare_output(file, "--cv-results")?;
    }
    Ok(())
}

/// The search itself (or the merge of its shards), with progress, the GPU work it recorded,
/// its warnings and plots.
pub(super) fn run_search(
    args: &ArgMatches,
    search: &GridSearchCv,
    (gpu, data, train): (&Gpu, &Dataset, &[usize]),
    path: &str,
) -> Result<wgpu_mlp::cv::CvReport, Box<dyn std::error::Error>> {
    let mut curves = Curves::default();
    let before = gpu.stats();
    let report = match args.get_one::<String>("merge") {
        Some(dir) => search.merge_dataset_shards(gpu, data, train, &read_shards(dir)?)?,
        None => {
            let mut progress = Progress::new(search.total_epochs(), args.get_flag("quiet"));
            let on_epoch = &mut |p: wgpu_mlp::cv::CvProgress| {
                progress.epoch(p.metrics.train_loss);
                curves.record(&p);
            };
            let report = search.fit_dataset_with_progress(gpu, data, train, on_epoch)?;
            progress.finish();
            report
        }
    };
    let after = gpu.stats();
    say!(
        "GPU work of the search: {} kernel dispatches in {} submits (counted as recorded)",
        after.dispatches - before.dispatches,
        after.submits - before.submits
    );
    report.warnings().iter().for_each(warn);
    if let Some(dir) = args.get_one::<String>("plots") {
        curves.write(dir, path, &report)?;
    }
    Ok(report)
}

/// The search's table, its best point, and its cv_results file where asked for.
pub(super) fn report_search(
    args: &ArgMatches,
    search: &GridSearchCv,
    report: &wgpu_mlp::cv::CvReport,
) -> super::Outcome {
    say!(
        "\n{}-fold cross-validation ({}):\n{report}",
        search.folds.n_splits(),
        report.execution
    );
    say!("best: {}", report.best_params());
    if let Some(path) = args.get_one::<String>("cv-results") {
        report.write_cv_results(path)?;
        say!("cv_results written to {path}");
    }
    Ok(())
}

/// The fitted model's test score, in words: on the test file where given, else on the
/// held-out `test` rows of `data` (accuracy for classes, R² and errors for regression).
pub(super) fn test_score(
    model: &wgpu_mlp::Model,
    test_data: Option<&Dataset>,
    data: &Dataset,
    test: &[usize],
) -> Result<String, Box<dyn std::error::Error>> {
    Ok(match (test_data, data.labels.is_some()) {
        (Some(test_data), true) => format!("accuracy {:.2}%", 100.0 * score_file(model, test_data)?),
        (Some(test_data), false) => {
            checks::regression_scores(model, test_data, &(0..test_data.len()).collect::<Vec<_>>())?
        }
        (None, true) => format!("accuracy {:.2}%", 100.0 * model.score(data, test)?),
        (None, false) => checks::regression_scores(model, data, test)?,
    })
}

/// The model's score on a test file: accuracy by class name (the file's own labels, so its
/// classes need not be numbered as the training file's), or R².
pub(super) fn score_file(model: &wgpu_mlp::Model, test: &Dataset) -> Result<f64, Box<dyn std::error::Error>> {
    let Some(labels) = &test.labels else {
        let rows: Vec<usize> = (0..test.len()).collect();
        return Ok(model.score(test, &rows)?);
    };
    let predicted = model.predict_class_names(&test.features)?;
    let truth = labels.iter().map(|&l| match &test.class_names {
        Some(names) => names[l].clone(),
        None => l.to_string(),
    });
    let right = truth.zip(&predicted).filter(|(t, p)| t == *p).count();
    Ok(right as f64 / labels.len() as f64)
}

/// Every `shard-*-of-*.csv` in `dir`.
fn read_shards(dir: &str) -> Result<Vec<ShardScores>, Box<dyn std::error::Error>> {
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{dir}: {e}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".csv"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("{dir}: no shard-*-of-*.csv files (run with --shard first)").into());
    }
    Ok(paths.iter().map(ShardScores::read).collect::<Result<_, _>>()?)
}
