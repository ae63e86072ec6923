//! Cross-validates and trains an MLP on any CSV file, and reports like the digits example.
//! With no options it needs no tuning: scikit-learn's MLP defaults (`TrainConfig::classifier`
//! or `::regressor`: 100 ReLU units, Adam at 1e-3, cross-entropy for classes, batches of 200,
//! up to 200 epochs with early stopping on a 10% hold-out), scored by 5-fold CV, refit, tested.
//! Each search option adds a hyperparameter to the grid.
//!
//! ```text
//! cargo run --release --example train_csv -- PATH [options]
//!   --label-column N|last|NAME   label column: 0-based index, last (default), or its
//!                           header name
//!   --header                the first line is a header (also recognised without this)
//!   --delimiter C           field separator: one character or 'tab' (default: detects , ; tab)
//!   --regression            the label is a real value (default: classes)
//!   --hidden 32,16;64       hidden layer sizes to try, configurations separated by ';'
//!   --lr 0.001,0.01         learning rates to try
//!   --momentum 0.9          momenta (Adam's β₁) to try
//!   --weight-decay 0,1e-4   weight decays to try
//!   --epochs 20             epoch counts to try (the most, with early stopping)
//!   --batch-size 32         batch sizes to try
//!   --activation relu,tanh  hidden-layer activations to try: identity, sigmoid, relu, tanh, gelu
//!   --optimizer adam        adam (default), adamw, or sgd (lr 0.1, momentum 0.9)
//!   --loss NAME             cross_entropy (default for classes: softmax on an identity output
//!                           layer), binary_cross_entropy, or mse (default for regression;
//!                           sigmoid outputs for classes)
//!   --early-stopping 10     patience in epochs on a 10% hold-out of each training part, or
//!                           'off' (with it, CV trains model by model)
//!   --folds 5               number of cross-validation folds
//!   --test-fraction 0.2     share of rows held out as the test set
//!   --seed 0                seed of splits, shuffles and initialisation
//!   --sequential            train the cross-validation models one by one (default: batched,
//!                           same-shaped models stacked into one GPU job)
//!   --cv-results FILE       write the search's cv_results (scikit-learn's columns) as CSV,
//!                           or as JSON when FILE ends in .json
//! ```

use std::str::FromStr;

use indicatif::{ProgressBar, ProgressStyle};
use wgpu_mlp::data::{shuffled_indices, stratified_split};
use wgpu_mlp::{
    Activation, Adam, CsvOptions, CvExecution, Dataset, Folds, Gpu, GpuDataset, GridSearchCv, KFold, LabelColumn, Loss,
    Optimizer, ParamGrid, Scaler, Scaling, Sgd, StratifiedKFold, Task, TrainConfig,
};

struct Options {
    path: String,
    csv: CsvOptions,
    grid: ParamGrid,
    folds: usize,
    test_fraction: f64,
    seed: u64,
    loss: Option<Loss>,
    optimizer: Option<Optimizer>,
    early_stopping: Option<usize>,
    execution: CvExecution,
    cv_results: Option<String>,
}

fn list<T: FromStr>(flag: &str, text: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .map(|v| v.trim().parse().map_err(|_| format!("{flag}: cannot read {v:?}")))
        .collect()
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        path: String::new(),
        csv: CsvOptions::default(),
        // No grid by default: scikit-learn's defaults (TrainConfig::classifier / regressor)
        // need no tuning; each option below adds a hyperparameter to search.
        grid: ParamGrid::default(),
        folds: 5,
        test_fraction: 0.2,
        seed: 0,
        loss: None,
        optimizer: None,
        early_stopping: Some(10),
        execution: CvExecution::default(),
        cv_results: None,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--label-column" => {
                let v = value()?;
                options.csv.label_column = match v.parse() {
                    _ if v == "last" => LabelColumn::Last,
                    Ok(index) => LabelColumn::Index(index),
                    Err(_) => LabelColumn::Name(v),
                };
            }
            "--header" => options.csv.has_header = true,
            "--delimiter" => {
                let v = value()?;
                options.csv.delimiter = Some(match v.as_str() {
                    "tab" | "\\t" => b'\t',
                    one if one.len() == 1 => one.as_bytes()[0],
                    other => return Err(format!("--delimiter: one character or 'tab', got {other:?}")),
                });
            }
            "--regression" => options.csv.task = Task::Regression,
            "--hidden" => {
                options.grid.hidden = value()?
                    .split(';')
                    .map(|layers| list("--hidden", layers))
                    .collect::<Result<_, _>>()?
            }
            "--lr" => options.grid.lr = list("--lr", &value()?)?,
            "--momentum" => options.grid.momentum = list("--momentum", &value()?)?,
            "--weight-decay" => options.grid.weight_decay = list("--weight-decay", &value()?)?,
            "--epochs" => options.grid.epochs = list("--epochs", &value()?)?,
            "--batch-size" => options.grid.batch_size = list("--batch-size", &value()?)?,
            "--folds" => options.folds = value()?.parse().map_err(|_| "--folds: not a number")?,
            "--test-fraction" => {
                options.test_fraction = value()?.parse().map_err(|_| "--test-fraction: not a number")?
            }
            "--seed" => options.seed = value()?.parse().map_err(|_| "--seed: not a number")?,
            "--activation" => {
                options.grid.activation = value()?
                    .split(',')
                    .map(|name| {
                        Activation::from_name(name.trim()).ok_or_else(|| {
                            format!("--activation: unknown {name:?} (identity, sigmoid, relu, tanh or gelu)")
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--loss" => {
                let name = value()?;
                options.loss =
                    Some(Loss::from_name(&name).ok_or_else(|| {
                        format!("--loss: unknown {name:?} (cross_entropy, binary_cross_entropy or mse)")
                    })?);
            }
            "--optimizer" => {
                options.optimizer = Some(match value()?.as_str() {
                    "sgd" => Sgd::new(0.1).momentum(0.9).into(),
                    "adam" => Adam::new(1e-3).into(),
                    "adamw" => Adam::adamw(1e-3).into(),
                    other => return Err(format!("--optimizer: unknown {other:?} (sgd, adam or adamw)")),
                });
            }
            "--early-stopping" => {
                let v = value()?;
                options.early_stopping = match v.as_str() {
                    "off" => None,
                    n => Some(
                        n.parse()
                            .map_err(|_| format!("--early-stopping: a patience or 'off', got {n:?}"))?,
                    ),
                };
            }
            "--sequential" => options.execution = CvExecution::Sequential,
            "--cv-results" => options.cv_results = Some(value()?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path if options.path.is_empty() => options.path = path.to_string(),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    if options.path.is_empty() {
        return Err("usage: train_csv PATH [options] (see the source's header for the options)".into());
    }
    Ok(options)
}

fn main() {
    // Mesa 22's device-select layer asks Wayland for a display while listing GPUs, which
    // prints "XDG_RUNTIME_DIR is invalid" twice on a headless machine; we choose the adapter
    // ourselves, so the layer is not needed.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: the first statement of main, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    if let Err(e) = parse_args().and_then(|options| run(options).map_err(|e| e.to_string())) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let mut data = Dataset::from_csv_path(&options.path, &options.csv)?;
    let gpu = Gpu::new()?;
    println!(
        "adapter: {} ({:?}, {:?})",
        gpu.adapter_name(),
        gpu.backend(),
        gpu.device_type()
    );
    let (train, test) = match &data.labels {
        Some(labels) => stratified_split(labels, options.test_fraction, options.seed)?,
        None => {
            if !(options.test_fraction > 0.0 && options.test_fraction < 1.0) {
                return Err("--test-fraction must be in (0, 1)".into());
            }
            let order = shuffled_indices(data.len(), options.seed);
            let n_test = ((data.len() as f64 * options.test_fraction).round() as usize).clamp(1, data.len() - 1);
            (order[n_test..].to_vec(), order[..n_test].to_vec())
        }
    };
    let scaler = Scaler::fit(Scaling::Standardize, &data, &train)?;
    scaler.transform(&mut data)?;
    println!(
        "{}: {} samples, {} features, {} outputs; {} train / {} test",
        options.path,
        data.len(),
        data.n_features,
        data.n_outputs,
        train.len(),
        test.len()
    );
    if let Some(names) = &data.class_names {
        println!("classes (in output order): {}", names.join(", "));
    }
    let classification = data.labels.is_some();
    let data = GpuDataset::upload(&gpu, &data)?;
    let (n_splits, shuffle, seed) = (options.folds, true, options.seed);
    let defaults = if classification {
        TrainConfig::classifier()
    } else {
        TrainConfig::regressor()
    };
    let loss = options.loss.unwrap_or(if classification {
        Loss::SoftmaxCrossEntropy
    } else {
        Loss::Mse
    });
    let search = GridSearchCv {
        grid: options.grid,
        folds: if classification {
            Folds::Stratified(StratifiedKFold {
                n_splits,
                shuffle,
                seed,
            })
        } else {
            Folds::KFold(KFold {
                n_splits,
                shuffle,
                seed,
            })
        },
        refit: true,
        base: TrainConfig {
            seed,
            loss,
            optimizer: options.optimizer.unwrap_or(defaults.optimizer),
            output_activation: if loss == Loss::Mse && classification {
                Activation::Sigmoid
            } else {
                Activation::Identity
            },
            early_stopping: options.early_stopping,
            ..defaults
        },
        execution: options.execution,
    };
    let bar = ProgressBar::new(search.total_epochs() as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} epochs {elapsed} {msg}",
    )?);
    let report = search.fit(&data, &train, &mut |p| {
        bar.set_message(format!("loss {:.4}", p.metrics.train_loss));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    println!("\n{n_splits}-fold cross-validation ({}):\n{report}", search.execution);
    println!("best: {}", report.best_params());
    if let Some(path) = &options.cv_results {
        report.write_cv_results(path)?;
        println!("cv_results written to {path}");
    }
    let model = report.best_model.as_ref().ok_or("refit model")?;
    let scores = model.evaluate(&data, &test)?;
    match scores.accuracy {
        Some(accuracy) => println!("test accuracy {:.2}%, test loss {:.4}", 100.0 * accuracy, scores.loss),
        None => println!("test loss {:.6}", scores.loss),
    }
    Ok(())
}
