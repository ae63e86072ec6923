//! `wgpu-mlp fit`: a CSV file in; a cross-validated grid search, the winner refit on the
//! training rows, its score on held-out test rows, and the fitted pipeline (scaler, network,
//! class names) saved for `predict`.
//!
//! With no search options it needs no tuning: scikit-learn's MLP defaults
//! (`TrainConfig::classifier`, or `::regressor` with `--regression`). Each search option
//! adds a hyperparameter to the grid.

use std::str::FromStr;

use clap::{Arg, ArgAction, ArgMatches, Command};
use wgpu_mlp::{
    Activation, Dataset, Gpu, GridSearchCv, KFold, Loss, Optimizer, ParamGrid, Sgd, StratifiedKFold, TrainConfig,
    cv::{CvExecution, Folds, Shard},
    data::Task,
};

use super::checks;
use super::fit_steps::{check_paths, describe, report_search, run_search, test_score};
use super::messages::note;
use super::say;

pub fn command() -> Command {
    Command::new("fit")
        .about("Cross-validate a grid, refit the best, score it on held-out rows, save the model")
        .arg(
            Arg::new("data")
                .required(true)
                .value_name("DATA.csv")
                .help("Training data: CSV, gzip or not"),
        )
        .args(super::csv_args())
        .arg(
            value("output", "MODEL", "Where to save the fitted model")
                .short('o')
                .default_value("model.safetensors"),
        )
        .arg(flag("regression", "The label is a real value (default: classes)"))
        .args(super::table::args())
        .arg(
            Arg::new("class-weight-balanced")
                .long("class-weight")
                .value_name("balanced")
                .value_parser(["balanced"])
                .action(ArgAction::Set)
                .help("Weight each class by n_rows / (n_classes · its rows) in the loss (scikit-learn's class_weight='balanced')"),
        )
        .arg(
            value(
                "scoring",
                "NAME",
                "What the search ranks by: accuracy (default for classes), balanced_accuracy, f1_macro, neg_log_loss, roc_auc (two classes), r2 (default for --regression), neg_mean_squared_error, neg_mean_absolute_error",
            )
            .value_parser(|t: &str| wgpu_mlp::cv::Scoring::from_name(t).ok_or_else(|| format!("unknown score {t:?}"))),
        )
        .args(grid_args())
        .arg(
            value(
                "optimizer",
                "NAME",
                "adam (default), adamw, rmsprop (PyTorch's defaults), or sgd (lr 0.1, momentum 0.9)",
            )
            .value_parser(optimizer),
        )
        .arg(
            value(
                "loss",
                "NAME",
                "",
            )
            .help(format!(
                "One of {} (default cross_entropy for classes, mse for regression)",
                loss_names()
            ))
            .value_parser(loss),
        )
        .arg(
            value(
                "early-stopping",
                "N|off",
                "Patience in epochs on a 10% hold-out of each model's rows, or off (scikit-learn's MLP default; ours is on because it keeps the default network from overfitting small regression tables)",
            )
            .default_value("10")
            .value_parser(patience),
        )
        .args(run_args())
}

/// The options of how the search runs and what it writes.
fn run_args() -> Vec<Arg> {
    Command::new("fit")
        .arg(
            value("folds", "K", "Cross-validation folds")
                .default_value("5")
                .value_parser(clap::value_parser!(usize)),
        )
        .arg(
            value("test-fraction", "F", "Share of rows held out to test the refit model")
                .default_value("0.2")
                .value_parser(clap::value_parser!(f64)),
        )
        .arg(value(
            "test-data",
            "FILE",
            "Test on this file (laid out as DATA) and train on all of DATA, instead of holding out --test-fraction",
        ))
        .arg(
            value("seed", "N", "Seed of splits, shuffles and initialisation")
                .default_value("0")
                .value_parser(clap::value_parser!(u64)),
        )
        .arg(flag(
            "sequential",
            "Train the cross-validation models one by one (default: same-shaped ones stacked)",
        ))
        .arg(value(
            "cv-results",
            "FILE",
            "Write scikit-learn's cv_results as CSV, or JSON for a .json FILE",
        ))
        .arg(flag("quiet", "No progress on stderr").short('q'))
        .arg(value("shard", "i/N", "Train only share i of N of the CV models and write their scores to --shard-dir (N alone: i from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)").conflicts_with("merge"))
        .arg(value("shard-dir", "DIR", "Where shards write their scores").default_value("shards"))
        .arg(value("merge", "DIR", "Rank the CV scores the shards wrote to DIR (same options), then refit, test and save"))
        .arg(value("plots", "DIR", "Write SVG plots: the grid's mean score ± std (grid.svg), the best point's loss per epoch on each fold and the refit (loss.svg)"))
        .get_arguments()
        .cloned()
        .collect()
}

/// The options that add a hyperparameter to the grid.
fn grid_args() -> [Arg; 7] {
    [
        value(
            "hidden",
            "32,16;64",
            "Hidden layer sizes to try, configurations separated by ';'",
        )
        .value_parser(hidden),
        value("lr", "LIST", "Learning rates to try, e.g. 0.001,0.01")
            .value_parser(|t: &str| bounded(t, |v| v > 0.0, "learning rates above 0")),
        value("momentum", "LIST", "Momenta (Adam's β₁) to try")
            .value_parser(|t: &str| bounded(t, |v| (0.0..1.0).contains(&v), "momenta in [0, 1)")),
        value("weight-decay", "LIST", "Weight decays to try")
            .value_parser(|t: &str| bounded(t, |v| v >= 0.0, "weight decays of 0 or more")),
        value("epochs", "LIST", "Epoch counts to try (the most, with early stopping)").value_parser(list::<usize>),
        value("batch-size", "LIST", "Batch sizes to try").value_parser(list::<usize>),
        value("activation", "LIST", "")
            .help(format!("Hidden activations to try: {}", activation_names()))
            .value_parser(activations),
    ]
}

fn value(name: &'static str, value_name: &'static str, help: &'static str) -> Arg {
    Arg::new(name).long(name).value_name(value_name).help(help)
}

fn flag(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name).long(name).action(ArgAction::SetTrue).help(help)
}

fn list<T: FromStr>(text: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .map(|v| v.trim().parse().map_err(|_| format!("cannot read {v:?}")))
        .collect()
}

/// A list of finite numbers that each pass `ok` (`what` says which are allowed).
fn bounded(text: &str, ok: fn(f32) -> bool, what: &str) -> Result<Vec<f32>, String> {
    let values: Vec<f32> = list(text)?;
    match values.iter().find(|v| !v.is_finite() || !ok(**v)) {
        Some(bad) => Err(format!("expected {what}, got {bad}")),
        None => Ok(values),
    }
}

fn hidden(text: &str) -> Result<Vec<Vec<usize>>, String> {
    text.split(';').map(list).collect()
}

/// Every activation's name, for the help and the errors.
fn activation_names() -> String {
    Activation::ALL.map(Activation::name).join(", ")
}

/// Every loss's name.
fn loss_names() -> String {
    Loss::ALL.map(Loss::name).join(", ")
}

fn activations(text: &str) -> Result<Vec<Activation>, String> {
    text.split(',')
        .map(|name| {
            Activation::from_name(name.trim())
                .ok_or_else(|| format!("unknown activation {name:?} ({})", activation_names()))
        })
        .collect()
}

fn optimizer(text: &str) -> Result<Optimizer, String> {
    match text {
        "sgd" => Ok(Sgd::new(0.1).momentum(0.9).into()),
        other => Optimizer::from_name(other)
            .ok_or_else(|| format!("unknown optimizer {other:?} ({})", Optimizer::NAMES.join(", "))),
    }
}

fn loss(text: &str) -> Result<Loss, String> {
    Loss::from_name(text).ok_or_else(|| format!("unknown loss {text:?} ({})", loss_names()))
}

fn patience(text: &str) -> Result<Option<usize>, String> {
    match text {
        "off" => Ok(None),
        n => n
            .parse()
            .map(Some)
            .map_err(|_| format!("a patience in epochs or 'off', got {n:?}")),
    }
}

pub fn run(args: &ArgMatches) -> super::Outcome {
    let path = args.get_one::<String>("data").ok_or("DATA.csv is needed")?;
    let mut csv = super::csv_options(args)?;
    super::table::apply(args, &mut csv);
    if args.get_flag("regression") {
        csv.task = Task::Regression;
    }
    let output = args.get_one::<String>("output").ok_or("--output")?;
    check_paths(args, path, output)?;
    let data = Dataset::from_csv_path(path, &csv)?;
    data.notes.iter().for_each(note);
    let test_fraction = *args.get_one::<f64>("test-fraction").ok_or("--test-fraction")?;
    let seed = *args.get_one::<u64>("seed").ok_or("--seed")?;
    // A test file: every row of DATA trains; else --test-fraction of DATA is held out.
    let test_data = match args.get_one::<String>("test-data") {
        Some(file) => Some(checks::read_test_file(file, &csv, &data)?),
        None => None,
    };
    let (train, test) = match &test_data {
        Some(_) => ((0..data.len()).collect(), Vec::new()),
        None => data.train_test_split(test_fraction, seed)?,
    };
    checks::enough_rows_per_class(&data, &train, *args.get_one::<usize>("folds").ok_or("--folds")?)?;
    let gpu = Gpu::new()?;
    describe(args, &gpu, path, &data, (&train, &test, test_data.as_ref()));
    let search = search(args, data.labels.is_some(), seed, train.len())?;
    if let Some(spec) = args.get_one::<String>("shard") {
        return run_shard(args, &search, (&gpu, &data, &train), spec);
    }
    let report = run_search(args, &search, (&gpu, &data, &train), path)?;
    report_search(args, &search, &report)?;
    let best_point = report.best_params().clone();
    let cv_score = format!(
        "{} {:.4} ± {:.4} over {} folds",
        report.scoring.name(),
        report.results[report.best_index].mean,
        report.results[report.best_index].std,
        search.folds.n_splits()
    );
    let best = search.config(&best_point);
    let model = report.into_best_model()?;
    checks::warn_about_fit(&model, &best, &data, &train)?;
    let test_score = test_score(&model, test_data.as_ref(), &data, &test)?;
    say!("test {test_score}");
    // The saved model learns from every row; the test score above is the one of a model that
    // never saw the test rows (scikit-learn users refit on everything once they have scored).
    let model = match test.is_empty() {
        true => model,
        false => {
            let all: Vec<usize> = (0..data.len()).collect();
            say!(
                "refitting the best point on all {} rows for the saved model...",
                data.len()
            );
            search.refit_dataset(&gpu, &data, &all, &best_point)?
        }
    };
    let held_out = match args.get_one::<String>("test-data") {
        Some(file) => file.to_string(),
        None => format!("{} held-out rows of {path}", test.len()),
    };
    let model = model
        .with_info("data", format!("{path}: {} rows", data.len()))
        .with_info("best_params", best_point.to_string())
        .with_info("cv_score", cv_score)
        .with_info("test_score", format!("{test_score} on {held_out}"));
    model.save(output)?;
    say!("model saved to {output}; predict with: wgpu-mlp predict {output} ROWS.csv");
    Ok(())
}

/// `--shard`: this share of the CV models, trained and scored, written to `--shard-dir`.
fn run_shard(
    args: &ArgMatches,
    search: &GridSearchCv,
    (gpu, data, train): (&Gpu, &Dataset, &[usize]),
    spec: &str,
) -> super::Outcome {
    let shard = Shard::parse(spec)?;
    let dir = args.get_one::<String>("shard-dir").ok_or("--shard-dir")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
    let scores = search.fit_dataset_shard(gpu, data, train, shard)?;
    let path = std::path::Path::new(dir).join(format!("shard-{}-of-{}.csv", shard.index, shard.count));
    scores.write(&path)?;
    say!(
        "shard {}/{}: {} of the {} models scored, written to {}; when every shard is done: the same command with --merge {dir} in place of --shard",
        shard.index,
        shard.count,
        scores.models.len(),
        scores.points * scores.folds,
        path.display()
    );
    Ok(())
}

/// The search the options ask for: scikit-learn's defaults as the base, each search option a
/// hyperparameter of the grid.
fn search(args: &ArgMatches, classification: bool, seed: u64, n_train: usize) -> Result<GridSearchCv, String> {
    let get = |name: &str| args.get_one::<Vec<f32>>(name).cloned().unwrap_or_default();
    let counts = |name: &str| args.get_one::<Vec<usize>>(name).cloned().unwrap_or_default();
    let mut grid = ParamGrid {
        hidden: args.get_one::<Vec<Vec<usize>>>("hidden").cloned().unwrap_or_default(),
        lr: get("lr"),
        momentum: get("momentum"),
        weight_decay: get("weight-decay"),
        epochs: counts("epochs"),
        batch_size: counts("batch-size"),
        activation: args
            .get_one::<Vec<Activation>>("activation")
            .cloned()
            .unwrap_or_default(),
        ..ParamGrid::default()
    };
    let defaults = if classification {
        TrainConfig::classifier()
    } else {
        TrainConfig::regressor()
    };
    let loss = args.get_one::<Loss>("loss").copied().unwrap_or(defaults.loss);
    let mut base = TrainConfig {
        seed,
        loss,
        optimizer: args
            .get_one::<Optimizer>("optimizer")
            .copied()
            .unwrap_or(defaults.optimizer),
        // MSE on classes trains sigmoid outputs on one-hot rows; the cross-entropies take logits.
        output_activation: if loss == Loss::Mse && classification {
            Activation::Sigmoid
        } else {
            Activation::Identity
        },
        early_stopping: args.get_one::<Option<usize>>("early-stopping").copied().flatten(),
        ..defaults
    };
    // The grid's first values in the base, so the optimizer chosen with --optimizer is the
    // one the grid varies (its own defaults are not "overridden" settings).
    base.optimizer = checks::with_grid_firsts(base.optimizer, &grid);
    checks::clip_batch_sizes(&mut base, &mut grid, n_train);
    let n_splits = *args.get_one::<usize>("folds").ok_or("--folds")?;
    let folds = if classification {
        Folds::Stratified(StratifiedKFold {
            n_splits,
            shuffle: true,
            seed,
        })
    } else {
        Folds::KFold(KFold {
            n_splits,
            shuffle: true,
            seed,
        })
    };
    let execution = if args.get_flag("sequential") {
        CvExecution::Sequential
    } else {
        CvExecution::default()
    };
    Ok(GridSearchCv {
        grid,
        folds,
        refit: true,
        base,
        execution,
        preprocess: super::table::preprocess(args),
        scoring: args.get_one::<wgpu_mlp::cv::Scoring>("scoring").copied(),
        class_weight: match args.get_one::<String>("class-weight-balanced") {
            Some(_) => wgpu_mlp::cv::ClassWeight::Balanced,
            None => wgpu_mlp::cv::ClassWeight::Uniform,
        },
        sample_weight: None,
    })
}
